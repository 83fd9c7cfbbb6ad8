package quicnet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sys/unix"

	"github.com/kerf-edge/kerf/internal/testkit"
)

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// watchedServer listens on loopback with an UnreachableConn, probing idle
// peers every keepAlive; peers found unreachable arrive on the channel.
func watchedServer(t *testing.T, keepAlive time.Duration) (*quic.Listener, <-chan netip.AddrPort) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	gone := make(chan netip.AddrPort, 64)
	wc, err := WatchUnreachable(udp, func(a netip.AddrPort) {
		select {
		case gone <- a:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: wc}
	qc := Config(5 * time.Second)
	qc.KeepAlivePeriod = keepAlive
	ln, err := tr.Listen(ServerTLS(testCert(t), "test"), qc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); tr.Close(); udp.Close() })
	return ln, gone
}

// dialAndAccept connects a client to ln and returns both ends.
func dialAndAccept(t *testing.T, ln *quic.Listener) (*Conn, *quic.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTimeout)
	defer cancel()
	client, err := Dial(ctx, ln.Addr().String(), ClientTLS("test", func([]byte) error { return nil }), Config(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return client, server
}

// A peer whose socket closes without a word (its process killed) is
// reported by the server's next datagram to it, an idle connection's
// keep-alive included, long before the idle timeout; a live idle peer is
// not.
func TestUnreachablePeerReported(t *testing.T) {
	ln, gone := watchedServer(t, 50*time.Millisecond)
	live, liveServer := dialAndAccept(t, ln)
	dead, deadServer := dialAndAccept(t, ln)

	deadAddr := deadServer.RemoteAddr().(*net.UDPAddr).AddrPort()
	dead.tr.Conn.Close() // as the kernel does when the process dies: no CONNECTION_CLOSE
	select {
	case a := <-gone:
		if a != netip.AddrPortFrom(deadAddr.Addr().Unmap(), deadAddr.Port()) {
			t.Fatalf("reported %v, the dead peer is %v", a, deadAddr)
		}
	case <-time.After(testkit.WaitTimeout):
		t.Fatal("the dead peer was never reported (idle connection, keep-alives every 50 ms)")
	}

	// The live peer idles through many keep-alives and stays unreported;
	// both connections stay usable until told otherwise.
	deadline := time.Now().Add(20 * 50 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case a := <-gone:
			if a == liveServer.RemoteAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("the live peer %v was reported", a)
			}
		case <-time.After(10 * time.Millisecond):
		}
	}
	if live.Context().Err() != nil || liveServer.Context().Err() != nil {
		t.Fatal("the live connection ended")
	}
}

// An ICMP error is believed only when it quotes a datagram sent to that
// address recently.
func TestUnreachableNeedsAQuoteOfADatagramSent(t *testing.T) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	c, err := WatchUnreachable(udp, func(netip.AddrPort) {})
	if err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddrPort("127.0.0.1:9")
	pkt := []byte("0123456789abcdefghij")
	if c.sentRecently(peer, pkt) {
		t.Fatal("believed a quote of nothing sent")
	}
	if _, _, err := c.WriteMsgUDP(pkt, nil, net.UDPAddrFromAddrPort(peer)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		addr  netip.AddrPort
		quote []byte
		want  bool
	}{
		{"the datagram", peer, pkt[:quoteLen], true},
		{"another address", netip.MustParseAddrPort("127.0.0.1:10"), pkt[:quoteLen], false},
		{"other bytes", peer, []byte("0123456789abcdeX"), false},
		{"too short a quote", peer, pkt[:8], false},
	}
	for _, tc := range cases {
		if got := c.sentRecently(tc.addr, tc.quote); got != tc.want {
			t.Errorf("%s: believed %v, want %v", tc.name, got, tc.want)
		}
	}
	// Datagrams pass out of memory once sentRingSize more were sent.
	for range sentRingSize {
		c.WriteMsgUDP([]byte("another datagram, long enough"), nil, net.UDPAddrFromAddrPort(peer))
	}
	if c.sentRecently(peer, pkt[:quoteLen]) {
		t.Fatal("believed a quote of a datagram sent long ago")
	}
}

func TestSegmentSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		oob  []byte
		want int
	}{
		{"none", nil, 0},
		{"segments", segmentOOB(1200), 1200},
		{"after another message", append(unixRightsOOB(), segmentOOB(1350)...), 1350},
		{"truncated", segmentOOB(1200)[:10], 0},
	} {
		if got := segmentSize(tc.oob); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// segmentOOB is a UDP_SEGMENT control message, as quic-go writes it.
func segmentOOB(size uint16) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	l := unix.CmsgLen(2)
	if unix.SizeofCmsghdr == 16 {
		binary.NativeEndian.PutUint64(b[0:8], uint64(l))
		binary.NativeEndian.PutUint32(b[8:12], unix.IPPROTO_UDP)
		binary.NativeEndian.PutUint32(b[12:16], unix.UDP_SEGMENT)
	} else {
		binary.NativeEndian.PutUint32(b[0:4], uint32(l))
		binary.NativeEndian.PutUint32(b[4:8], unix.IPPROTO_UDP)
		binary.NativeEndian.PutUint32(b[8:12], unix.UDP_SEGMENT)
	}
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], size)
	return b
}

func unixRightsOOB() []byte { return unix.UnixRights(0) }
