package launcher

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// progressEvery is how often a progress line is repeated when it cannot
// be redrawn in place (stderr is a file or a pipe).
const progressEvery = 10 * time.Second

// progress reports a wait: on a terminal, one line redrawn in place; on
// anything else, the first line and then one every progressEvery, so
// that a log gets a few lines, not one per retry.
type progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
	drawn    bool // a line is on the terminal, without its newline
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		p.terminal = err == nil
	}
	return p
}

func (p *progress) say(line string) {
	if p.w == nil {
		return
	}
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	if now := time.Now(); p.last.IsZero() || now.Sub(p.last) >= progressEvery {
		fmt.Fprintln(p.w, line)
		p.last = now
	}
}

// done ends a line left on the terminal.
func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
