package main

import (
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/internal/kerfenv"
)

// tracing is KERF_TRACE, read once when the shim loads: every generated
// export tests it first, so that tracing costs nothing when it is off.
var tracing, traceOut = traceSetup(os.Getenv(kerfenv.Trace))

// traceSetup reads KERF_TRACE: empty or "0" is off, "1" writes to stderr,
// anything else names a file the lines are appended to (stderr, with one
// line saying why, if it cannot be opened).
func traceSetup(v string) (bool, io.Writer) {
	switch v {
	case "", "0":
		return false, nil
	case "1":
		return true, os.Stderr
	}
	f, err := os.OpenFile(v, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		say("%s: %v; tracing to stderr", kerfenv.Trace, err)
		return true, os.Stderr
	}
	return true, f
}

// traceMu keeps each line whole and guards traceHandles.
var traceMu sync.Mutex

// traceHandles numbers the handles a trace has seen, from 1 in order of
// first sight, so that a trace names them as small integers.
var traceHandles = map[uintptr]int{}

// traceLine is one traced call: name(arg=value, ...) = RESULT [outputs] time.
type traceLine struct {
	start time.Time
	b     []byte
	outs  []byte
}

func traceBegin(name string) *traceLine {
	l := &traceLine{b: make([]byte, 0, 128)}
	l.b = append(append(append(l.b, "kerf: "...), name...), '(')
	return l
}

func (l *traceLine) arg(name string) []byte {
	if l.b[len(l.b)-1] != '(' {
		l.b = append(l.b, ", "...)
	}
	return append(append(l.b, name...), '=')
}

func (l *traceLine) out(name string) []byte {
	if len(l.outs) > 0 {
		l.outs = append(l.outs, ' ')
	}
	return append(append(l.outs, '*'), append([]byte(name), '=')...)
}

// Arguments, as the call received them.

func (l *traceLine) dec(name string, v int64)    { l.b = strconv.AppendInt(l.arg(name), v, 10) }
func (l *traceLine) udec(name string, v uint64)  { l.b = strconv.AppendUint(l.arg(name), v, 10) }
func (l *traceLine) hex(name string, v uint64)   { l.b = appendHex(l.arg(name), v) }
func (l *traceLine) str(name, s string, ok bool) { l.b = appendStr(l.arg(name), s, ok) }
func (l *traceLine) result(name string, r Result) {
	l.b = append(l.arg(name), r.Name()...)
}
func (l *traceLine) handle(name string, p uintptr) { l.b = appendHandle(l.arg(name), p) }

// Outputs, written by a call that succeeded.

func (l *traceLine) outDec(name string, v int64)   { l.outs = strconv.AppendInt(l.out(name), v, 10) }
func (l *traceLine) outUdec(name string, v uint64) { l.outs = strconv.AppendUint(l.out(name), v, 10) }
func (l *traceLine) outHex(name string, v uint64)  { l.outs = appendHex(l.out(name), v) }
func (l *traceLine) outFloat(name string, v float64) {
	l.outs = strconv.AppendFloat(l.out(name), v, 'g', 6, 64)
}
func (l *traceLine) outHandle(name string, p uintptr) {
	l.outs = appendHandle(l.out(name), p)
}

// run marks the start of the call, once its arguments are traced.
func (l *traceLine) run() { l.start = time.Now() }

// end writes the line with the call's result and the time it took.
func (l *traceLine) end(r Result) {
	d := time.Since(l.start)
	l.b = append(append(l.b, ") = "...), r.Name()...)
	if len(l.outs) > 0 {
		l.b = append(append(append(l.b, " ["...), l.outs...), ']')
	}
	l.b = append(append(append(l.b, ' '), d.String()...), '\n')
	traceMu.Lock()
	defer traceMu.Unlock()
	traceOut.Write(l.b)
}

func appendHex(b []byte, v uint64) []byte {
	return strconv.AppendUint(append(b, "0x"...), v, 16)
}

// maxTraceString bounds a string argument in a trace line.
const maxTraceString = 64

func appendStr(b []byte, s string, ok bool) []byte {
	if !ok {
		return append(b, "NULL"...)
	}
	if len(s) > maxTraceString {
		s = s[:maxTraceString] + "..."
	}
	return strconv.AppendQuote(b, s)
}

func appendHandle(b []byte, p uintptr) []byte {
	if p == 0 {
		return append(b, "NULL"...)
	}
	if p <= 2 { // CU_STREAM_LEGACY, CU_STREAM_PER_THREAD
		return appendHex(b, uint64(p))
	}
	traceMu.Lock()
	n, ok := traceHandles[p]
	if !ok {
		n = len(traceHandles) + 1
		traceHandles[p] = n
	}
	traceMu.Unlock()
	return strconv.AppendInt(append(b, '#'), int64(n), 10)
}
