package ptx

import (
	"github.com/kerf-edge/kerf/abi"
)

// token is one lexical element of PTX text.
type token struct {
	s    string // the text; for punctuation a single character
	line int32
	kind tokKind
}

type tokKind uint8

const (
	tkWord   tokKind = iota // identifier, directive, register, opcode, number
	tkPunct                 // one of {}()[],;:@!+-|<>=
	tkString                // a quoted string, quotes included: only hints and debug directives take one
)

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '%' || c == '$'
}

// lex splits src into tokens, dropping comments. A string ends on its
// line and has no escapes.
func lex(src []byte) ([]token, error) {
	toks := make([]token, 0, len(src)/4)
	line := int32(1)
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			i += 2
			for {
				if i+1 >= len(src) {
					return nil, abi.Errorf(abi.ErrInvalidPTX, "line %d: unterminated comment", line)
				}
				if src[i] == '*' && src[i+1] == '/' {
					i += 2
					break
				}
				if src[i] == '\n' {
					line++
				}
				i++
			}
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				j++
			}
			if j >= len(src) || src[j] != '"' {
				return nil, abi.Errorf(abi.ErrInvalidPTX, "line %d: unterminated string", line)
			}
			toks = append(toks, token{s: string(src[i : j+1]), line: line, kind: tkString})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			toks = append(toks, token{s: string(src[i:j]), line: line, kind: tkWord})
			i = j
		default:
			switch c {
			case '{', '}', '(', ')', '[', ']', ',', ';', ':', '@', '!', '+', '-', '|', '<', '>', '=':
				toks = append(toks, token{s: string(src[i : i+1]), line: line, kind: tkPunct})
				i++
			default:
				return nil, abi.Errorf(abi.ErrInvalidPTX, "line %d: unexpected character %q", line, c)
			}
		}
	}
	return toks, nil
}
