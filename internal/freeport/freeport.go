// Package freeport picks loopback ports for servers started on one host:
// the tests' and the benchmarks' kerfd processes. It owns the rule that
// such a port lies below the kernel's ephemeral range; it starts nothing.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Addr is a loopback address whose port nothing listens on now, on TCP
// or UDP. The port lies below the kernel's ephemeral range, so no
// outgoing connection can take it as its source port in the meantime: a
// server that redials a peer not yet up could otherwise connect to
// itself through that port and keep it from the peer.
func Addr() (string, error) {
	low := ephemeralLow()
	const first = 20000
	for range 200 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(first+rand.IntN(low-first)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr, nil
	}
	return "", errors.New("no free port below the ephemeral range")
}

// ephemeralLow is the first port the kernel hands out for outgoing
// connections and listeners on port 0.
func ephemeralLow() int {
	const fallback = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return fallback
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= 21000 {
		return fallback
	}
	return low
}
