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
	"syscall"
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
		return nil, err
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, err
	}
	// An ICMP refusal ("port unreachable") during the handshake ends the
	// dial at once, rather than after the handshake timeout; afterwards
	// ICMP errors (a path MTU probe's, say) must not close the connection.
	reportICMP(udp, true)
	tr := &quic.Transport{Conn: udp}
	conn, err := tr.Dial(ctx, raddr, tc, qc)
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, dialError(addr, err)
	}
	reportICMP(udp, false)
	return &Conn{Conn: conn, tr: tr}, nil
}

// dialError says why a dial to addr failed in the words a tenant acts on.
func dialError(addr string, err error) error {
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing listens on %s (its UDP port refused): kerfd is not running there, or listens on another port: %w", addr, err)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("%s cannot be reached from here: %w", addr, err)
	case errors.As(err, &idle), errors.As(err, &hs), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from %s: kerfd is not running there, or a firewall drops UDP to that port: %w", addr, err)
	}
	return fmt.Errorf("connecting to %s: %w", addr, err)
}

// reportICMP turns on or off the socket's reporting of ICMP errors, which
// Linux otherwise keeps from an unconnected UDP socket.
func reportICMP(udp *net.UDPConn, on bool) {
	rc, err := udp.SyscallConn()
	if err != nil {
		return
	}
	v := 0
	if on {
		v = 1
	}
	rc.Control(func(fd uintptr) {
		// The socket is dual-stack: one option per family. A family the
		// host lacks refuses its option; nothing else depends on it.
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVERR, v)
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR, v)
	})
}

// Close closes the connection and its socket.
func (c *Conn) Close() error {
	c.CloseWithError(0, "")
	c.tr.Close()
	c.tr.Conn.Close()
	return nil
}
