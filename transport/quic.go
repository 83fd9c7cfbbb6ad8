package transport

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/kerf-edge/kerf/abi"
)

// QUICConfig is the QUIC configuration of both ends: large flow-control
// windows so that one stream carries bulk copies at full speed.
func QUICConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           HandshakeTimeout,
		MaxIdleTimeout:                 15 * time.Second,
		KeepAlivePeriod:                5 * time.Second,
		InitialStreamReceiveWindow:     8 << 20,
		MaxStreamReceiveWindow:         64 << 20,
		InitialConnectionReceiveWindow: 16 << 20,
		MaxConnectionReceiveWindow:     128 << 20,
		MaxIncomingStreams:             16,
		MaxIncomingUniStreams:          -1,
	}
}

// QUICListener accepts tenant connections on a UDP socket it owns.
type QUICListener struct {
	ln        *quic.Listener
	tr        *quic.Transport
	closeOnce sync.Once
	closeErr  error
}

// ListenQUIC listens for tenants on a UDP address with the appliance's
// certificate, TLS 1.3 and ALPN kerf/1.
func ListenQUIC(addr string, cert tls.Certificate) (*QUICListener, error) {
	laddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(ServerTLS(cert, abi.ALPN), QUICConfig())
	if err != nil {
		udp.Close()
		return nil, err
	}
	return &QUICListener{ln: ln, tr: tr}, nil
}

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
// bidirectional stream of a connection is one session.
func (s *Server) ServeQUIC(ctx context.Context, l *QUICListener) error {
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
			s.serveQUICConn(ctx, conn)
		}()
	}
}

func (s *Server) serveQUICConn(ctx context.Context, conn *quic.Conn) {
	defer conn.CloseWithError(0, "")
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		peer := Peer{Transport: "quic", Addr: conn.RemoteAddr().String(), Deadline: st.SetReadDeadline}
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
	conn *quic.Conn
	tr   *quic.Transport
}

func (q *quicStream) Close() error {
	q.CancelRead(0)
	err := q.Stream.Close()
	if q.conn != nil {
		q.conn.CloseWithError(0, "")
	}
	if q.tr != nil {
		q.tr.Close()
		q.tr.Conn.Close()
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
}

// DialQUIC opens a session over QUIC to addr ("host:port").
func DialQUIC(ctx context.Context, addr string, opts QUICOptions) (*Client, error) {
	qs, seen, err := dialQUICStream(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	c, err := newClient(qs, -1, opts.Options)
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
		return nil, nil, errors.New("kerf: no certificate fingerprint to pin; pass one from the token bundle or ask for trust on first use")
	}
	tc, seen := ClientTLS(opts.Fingerprint, abi.ALPN)
	conn, err := dialQUIC(ctx, addr, tc)
	if err != nil {
		return nil, nil, err
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		conn.close()
		return nil, nil, fmt.Errorf("kerf: opening stream to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	return &quicStream{Stream: st, conn: conn.Conn, tr: conn.tr}, seen, nil
}

// ServerTLS is the server's TLS configuration: TLS 1.3 with one ALPN.
func ServerTLS(cert tls.Certificate, alpn string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{alpn}, MinVersion: tls.VersionTLS13}
}

// ClientTLS is the client's TLS configuration, pinning the server's
// certificate to pin (any certificate when pin is zero: the caller asked
// for trust on first use). The fingerprint seen is stored in *seen.
func ClientTLS(pin Fingerprint, alpn string) (*tls.Config, *Fingerprint) {
	seen := new(Fingerprint)
	return &tls.Config{
		NextProtos: []string{alpn},
		MinVersion: tls.VersionTLS13,
		// The certificate is checked by pinning in VerifyPeerCertificate.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server sent no certificate")
			}
			*seen = FingerprintOf(raw[0])
			if pin.IsZero() {
				return nil
			}
			if subtle.ConstantTimeCompare(seen[:], pin[:]) != 1 {
				return fmt.Errorf("certificate fingerprint %s does not match the pinned %s", *seen, pin)
			}
			return nil
		},
	}, seen
}

// QUICConn is a client connection on a UDP socket of its own, so that
// closing it releases every resource.
type QUICConn struct {
	*quic.Conn
	tr *quic.Transport
}

// DialQUICConn dials a QUIC connection with the given TLS configuration.
func DialQUICConn(ctx context.Context, addr string, tc *tls.Config) (*QUICConn, error) {
	return dialQUIC(ctx, addr, tc)
}

func (c *QUICConn) close() {
	c.CloseWithError(0, "")
	c.tr.Close()
	c.tr.Conn.Close()
}

// Close closes the connection and its socket.
func (c *QUICConn) Close() error { c.close(); return nil }

func dialQUIC(ctx context.Context, addr string, tc *tls.Config) (*QUICConn, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("kerf: %w", err)
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("kerf: %w", err)
	}
	tr := &quic.Transport{Conn: udp}
	conn, err := tr.Dial(ctx, raddr, tc, QUICConfig())
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, fmt.Errorf("kerf: connecting to %s: %w", addr, err)
	}
	return &QUICConn{Conn: conn, tr: tr}, nil
}
