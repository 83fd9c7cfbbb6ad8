package appliance

import (
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"golang.org/x/net/netutil"

	"github.com/kerf-edge/kerf/internal/connguard"
	"github.com/kerf-edge/kerf/transport"
)

// refusalLogInterval is how often a listener logs refusals and errors
// that a flood repeats: the first at once, then a summary with a count.
const refusalLogInterval = transport.RefusalLogInterval

// connBudget is what each listener may hold, from the configured caps and
// shares of the process's descriptor limit.
type connBudget struct {
	descriptors int              // RLIMIT_NOFILE; 0 if unknown
	tenant      transport.Limits // the Unix and QUIC listeners' unauthenticated connections
	http        int              // the HTTP listener's connections; 0: no cap
	httpPerPeer int
}

func newConnBudget(l ListenLimits, descriptors int) connBudget {
	b := connBudget{descriptors: descriptors, httpPerPeer: l.HTTPPerPeer}
	b.tenant = transport.Limits{Unauthenticated: l.Unauthenticated, PerPeer: l.UnauthenticatedPerPeer}
	if share := connguard.Share(descriptors, l.UnauthenticatedShare); share > 0 && (b.tenant.Unauthenticated == 0 || share < b.tenant.Unauthenticated) {
		b.tenant.Unauthenticated = share
	}
	b.http = connguard.Share(descriptors, l.HTTPShare)
	return b
}

// httpListener bounds the operator listener: connections per IP address
// (one over is closed at once) and in all (Accept waits for a free place,
// so the listener never holds more than its share of descriptors).
type httpListener struct {
	net.Listener
	guard *connguard.Guard
	logs  []*connguard.LogLimiter // flushed on close
}

func newHTTPListener(ln net.Listener, b connBudget, log *slog.Logger) *httpListener {
	log = log.With("listener", "http")
	refused := connguard.NewLogLimiter(log, slog.LevelWarn, "refused an HTTP connection", refusalLogInterval)
	failed := connguard.NewLogLimiter(log, slog.LevelError, "accepting an HTTP connection", refusalLogInterval)
	g := connguard.New(0, b.httpPerPeer, refused)
	var guarded net.Listener = g.Listener(ln, failed)
	if b.http > 0 {
		guarded = netutil.LimitListener(guarded, b.http)
	}
	return &httpListener{Listener: guarded, guard: g, logs: []*connguard.LogLimiter{refused, failed}}
}

func (l *httpListener) Close() error {
	err := l.Listener.Close()
	for _, lg := range l.logs {
		lg.Close()
	}
	return err
}

// newHTTPServer is the operator endpoint's server, with every timeout set:
// an idle or slow connection cannot hold a descriptor for long. The live
// page's stream lifts its own deadlines (package profiles).
func newHTTPServer(h http.Handler, l ListenLimits, logs *slog.Logger) (*http.Server, *connguard.LogLimiter) {
	errs := connguard.NewLogLimiter(logs.With("listener", "http"), slog.LevelWarn, "HTTP server", refusalLogInterval)
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.HTTPReadHeaderTimeout,
		ReadTimeout:       l.HTTPReadTimeout,
		WriteTimeout:      l.HTTPWriteTimeout,
		IdleTimeout:       l.HTTPIdleTimeout,
		ErrorLog:          log.New(limitedWriter{errs}, "", 0),
	}, errs
}

// limitedWriter turns net/http's error log lines into rate-limited slog
// records.
type limitedWriter struct{ l *connguard.LogLimiter }

func (w limitedWriter) Write(p []byte) (int, error) {
	w.l.Log("err", strings.TrimSpace(string(p)))
	return len(p), nil
}
