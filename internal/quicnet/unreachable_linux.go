package quicnet

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// quoteLen is how much of a datagram an ICMP error must quote for the
// error to be believed: the first bytes of a QUIC packet (its header's
// protected bits, the peer's connection ID, the packet number and the
// start of the ciphertext) are known only to the two ends and whoever
// sees the path.
const quoteLen = 16

// sentRingSize is how many recent datagrams an UnreachableConn remembers
// to check quotes against. A port-unreachable answer arrives within a
// round trip; the probes that follow a peer's death (a keep-alive PING,
// then its retransmissions) are few and spaced, so one of them is always
// among the last few thousand datagrams sent.
const sentRingSize = 4096

// UnreachableConn is a server's UDP socket that reports peers whose port
// is closed: a peer process that died without a word (SIGKILL) leaves
// its host answering the server's next datagram with ICMP "port
// unreachable", long before any idle timeout runs out.
//
// Linux reports ICMP errors on an unconnected UDP socket only with
// IP_RECVERR, and then also as an error from the socket's next read or
// write, which would close quic-go's whole transport (a read) or an
// unrelated connection (a write). UnreachableConn therefore hands quic-go
// the socket for batched reads and writes itself, takes every such error
// off the socket's error queue, and retries.
//
// An ICMP error is believed only when it quotes the first bytes of a
// datagram this socket sent to that address recently, so a host off the
// path cannot end connections with forged ICMP errors.
type UnreachableConn struct {
	*net.UDPConn
	batch  *ipv4.PacketConn
	raw    syscall.RawConn
	seed   maphash.Seed
	sent   [sentRingSize]atomic.Uint64
	next   atomic.Uint64
	notify func(netip.AddrPort)
}

// WatchUnreachable turns on ICMP error reporting on udp and wraps it, for
// a quic.Transport's Conn. notify is called, on a goroutine of the
// socket's, with each peer address found unreachable; it must not block.
func WatchUnreachable(udp *net.UDPConn, notify func(netip.AddrPort)) (*UnreachableConn, error) {
	raw, err := udp.SyscallConn()
	if err != nil {
		return nil, err
	}
	reportICMP(udp, true)
	return &UnreachableConn{UDPConn: udp, batch: ipv4.NewPacketConn(udp), raw: raw, seed: maphash.MakeSeed(), notify: notify}, nil
}

// ReadBatch reads datagrams as quic-go's batched reader does; an ICMP
// error the socket reports instead is handled and the read retried.
func (c *UnreachableConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	for {
		n, err := c.batch.ReadBatch(ms, flags)
		if err == nil || !isICMPErrno(err) {
			return n, err
		}
		c.drainErrors()
	}
}

// WriteMsgUDP sends b to addr, remembering the start of each datagram
// (each segment when oob asks for segmentation) to check quotes against.
// A write that fails with an error an ICMP message left on the socket
// (for another peer, most likely) is retried once.
func (c *UnreachableConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (int, int, error) {
	if addr != nil {
		ap := addr.AddrPort()
		seg := segmentSize(oob)
		if seg <= 0 {
			seg = len(b)
		}
		for off := 0; off < len(b); off += seg {
			c.sent[c.next.Add(1)%sentRingSize].Store(c.fingerprint(ap, b[off:]))
		}
	}
	n, oobn, err := c.UDPConn.WriteMsgUDP(b, oob, addr)
	if err != nil && isICMPErrno(err) {
		c.drainErrors()
		n, oobn, err = c.UDPConn.WriteMsgUDP(b, oob, addr)
	}
	return n, oobn, err
}

// fingerprint identifies a datagram's start sent to addr; it is zero for
// one too short to be checked.
func (c *UnreachableConn) fingerprint(addr netip.AddrPort, pkt []byte) uint64 {
	if len(pkt) < quoteLen {
		return 0
	}
	var b [18 + quoteLen]byte
	a := addr.Addr().Unmap().As16()
	copy(b[:16], a[:])
	binary.BigEndian.PutUint16(b[16:18], addr.Port())
	copy(b[18:], pkt[:quoteLen])
	return maphash.Bytes(c.seed, b[:])
}

// sentRecently reports whether a datagram starting with quote went to
// addr among the last sentRingSize.
func (c *UnreachableConn) sentRecently(addr netip.AddrPort, quote []byte) bool {
	fp := c.fingerprint(addr, quote)
	if fp == 0 {
		return false
	}
	for i := range c.sent {
		if c.sent[i].Load() == fp {
			return true
		}
	}
	return false
}

// drainErrors takes every queued error off the socket and reports the
// peers whose port a believed ICMP error says is closed.
func (c *UnreachableConn) drainErrors() {
	var gone []netip.AddrPort
	c.raw.Control(func(fd uintptr) {
		var quote [quoteLen]byte
		var oob [256]byte
		for {
			n, oobn, _, from, err := unix.Recvmsg(int(fd), quote[:], oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				return // EAGAIN: the queue is empty
			}
			addr, ok := sockaddrAddrPort(from)
			if ok && n == quoteLen && portUnreachable(oob[:oobn]) && c.sentRecently(addr, quote[:]) {
				gone = append(gone, addr)
			}
		}
	})
	for _, a := range gone {
		c.notify(a)
	}
}

// isICMPErrno reports whether err is one Linux sets on a socket from an
// ICMP error with IP_RECVERR on.
func isICMPErrno(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN, unix.ENONET,
		unix.EPROTO, unix.EMSGSIZE, unix.ENOPROTOOPT, unix.EOPNOTSUPP, unix.EACCES:
		return true
	}
	return false
}

// portUnreachable reports whether a message from the error queue carries
// an ICMP or ICMPv6 port-unreachable error (errno ECONNREFUSED).
func portUnreachable(oob []byte) bool {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		recverr := (m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR) ||
			(m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR)
		if !recverr || len(m.Data) < 8 {
			continue
		}
		// struct sock_extended_err: errno (u32), origin, type, code, pad (u8)...
		errno := binary.NativeEndian.Uint32(m.Data[0:4])
		origin := m.Data[4]
		if errno == uint32(unix.ECONNREFUSED) && (origin == unix.SO_EE_ORIGIN_ICMP || origin == unix.SO_EE_ORIGIN_ICMP6) {
			return true
		}
	}
	return false
}

func sockaddrAddrPort(sa unix.Sockaddr) (netip.AddrPort, bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)), true
	}
	return netip.AddrPort{}, false
}

// segmentSize is the UDP_SEGMENT (GSO) size oob asks for, or 0.
func segmentSize(oob []byte) int {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		var l int
		var level, typ int32
		if unix.SizeofCmsghdr == 16 {
			l = int(binary.NativeEndian.Uint64(oob[0:8]))
			level, typ = int32(binary.NativeEndian.Uint32(oob[8:12])), int32(binary.NativeEndian.Uint32(oob[12:16]))
		} else {
			l = int(binary.NativeEndian.Uint32(oob[0:4]))
			level, typ = int32(binary.NativeEndian.Uint32(oob[4:8])), int32(binary.NativeEndian.Uint32(oob[8:12]))
		}
		if l < hdr || l > len(oob) {
			return 0
		}
		if level == unix.IPPROTO_UDP && typ == unix.UDP_SEGMENT && l >= hdr+2 {
			return int(binary.NativeEndian.Uint16(oob[hdr : hdr+2]))
		}
		oob = oob[min(len(oob), unix.CmsgSpace(l-hdr)):]
	}
	return 0
}
