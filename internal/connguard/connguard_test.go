package connguard

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineLog is a logger whose lines a test reads.
type lineLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.buf.String()), "\n")
}

func newLineLog() (*lineLog, *slog.Logger) {
	l := &lineLog{}
	return l, slog.New(slog.NewTextHandler(l, nil))
}

func TestGuardCaps(t *testing.T) {
	tests := []struct {
		name           string
		total, perPeer int
		peers          []string // admitted in order
		want           []bool
	}{
		{"total", 2, 0, []string{"a", "b", "c"}, []bool{true, true, false}},
		{"perPeer", 0, 2, []string{"a", "a", "a", "b"}, []bool{true, true, false, true}},
		{"both", 3, 2, []string{"a", "a", "a", "b", "c"}, []bool{true, true, false, true, false}},
		{"none", 0, 0, []string{"a", "a", "a"}, []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(tt.total, tt.perPeer, nil)
			var tickets []*Ticket
			refused := 0
			for i, p := range tt.peers {
				tk := g.Admit(p)
				if (tk != nil) != tt.want[i] {
					t.Fatalf("connection %d from %s admitted=%v, want %v", i, p, tk != nil, tt.want[i])
				}
				if tk == nil {
					refused++
				}
				tickets = append(tickets, tk)
			}
			if st := g.Stats(); st.Refused != uint64(refused) || st.Unauthenticated != len(tt.peers)-refused {
				t.Fatalf("stats %+v after %d refusals", st, refused)
			}
			for _, tk := range tickets {
				tk.Release()
				tk.Release() // twice is once
			}
			if st := g.Stats(); st.Unauthenticated != 0 || len(g.byPeer) != 0 {
				t.Fatalf("after release: %+v, %d peers", st, len(g.byPeer))
			}
			if g.Admit(tt.peers[0]) == nil {
				t.Fatal("refused after every ticket was released")
			}
		})
	}
}

func TestGuardBusy(t *testing.T) {
	g := New(4, 2, nil)
	if g.Busy("a") {
		t.Fatal("empty guard busy")
	}
	g.Admit("a")
	if !g.Busy("a") || g.Busy("b") {
		t.Fatalf("busy for a=%v b=%v with one of a's two", g.Busy("a"), g.Busy("b"))
	}
	g.Admit("b")
	if !g.Busy("c") {
		t.Fatal("not busy at half the total")
	}
}

// A flood of connections to a guarded listener from one address: the
// ones over the cap are closed at once, the others stay, and the
// refusals make one log line.
func TestListenerClosesOverCap(t *testing.T) {
	const held = 20
	logs, log := newLineLog()
	refusals := NewLogLimiter(log, slog.LevelWarn, "refused connection", time.Hour)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := New(0, held, refusals)
	ln := g.Listener(raw, nil)
	defer ln.Close()
	accepted := make(chan net.Conn, 2*held)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients, served []net.Conn
	defer func() {
		for _, c := range append(clients, served...) {
			c.Close()
		}
	}()
	for range held {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		served = append(served, <-accepted)
	}
	for i := range held {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("connection %d over the cap: read %v, want EOF", held+i, err)
		}
		c.Close()
	}
	if st := g.Stats(); st.Unauthenticated != held || st.Refused != held {
		t.Fatalf("stats %+v, want %d held and %d refused", st, held, held)
	}
	if n := len(logs.lines()); n != 1 {
		t.Fatalf("%d log lines for %d refusals, want 1:\n%s", n, held, strings.Join(logs.lines(), "\n"))
	}
	// Closing a held connection gives its place back.
	served[0].Close()
	if st := g.Stats(); st.Unauthenticated != held-1 {
		t.Fatalf("after closing one: %+v", st)
	}
}

func TestLogLimiterSummarises(t *testing.T) {
	logs, log := newLineLog()
	l := NewLogLimiter(log, slog.LevelWarn, "refused connection", time.Hour)
	for i := range 10000 {
		l.Log("peer", i)
	}
	if got := logs.lines(); len(got) != 1 || !strings.Contains(got[0], "peer=0") {
		t.Fatalf("before the summary: %q", got)
	}
	l.Close()
	got := logs.lines()
	if len(got) != 2 || !strings.Contains(got[1], "peer=9999") || !strings.Contains(got[1], "count=9999") {
		t.Fatalf("summary: %q", got)
	}
	l.Log("peer", "late") // within the hour: counted, no timer after Close
	l.Flush()
	if got := logs.lines(); len(got) != 3 || !strings.Contains(got[2], "count=1") {
		t.Fatalf("after close: %q", got)
	}
}

func TestLogLimiterFlushesByItself(t *testing.T) {
	logs, log := newLineLog()
	l := NewLogLimiter(log, slog.LevelWarn, "refused connection", 20*time.Millisecond)
	defer l.Close()
	for range 3 {
		l.Log("peer", "x")
	}
	for deadline := time.Now().Add(10 * time.Second); len(logs.lines()) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("no summary after the interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := logs.lines(); !strings.Contains(got[1], "count=2") {
		t.Fatalf("summary: %q", got)
	}
}

func TestShare(t *testing.T) {
	for _, tt := range []struct {
		limit int
		share float64
		want  int
	}{{20000, 0.25, 5000}, {3, 0.1, 1}, {0, 0.5, 0}, {100, 0, 0}} {
		if got := Share(tt.limit, tt.share); got != tt.want {
			t.Errorf("Share(%d, %v) = %d, want %d", tt.limit, tt.share, got, tt.want)
		}
	}
	if DescriptorLimit() <= 0 {
		t.Fatal("no descriptor limit read")
	}
}
