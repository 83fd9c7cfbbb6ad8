package jobs

import (
	"bytes"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"
)

// OutputLimits bound what an instance's output costs the journal.
type OutputLimits struct {
	// MaxLine: longer lines are cut here (bytes); default 4096.
	MaxLine int
	// PerSecond lines are logged per instance and stream, in bursts of
	// up to Burst; beyond, lines are dropped and counted. Defaults 50, 200.
	PerSecond, Burst int
}

// Output sends an instance's output to kerfd's log, line by line.
type Output struct {
	Log      *slog.Logger
	Job      string
	Instance string
	Limits   OutputLimits
}

// Writer is an io.Writer for one stream ("stdout", "stderr") of the
// instance. Close flushes a last unterminated line and reports drops.
func (o Output) Writer(stream string) *LineWriter {
	l := o.Limits
	if l.MaxLine <= 0 {
		l.MaxLine = 4096
	}
	if l.PerSecond <= 0 {
		l.PerSecond = 50
	}
	if l.Burst <= 0 {
		l.Burst = 200
	}
	return &LineWriter{out: o, stream: stream, limits: l, tokens: float64(l.Burst)}
}

// LineWriter logs whole lines, cut at MaxLine and rate-limited.
type LineWriter struct {
	out     Output
	stream  string
	limits  OutputLimits
	mu      sync.Mutex
	buf     []byte
	cut     bool // the line in buf was cut: skip to its end
	tokens  float64
	last    time.Time
	dropped int
}

// Write implements io.Writer; it never fails.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !w.cut {
			room := w.limits.MaxLine - len(w.buf)
			if len(chunk) > room {
				w.buf = append(w.buf, chunk[:room]...)
				w.cut = true
			} else {
				w.buf = append(w.buf, chunk...)
			}
		}
		if i < 0 {
			break
		}
		w.emit()
		p = p[i+1:]
	}
	return n, nil
}

// emit logs the line in buf, if the rate allows.
func (w *LineWriter) emit() {
	line, cut := w.buf, w.cut
	w.buf, w.cut = w.buf[:0], false
	now := time.Now()
	if !w.last.IsZero() {
		w.tokens = min(float64(w.limits.Burst), w.tokens+now.Sub(w.last).Seconds()*float64(w.limits.PerSecond))
	}
	w.last = now
	if w.tokens < 1 {
		w.dropped++
		return
	}
	w.tokens--
	attrs := []any{"job", w.out.Job, "instance", w.out.Instance, "stream", w.stream, "line", validUTF8(line)}
	if cut {
		attrs = append(attrs, "cut_at", w.limits.MaxLine)
	}
	if w.dropped > 0 {
		attrs = append(attrs, "dropped_before", w.dropped)
		w.dropped = 0
	}
	w.out.Log.Info("job output", attrs...)
}

// Close logs a last line without a newline, and how many lines the rate
// dropped since the last one logged.
func (w *LineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 || w.cut {
		w.emit()
	}
	if w.dropped > 0 {
		w.out.Log.Warn("job output dropped", "job", w.out.Job, "instance", w.out.Instance, "stream", w.stream, "lines", w.dropped)
		w.dropped = 0
	}
	return nil
}

// validUTF8 is b as a string, with invalid bytes (a line cut inside a
// character) replaced.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
