// Package connguard keeps a connection flood on one of kerfd's listeners
// from starving the rest: it caps the connections a listener holds before
// they authenticate, in all and per peer (a uid, an IP address), refuses
// the rest at once, logs refusals as rate-limited summaries, and tells the
// process's descriptor limit so that each listener can take a share of it.
//
// It knows nothing of Kerf's protocols or sessions and imports no other
// Kerf package; the transport and the appliance's HTTP listener use it.
package connguard

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Guard counts one listener's connections that have not yet
// authenticated and admits a new one only below both caps. It is safe for
// concurrent use.
type Guard struct {
	total, perPeer int
	refusals       *LogLimiter

	mu      sync.Mutex
	pending int
	byPeer  map[string]int
	refused atomic.Uint64
}

// New returns a Guard admitting at most total connections in all and
// perPeer from one peer (0: no cap) and logging refusals through log, as
// at most one line per interval.
func New(total, perPeer int, log *LogLimiter) *Guard {
	return &Guard{total: total, perPeer: perPeer, refusals: log, byPeer: map[string]int{}}
}

// Ticket is one admitted connection's place under the caps.
type Ticket struct {
	g    *Guard
	peer string
	once sync.Once
}

// Release gives the ticket's place back: the connection authenticated or
// ended. Later calls do nothing; a nil Ticket is valid.
func (t *Ticket) Release() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		g := t.g
		g.mu.Lock()
		defer g.mu.Unlock()
		g.pending--
		if g.byPeer[t.peer]--; g.byPeer[t.peer] <= 0 {
			delete(g.byPeer, t.peer)
		}
	})
}

// Admit takes a place for a new connection from peer, or returns nil and
// logs the refusal when a cap is reached; the caller then closes the
// connection at once.
func (g *Guard) Admit(peer string) *Ticket {
	g.mu.Lock()
	reason := ""
	switch {
	case g.total > 0 && g.pending >= g.total:
		reason = "too many unauthenticated connections"
	case g.perPeer > 0 && g.byPeer[peer] >= g.perPeer:
		reason = "too many unauthenticated connections from this peer"
	default:
		g.pending++
		g.byPeer[peer]++
		g.mu.Unlock()
		return &Ticket{g: g, peer: peer}
	}
	g.mu.Unlock()
	g.refused.Add(1)
	g.refusals.Log("peer", peer, "reason", reason)
	return nil
}

// Busy reports whether the listener holds at least half of either cap,
// for peer: a time to ask new peers to prove their address.
func (g *Guard) Busy(peer string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total > 0 && 2*g.pending >= g.total || g.perPeer > 0 && 2*g.byPeer[peer] >= g.perPeer
}

// Stats is a snapshot of a Guard.
type Stats struct {
	Unauthenticated int    // connections admitted and not yet released
	Refused         uint64 // connections refused so far
}

// Stats returns the Guard's counts.
func (g *Guard) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return Stats{Unauthenticated: g.pending, Refused: g.refused.Load()}
}

// IP is the peer key of a network address: its IP, without the port.
func IP(addr net.Addr) string {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case *net.UDPAddr:
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// Listener wraps ln so that every accepted connection holds a ticket of g
// (keyed by remote IP) until it closes, and a connection over a cap is
// closed at once. For listeners whose connections authenticate per
// request (HTTP), where a connection is unauthenticated all its life.
// Accept errors are logged through acceptErrors and retried after a
// pause, as net/http does, so that running out of descriptors neither
// spins nor floods the log.
func (g *Guard) Listener(ln net.Listener, acceptErrors *LogLimiter) net.Listener {
	return &listener{Listener: ln, g: g, acceptErrors: acceptErrors}
}

type listener struct {
	net.Listener
	g            *Guard
	acceptErrors *LogLimiter
}

func (l *listener) Accept() (net.Conn, error) {
	for pause := 5 * time.Millisecond; ; {
		c, err := l.Listener.Accept()
		if err != nil {
			if !IsTemporary(err) {
				return nil, err
			}
			l.acceptErrors.Log("err", err)
			time.Sleep(pause)
			pause = min(2*pause, time.Second)
			continue
		}
		t := l.g.Admit(IP(c.RemoteAddr()))
		if t == nil {
			c.Close()
			continue
		}
		return &conn{Conn: c, t: t}, nil
	}
}

// IsTemporary reports whether an Accept error passes: the process or the
// system is out of descriptors or memory for now, or the peer left first.
func IsTemporary(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ECONNABORTED) ||
		errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM)
}

type conn struct {
	net.Conn
	t *Ticket
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.t.Release()
	return err
}

// DescriptorLimit is the process's limit on open descriptors
// (RLIMIT_NOFILE, the soft limit the Go runtime raised at start), or 0 if
// it cannot be read.
func DescriptorLimit() int {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 0
	}
	return int(r.Cur)
}

// Share is share (0..1) of limit, at least 1; 0 when limit or share is 0.
func Share(limit int, share float64) int {
	if limit <= 0 || share <= 0 {
		return 0
	}
	return max(1, int(float64(limit)*share))
}

// LogLimiter logs the first of a kind of event at once, then at most one
// line per interval saying how many more there were, so that a flood
// writes a few lines and not one per connection. A nil LogLimiter logs
// nothing.
type LogLimiter struct {
	log   *slog.Logger
	level slog.Level
	msg   string
	every time.Duration

	mu     sync.Mutex
	last   time.Time // when a line was last written
	more   int       // events since then
	attrs  []any     // the latest of them
	timer  *time.Timer
	closed bool
}

// NewLogLimiter returns a LogLimiter writing msg at level to log, at most
// once per every.
func NewLogLimiter(log *slog.Logger, level slog.Level, msg string, every time.Duration) *LogLimiter {
	return &LogLimiter{log: log, level: level, msg: msg, every: every}
}

// Log records one event described by attrs (slog key-value pairs).
func (l *LogLimiter) Log(attrs ...any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.more == 0 && (l.last.IsZero() || now.Sub(l.last) >= l.every) {
		l.last = now
		l.log.Log(context.Background(), l.level, l.msg, attrs...)
		return
	}
	l.more++
	l.attrs = attrs
	if l.timer == nil && !l.closed {
		l.timer = time.AfterFunc(l.last.Add(l.every).Sub(now), l.Flush)
	}
}

// Flush writes the summary of the events not yet logged, if any.
func (l *LogLimiter) Flush() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.more == 0 {
		return
	}
	l.last = time.Now()
	l.log.Log(context.Background(), l.level, l.msg, append(append([]any{}, l.attrs...), "count", l.more, "interval", l.every)...)
	l.more, l.attrs = 0, nil
}

// Close writes the pending summary and stops the timer.
func (l *LogLimiter) Close() {
	if l == nil {
		return
	}
	l.Flush()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}
