// Package quicnet is the QUIC both ends of Kerf's remote path run on: the
// connection settings, TLS 1.3 with one ALPN, a client TLS configuration
// that checks the server's certificate with a caller's function, and a
// client connection on a UDP socket of its own. The transport uses it, and
// so does the transport benchmark's raw baseline, so that the two measure
// the same QUIC.
//
// It knows nothing of sessions, tokens or Kerf's protocol, and imports no
// other Kerf package.
package quicnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// Config is the QUIC configuration of both ends: large flow-control
// windows so that one stream carries bulk copies at full speed.
func Config(handshakeTimeout time.Duration) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           handshakeTimeout,
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

// ServerTLS is the server's TLS configuration: TLS 1.3 with one ALPN.
func ServerTLS(cert tls.Certificate, alpn string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{alpn}, MinVersion: tls.VersionTLS13}
}

// ClientTLS is the client's TLS configuration: TLS 1.3 with one ALPN, the
// server's certificate (DER) accepted or refused by checkLeaf alone, as
// pinning does.
func ClientTLS(alpn string, checkLeaf func(der []byte) error) *tls.Config {
	return &tls.Config{
		NextProtos: []string{alpn},
		MinVersion: tls.VersionTLS13,
		// The certificate is checked by checkLeaf in VerifyPeerCertificate.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server sent no certificate")
			}
			return checkLeaf(raw[0])
		},
	}
}

// Conn is a client connection on a UDP socket of its own, so that closing
// it releases every resource.
type Conn struct {
	*quic.Conn
	tr *quic.Transport
}

// Dial connects to addr ("host:port") from a new UDP socket.
func Dial(ctx context.Context, addr string, tc *tls.Config, qc *quic.Config) (*Conn, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("kerf: %w", err)
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("kerf: %w", err)
	}
	tr := &quic.Transport{Conn: udp}
	conn, err := tr.Dial(ctx, raddr, tc, qc)
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, fmt.Errorf("kerf: connecting to %s: %w", addr, err)
	}
	return &Conn{Conn: conn, tr: tr}, nil
}

// Close closes the connection and its socket.
func (c *Conn) Close() error {
	c.CloseWithError(0, "")
	c.tr.Close()
	c.tr.Conn.Close()
	return nil
}
