package transport

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/kerf-edge/kerf/transport/abi"
)

// quicConfig has large flow-control windows so that one stream carries
// bulk copies at full speed.
func quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           HandshakeTimeout,
		MaxIdleTimeout:                 60 * time.Second,
		KeepAlivePeriod:                15 * time.Second,
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
	ln *quic.Listener
	tr *quic.Transport
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
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{abi.ALPN}, MinVersion: tls.VersionTLS13}
	ln, err := tr.Listen(tc, quicConfig())
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
	l.ln.Close()
	err := l.tr.Close()
	l.tr.Conn.Close()
	return err
}

// ServeQUIC accepts tenants on l until ctx ends, then closes l. Every
// bidirectional stream of a connection is one session.
func (s *Server) ServeQUIC(ctx context.Context, l *QUICListener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
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
	if opts.Fingerprint.IsZero() && !opts.TrustOnFirstUse {
		return nil, errors.New("kerf: no certificate fingerprint to pin; pass one from the token bundle or ask for trust on first use")
	}
	var seen Fingerprint
	tc := &tls.Config{
		NextProtos: []string{abi.ALPN},
		MinVersion: tls.VersionTLS13,
		// The certificate is checked by pinning in VerifyPeerCertificate.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server sent no certificate")
			}
			seen = FingerprintOf(raw[0])
			if opts.Fingerprint.IsZero() {
				return nil // trust on first use, asked for explicitly
			}
			if subtle.ConstantTimeCompare(seen[:], opts.Fingerprint[:]) != 1 {
				return fmt.Errorf("certificate fingerprint %s does not match the pinned %s", seen, opts.Fingerprint)
			}
			return nil
		},
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("kerf: %w", err)
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("kerf: %w", err)
	}
	// The client owns its transport so that closing the session releases
	// the socket and every goroutine of the connection.
	tr := &quic.Transport{Conn: udp}
	conn, err := tr.Dial(ctx, raddr, tc, quicConfig())
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, fmt.Errorf("kerf: connecting to %s: %w", addr, err)
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		conn.CloseWithError(0, "")
		tr.Close()
		udp.Close()
		return nil, fmt.Errorf("kerf: opening stream to %s: %w", addr, err)
	}
	qs := &quicStream{Stream: st, conn: conn, tr: tr}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	c, err := newClient(qs, -1, opts.Options)
	if err != nil {
		qs.Close()
		return nil, err
	}
	st.SetDeadline(time.Time{})
	c.Fingerprint = seen
	return c, nil
}
