package appliance

import (
	"fmt"
	"log/slog"
	"regexp"
	"sync"

	"github.com/kerf-edge/kerf/internal/connguard"
)

// natsLogger passes nats-server's log to kerfd's. Its warnings and
// errors are rate-limited by kind, as the tenant listeners' are: a
// client can make the broker repeat one without end (a failed login, a
// permissions violation, a retained message past the cap), and each kind
// then writes its first line at once and one summary with a count per
// refusalLogInterval.
type natsLogger struct {
	l *slog.Logger

	mu    sync.Mutex
	kinds map[string]*connguard.LogLimiter
}

// maxLogKinds bounds the kinds of line kept apart; lines of further
// kinds share one limiter per level.
const maxLogKinds = 64

// digits turns a line's format into its kind: client addresses, ports,
// connection IDs and counts vary from line to line of one kind.
var digits = regexp.MustCompile(`[0-9]+`)

func newNATSLogger(l *slog.Logger) *natsLogger {
	return &natsLogger{l: l, kinds: map[string]*connguard.LogLimiter{}}
}

func (n *natsLogger) limited(level slog.Level, f string, v []any) {
	kind := level.String() + " " + digits.ReplaceAllString(f, "#")
	n.mu.Lock()
	ll := n.kinds[kind]
	if ll == nil {
		if len(n.kinds) >= maxLogKinds {
			kind = level.String()
			ll = n.kinds[kind]
		}
		if ll == nil {
			ll = connguard.NewLogLimiter(n.l, level, "broker", refusalLogInterval)
			n.kinds[kind] = ll
		}
	}
	n.mu.Unlock()
	ll.Log("detail", fmt.Sprintf(f, v...))
}

// close writes the summaries not yet written.
func (n *natsLogger) close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ll := range n.kinds {
		ll.Close()
	}
}

func (n *natsLogger) Noticef(f string, v ...any) { n.l.Debug(fmt.Sprintf(f, v...)) }
func (n *natsLogger) Warnf(f string, v ...any)   { n.limited(slog.LevelWarn, f, v) }
func (n *natsLogger) Fatalf(f string, v ...any)  { n.l.Error(fmt.Sprintf(f, v...)) }
func (n *natsLogger) Errorf(f string, v ...any)  { n.limited(slog.LevelError, f, v) }
func (n *natsLogger) Debugf(f string, v ...any)  { n.l.Debug(fmt.Sprintf(f, v...)) }
func (n *natsLogger) Tracef(f string, v ...any)  {}
