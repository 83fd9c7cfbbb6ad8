package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/bench/poolbench"
)

// netLab is a network of namespaces for a pool: one per member, each
// with a veth into a switch namespace, where a bridge joins them. A
// member is cut off by taking its port on the bridge down, which leaves
// its connections open and silent, as a pulled cable does.
type netLab struct {
	prefix string
	addrs  []string // each member's address, in its namespace
}

// newNetLab makes the namespaces for n members, or skips the test where
// they cannot be made (not root, no ip, no veth or bridge support).
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespaces need ip (iproute2)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	l := &netLab{prefix: fmt.Sprintf("kerf%x", b)}
	ip := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	sw := l.prefix + "-sw"
	t.Cleanup(func() {
		for i := range n {
			exec.Command("ip", "netns", "del", l.ns(i)).Run()
		}
		exec.Command("ip", "netns", "del", sw).Run()
	})
	steps := [][]string{{"netns", "add", sw}, {"-n", sw, "link", "set", "lo", "up"},
		{"-n", sw, "link", "add", "br0", "type", "bridge"}, {"-n", sw, "link", "set", "br0", "up"}}
	for i := range n {
		addr := fmt.Sprintf("10.213.7.%d", i+1)
		l.addrs = append(l.addrs, addr)
		steps = append(steps, []string{"netns", "add", l.ns(i)}, []string{"-n", l.ns(i), "link", "set", "lo", "up"},
			[]string{"-n", sw, "link", "add", l.port(i), "type", "veth", "peer", "name", "eth0", "netns", l.ns(i)},
			[]string{"-n", sw, "link", "set", l.port(i), "master", "br0", "up"},
			[]string{"-n", l.ns(i), "addr", "add", addr + "/24", "dev", "eth0"},
			[]string{"-n", l.ns(i), "link", "set", "eth0", "up"})
	}
	// The namespaces are the test's bench, not what it tests: where the
	// kernel or the container refuses any step (no veth or bridge, no
	// right to mount), it skips, saying which.
	steps = append(steps, []string{"netns", "exec", l.ns(0), "true"})
	for _, s := range steps {
		if err := ip(s...); err != nil {
			t.Skipf("cannot make network namespaces here: %v", err)
		}
	}
	return l
}

func (l *netLab) ns(i int) string   { return fmt.Sprintf("%s-%d", l.prefix, i) }
func (l *netLab) port(i int) string { return fmt.Sprintf("p%d", i) }

// cut takes member i's port on the bridge down (up: heals it).
func (l *netLab) cut(t *testing.T, i int, down bool) {
	t.Helper()
	state := "up"
	if down {
		state = "down"
	}
	if out, err := exec.Command("ip", "-n", l.prefix+"-sw", "link", "set", l.port(i), state).CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s %s: %v: %s", l.port(i), state, err, out)
	}
}

// poolTLS writes a CA and, for each address, a certificate naming it
// that serves and dials routes; it returns the files' paths by address.
func poolTLS(t *testing.T, addrs []string) (ca string, cert, key map[string]string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kerf pool test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	ca = write("ca.crt", "CERTIFICATE", caDER)
	cert, key = map[string]string{}, map[string]string{}
	for i, a := range addrs {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: a},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP(a)},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		cert[a] = write(fmt.Sprintf("node%d.crt", i), "CERTIFICATE", der)
		key[a] = write(fmt.Sprintf("node%d.key", i), "EC PRIVATE KEY", kb)
	}
	return ca, cert, key
}

// startPoolInNamespaces starts three members, each in its own namespace
// of lab, their routes over the namespaces' links with mutual TLS.
func startPoolInNamespaces(t *testing.T, lab *netLab) []*poolNode {
	t.Helper()
	ca, cert, key := poolTLS(t, lab.addrs)
	const routePort = 7222
	nodes := make([]*poolNode, len(lab.addrs))
	for i, a := range lab.addrs {
		var peers []string
		for j, b := range lab.addrs {
			if j != i {
				peers = append(peers, net.JoinHostPort(b, fmt.Sprint(routePort)))
			}
		}
		// Each member has the namespace's loopback to itself: its own
		// listeners may take the same ports as the others'.
		s := poolbench.NodeSpec{Name: fmt.Sprintf("node-%c", 'a'+i), Dir: t.TempDir(), QUIC: "127.0.0.1:7443", HTTP: "127.0.0.1:7080",
			NATS: "127.0.0.1:4222", MQTT: "127.0.0.1:1883", Cluster: net.JoinHostPort(a, fmt.Sprint(routePort)), Peers: peers,
			CertFile: cert[a], KeyFile: key[a], CAFile: ca, LeaseTimeout: 10 * time.Minute, ReservationTTL: 10 * time.Minute}
		nodes[i] = newPoolNode(t, s, newEnv(t).with("KERF_API=http://127.0.0.1:7080"), lab.ns(i))
	}
	for _, p := range nodes {
		p.start(t)
	}
	return nodes
}

// A member cut off from the other two by a partition (its link down,
// its connections left open): within seconds it refuses placements with
// the no-quorum error naming itself alone, while the two keep placing;
// once the link is back, it places again with no repair.
func TestPoolPartition(t *testing.T) {
	lab := newNetLab(t, 3)
	nodes := startPoolInNamespaces(t, lab)
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		waitFor(t, "the pool formed, as "+n.Name+" sees it", func() bool { return poolFormed(n.kerf(t, "pool", "status"), nodes) })
	}
	if r := a.kerf(t, "pool", "place", "-p", "0.1", "before"); r.code != 0 {
		t.Fatalf("placement before the partition: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	cut := time.Now()
	lab.cut(t, 0, true)
	var r result
	waitFor(t, "the cut-off member refusing placements for want of a quorum", func() bool {
		r = a.kerf(t, "pool", "place", "-p", "0.1", "minority")
		return r.code == 1 && strings.Contains(r.stderr, "no quorum: 1 of 3 members live ("+a.Name+")")
	})
	t.Logf("the cut-off member refused %v after the cut", time.Since(cut).Round(10*time.Millisecond))
	// Until the majority has dropped its routes to the cut-off member too
	// (the same pings, a second apart), it still counts it live and may
	// place there.
	for _, n := range []*poolNode{b, c} {
		waitFor(t, n.Name+" counting the cut-off member down", func() bool {
			return append(poolRows(n.kerf(t, "pool", "status").stdout)[a.Name], "")[0] == "DOWN"
		})
	}
	for i, n := range []*poolNode{b, c} {
		waitFor(t, "a placement asked of "+n.Name+" on the majority side", func() bool {
			r = n.kerf(t, "pool", "place", "-p", "0.1", fmt.Sprintf("majority-%d", i))
			return r.code == 0
		})
		if strings.Contains(r.stdout, "on "+a.Name) {
			t.Errorf("%s placed on the cut-off member:\n%s", n.Name, r.stdout)
		}
	}
	t.Logf("the majority placed again %v after the cut", time.Since(cut).Round(10*time.Millisecond))
	st := b.kerf(t, "pool", "status")
	if !strings.Contains(st.stdout, "2 of 3 members live") {
		t.Errorf("pool status on the majority side:\n%s%s", st.stdout, st.stderr)
	}

	healed := time.Now()
	lab.cut(t, 0, false)
	waitFor(t, "the healed member placing again", func() bool {
		r = a.kerf(t, "pool", "place", "-p", "0.1", "healed")
		return r.code == 0
	})
	t.Logf("the healed member placed %v after the link came back", time.Since(healed).Round(10*time.Millisecond))
	for _, n := range nodes {
		waitFor(t, "the pool whole again, as "+n.Name+" sees it", func() bool { return poolFormed(n.kerf(t, "pool", "status"), nodes) })
	}
	// Every placement acknowledged on either side is in the ledger, as
	// the healed member sees it.
	st = a.kerf(t, "pool", "status")
	for _, tenant := range []string{"before", "majority-0", "majority-1", "healed"} {
		if !strings.Contains(st.stdout, " "+tenant+" ") {
			t.Errorf("placement for %s not in the ledger after healing:\n%s", tenant, st.stdout)
		}
	}
	// An attempt on the cut-off side before it counted itself alone may
	// have had its write go unanswered rather than refused: the member
	// leads its own leases, so the write stays in its log and may be
	// committed once the link is back. The member drops such a
	// reservation by its next round of upkeep.
	waitFor(t, "no placement of the cut-off side in the ledger", func() bool {
		st = a.kerf(t, "pool", "status")
		return !strings.Contains(st.stdout, " minority ")
	})
}
