package ingest

import "strconv"

// parsePackFast decodes the pack shape nearly every device sends without
// reflection: an array of flat objects whose keys are SenML labels, spelt
// exactly, and whose values are numbers, booleans and printable-ASCII
// strings without escapes. For anything else (null, nesting, escapes,
// unknown or differently cased keys, a wrong type, bad syntax) it reports
// false and the caller decodes with encoding/json, which stays the reference.
// FuzzSenMLFastPath checks that the two agree wherever this one answers.
func parsePackFast(data []byte) ([]rawRecord, bool) {
	s := packScanner{b: data}
	if !s.eat('[') {
		return nil, false
	}
	raws := make([]rawRecord, 0, 1)
	if s.eat(']') {
		return raws, s.atEnd()
	}
	for {
		r, ok := s.record()
		if !ok {
			return nil, false
		}
		raws = append(raws, r)
		if s.eat(']') {
			return raws, s.atEnd()
		}
		if !s.eat(',') {
			return nil, false
		}
	}
}

// rawValues backs one record's fields, so a record costs one allocation.
type rawValues struct {
	bn, bu, n, u, vs, vd    string
	bt, bv, bs, v, s, t, ut float64
	bver                    int
	vb                      bool
}

// packScanner walks a pack; i is the next unread byte.
type packScanner struct {
	b []byte
	i int
}

func (s *packScanner) record() (rawRecord, bool) {
	var r rawRecord
	if !s.eat('{') {
		return r, false
	}
	if s.eat('}') {
		return r, true
	}
	v := new(rawValues)
	for {
		key, ok := s.str()
		if !ok || !s.eat(':') {
			return r, false
		}
		switch string(key) {
		case "bn":
			ok = s.setString(&v.bn, &r.BN)
		case "bu":
			ok = s.setString(&v.bu, &r.BU)
		case "n":
			ok = s.setString(&v.n, &r.N)
		case "u":
			ok = s.setString(&v.u, &r.U)
		case "vs":
			ok = s.setString(&v.vs, &r.VS)
		case "vd":
			ok = s.setString(&v.vd, &r.VD)
		case "bt":
			ok = s.setFloat(&v.bt, &r.BT)
		case "bv":
			ok = s.setFloat(&v.bv, &r.BV)
		case "bs":
			ok = s.setFloat(&v.bs, &r.BS)
		case "v":
			ok = s.setFloat(&v.v, &r.V)
		case "s":
			ok = s.setFloat(&v.s, &r.S)
		case "t":
			ok = s.setFloat(&v.t, &r.T)
		case "ut":
			ok = s.setFloat(&v.ut, &r.UT)
		case "bver":
			ok = s.setInt(&v.bver, &r.BVer)
		case "vb":
			ok = s.setBool(&v.vb, &r.VB)
		default:
			return r, false
		}
		if !ok {
			return r, false
		}
		if s.eat('}') {
			return r, true
		}
		if !s.eat(',') {
			return r, false
		}
	}
}

func (s *packScanner) setString(dst *string, field **string) bool {
	tok, ok := s.str()
	*dst, *field = string(tok), dst
	return ok
}

func (s *packScanner) setFloat(dst *float64, field **float64) bool {
	tok, ok := s.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	*dst, *field = f, dst
	return err == nil
}

func (s *packScanner) setBool(dst *bool, field **bool) bool {
	s.space()
	switch {
	case s.literal("true"):
		*dst = true
	case s.literal("false"):
		*dst = false
	default:
		return false
	}
	*field = dst
	return true
}

func (s *packScanner) setInt(dst *int, field **int) bool {
	tok, ok := s.number()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(string(tok), 10, 64)
	*dst, *field = int(n), dst
	return err == nil
}

func (s *packScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat consumes c after any white space.
func (s *packScanner) eat(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *packScanner) atEnd() bool {
	s.space()
	return s.i == len(s.b)
}

func (s *packScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// str scans a string of printable ASCII without escapes and returns its
// contents.
func (s *packScanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	for start := s.i; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// number scans a number in RFC 8259's grammar, which is narrower than
// strconv's (no "+1", ".5", "0x10", "Inf" or "1_000").
func (s *packScanner) number() ([]byte, bool) {
	s.space()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case !s.digits():
		return nil, false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return nil, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

// digits consumes one or more decimal digits.
func (s *packScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
