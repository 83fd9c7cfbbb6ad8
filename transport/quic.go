package transport

import (
	"cmp"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/internal/connguard"
	"github.com/kerf-edge/kerf/internal/quicnet"
)

// quicConfig is the QUIC configuration of both ends.
func quicConfig() *quic.Config { return quicnet.Config(HandshakeTimeout) }

// QUICListener accepts tenant connections on a UDP socket it owns.
type QUICListener struct {
	ln        *quic.Listener
	tr        *quic.Transport
	guard     atomic.Pointer[connguard.Guard] // set by ServeQUIC
	closeOnce sync.Once
	closeErr  error

	mu    sync.Mutex
	conns map[*quic.Conn]struct{} // served, for closing those whose peer is gone
	gone  atomic.Int64            // connections closed for a port unreachable
}

// QUICListenOptions set how soon the listener notices a tenant that went
// away without a word (docs/reliability.md, "Workers end with their
// tenant").
type QUICListenOptions struct {
	// KeepAlive is how long a connection may carry nothing before kerfd
	// sends the tenant a PING (0: DefaultQUICKeepAlive). A tenant process
	// that died leaves its host answering with ICMP "port unreachable",
	// and kerfd closes the connection then: a dead tenant on a live host
	// is noticed within about this long. Each idle connection costs two
	// small packets per period.
	KeepAlive time.Duration
	// IdleTimeout closes a connection after that long without a packet
	// from the tenant (0: DefaultQUICIdleTimeout). It is what notices a
	// tenant whose host or network went away; a short one also closes
	// live tenants on a lossy link, whose every probe in that time was
	// lost.
	IdleTimeout time.Duration
}

// Defaults of QUICListenOptions.
const (
	DefaultQUICKeepAlive   = 250 * time.Millisecond
	DefaultQUICIdleTimeout = 15 * time.Second
)

// quicPeerGone is the application error code of a connection closed
// because the tenant's port answered "unreachable".
const quicPeerGone quic.ApplicationErrorCode = 2

// ticketKey holds a connection's place under its listener's guard in the
// connection's context.
type ticketKey struct{}

// connContext admits a new connection, before its handshake, under the
// listener's guard: one over a cap is refused at once. Its place is
// given back when it authenticates a stream or ends.
func (l *QUICListener) connContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	g := l.guard.Load()
	if g == nil {
		return ctx, nil
	}
	t := g.Admit(connguard.IP(info.RemoteAddr))
	if t == nil {
		return nil, errors.New("too many unauthenticated connections")
	}
	context.AfterFunc(ctx, t.Release)
	return context.WithValue(ctx, ticketKey{}, t), nil
}

// verifySource asks a peer to prove its address (a QUIC Retry) once the
// listener is half full, so that spoofed addresses cannot take a real
// peer's places.
func (l *QUICListener) verifySource(addr net.Addr) bool {
	g := l.guard.Load()
	return g != nil && g.Busy(connguard.IP(addr))
}

// ListenQUIC listens for tenants on a UDP address with the appliance's
// certificate, TLS 1.3 and ALPN kerf/1, and the default QUICListenOptions.
func ListenQUIC(addr string, cert tls.Certificate) (*QUICListener, error) {
	return ListenQUICWith(addr, cert, QUICListenOptions{})
}

// ListenQUICWith is ListenQUIC with opts.
func ListenQUICWith(addr string, cert tls.Certificate, opts QUICListenOptions) (*QUICListener, error) {
	laddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	l := &QUICListener{conns: map[*quic.Conn]struct{}{}}
	watched, err := quicnet.WatchUnreachable(udp, func(peer netip.AddrPort) { go l.closePeer(peer) })
	if err != nil {
		udp.Close()
		return nil, err
	}
	l.tr = &quic.Transport{Conn: watched}
	l.tr.ConnContext, l.tr.VerifySourceAddress = l.connContext, l.verifySource
	qc := quicConfig()
	qc.KeepAlivePeriod, qc.MaxIdleTimeout = cmp.Or(opts.KeepAlive, DefaultQUICKeepAlive), cmp.Or(opts.IdleTimeout, DefaultQUICIdleTimeout)
	if l.ln, err = l.tr.Listen(quicnet.ServerTLS(cert, abi.ALPN), qc); err != nil {
		udp.Close()
		return nil, err
	}
	return l, nil
}

// track records conn as served until the returned function is called.
func (l *QUICListener) track(conn *quic.Conn) (untrack func()) {
	l.mu.Lock()
	l.conns[conn] = struct{}{}
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.conns, conn)
		l.mu.Unlock()
	}
}

// closePeer closes every connection to peer, whose port is unreachable:
// the tenant process is gone, and its sessions end now rather than at the
// idle timeout.
func (l *QUICListener) closePeer(peer netip.AddrPort) {
	var gone []*quic.Conn
	l.mu.Lock()
	for c := range l.conns {
		if a, ok := c.RemoteAddr().(*net.UDPAddr); ok && a.AddrPort().Addr().Unmap() == peer.Addr() && a.AddrPort().Port() == peer.Port() {
			gone = append(gone, c)
			delete(l.conns, c) // closed once, however many errors come back
		}
	}
	l.mu.Unlock()
	for _, c := range gone {
		l.gone.Add(1)
		c.CloseWithError(quicPeerGone, "the tenant's port is unreachable")
	}
}

// PeersGone counts the connections closed because their tenant's port
// answered "unreachable".
func (l *QUICListener) PeersGone() int64 { return l.gone.Load() }

// Addr is the UDP address listened on.
func (l *QUICListener) Addr() net.Addr { return l.ln.Addr() }

// Close stops listening and closes every connection and the socket.
func (l *QUICListener) Close() error {
	l.closeOnce.Do(func() {
		l.ln.Close()
		l.closeErr = l.tr.Close()
		l.tr.Conn.Close()
	})
	return l.closeErr
}

// ServeQUIC accepts tenants on l until ctx ends, then closes l. Every
// bidirectional stream of a connection is one session. Connections not
// yet authenticated are capped by s.Limits, per listener and per remote
// IP; one over a cap is refused at once, and one that has not
// authenticated a stream within the handshake timeout is closed.
func (s *Server) ServeQUIC(ctx context.Context, l *QUICListener) error {
	s.guards()
	l.guard.Store(s.quicGuard)
	defer l.Close()
	for {
		conn, err := l.ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, quic.ErrServerClosed) {
				return nil
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveQUICConn(ctx, l, conn)
		}()
	}
}

// quicNoSession is the application error code of a connection closed for
// not authenticating a session in time.
const quicNoSession quic.ApplicationErrorCode = 1

func (s *Server) serveQUICConn(ctx context.Context, l *QUICListener, conn *quic.Conn) {
	defer conn.CloseWithError(0, "")
	defer l.track(conn)()
	ticket, _ := conn.Context().Value(ticketKey{}).(*connguard.Ticket)
	var authed atomic.Bool
	expire := time.AfterFunc(s.handshakeTimeout(), func() {
		if !authed.Load() {
			conn.CloseWithError(quicNoSession, "no session authenticated in time")
		}
	})
	defer expire.Stop()
	authenticated := func(ok bool) {
		if ok && authed.CompareAndSwap(false, true) {
			expire.Stop()
			ticket.Release()
		}
	}
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		peer := Peer{Transport: "quic", Addr: conn.RemoteAddr().String(), Deadline: st.SetReadDeadline, handshakeDone: authenticated}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.ServeStream(ctx, &quicStream{Stream: st}, peer)
		}()
	}
}

// quicStream closes both directions of a stream, and the connection too
// when it owns it (the client side).
type quicStream struct {
	*quic.Stream
	conn *quicnet.Conn
}

func (q *quicStream) Close() error {
	q.CancelRead(0)
	err := q.Stream.Close()
	if q.conn != nil {
		q.conn.Close()
	}
	return err
}

// QUICOptions add certificate pinning to Options.
type QUICOptions struct {
	Options
	// Fingerprint pins the appliance's certificate.
	Fingerprint Fingerprint
	// TrustOnFirstUse accepts any certificate when Fingerprint is zero; the
	// fingerprint seen is in Client.Fingerprint for the caller to keep.
	TrustOnFirstUse bool
	// IdleTimeout ends the connection after that long without a packet
	// from the other end, on both ends (the shorter of the two ends'
	// settings wins); 0 keeps the default of 15 s. A shorter one lets the
	// appliance notice sooner that a tenant's machine went away.
	IdleTimeout time.Duration
}

// DialQUIC opens a session over QUIC to addr ("host:port").
func DialQUIC(ctx context.Context, addr string, opts QUICOptions) (*Client, error) {
	qs, seen, err := dialQUICStream(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	c, err := newClient(qs, nil, opts.Options)
	if err != nil {
		qs.Close()
		return nil, err
	}
	qs.SetDeadline(time.Time{})
	c.Fingerprint = *seen
	return c, nil
}

// dialQUICStream connects with pinning and opens one stream, which keeps
// ctx's deadline until the caller clears it.
func dialQUICStream(ctx context.Context, addr string, opts QUICOptions) (*quicStream, *Fingerprint, error) {
	if opts.Fingerprint.IsZero() && !opts.TrustOnFirstUse {
		return nil, nil, errors.New("no certificate fingerprint to pin; pass one from the token bundle or ask for trust on first use")
	}
	tc, seen := clientTLS(opts.Fingerprint)
	qc := quicConfig()
	if opts.IdleTimeout > 0 {
		qc.MaxIdleTimeout = opts.IdleTimeout
	}
	conn, err := quicnet.Dial(ctx, addr, tc, qc)
	if err != nil {
		return nil, nil, err
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("opening stream to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	return &quicStream{Stream: st, conn: conn}, seen, nil
}

// clientTLS is the client's TLS configuration, pinning the server's
// certificate to pin (any certificate when pin is zero: the caller asked
// for trust on first use). The fingerprint seen is stored in *seen.
func clientTLS(pin Fingerprint) (*tls.Config, *Fingerprint) {
	seen := new(Fingerprint)
	return quicnet.ClientTLS(abi.ALPN, func(der []byte) error {
		*seen = FingerprintOf(der)
		if pin.IsZero() {
			return nil
		}
		if subtle.ConstantTimeCompare(seen[:], pin[:]) != 1 {
			return fmt.Errorf("certificate fingerprint %s does not match the pinned %s", *seen, pin)
		}
		return nil
	}), seen
}
