package pool

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
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kerf-edge/kerf/internal/testkit"
)

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{Name: "kerf", Listen: "127.0.0.1:7222", Peers: []string{"127.0.0.1:7223"}, Secret: "0123456789abcdef",
			LeaseTimeout: time.Minute, ReservationTTL: time.Minute}
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // "" when valid
	}{
		{"good", func(*Config) {}, ""},
		{"off", func(c *Config) { *c = Config{} }, ""},
		{"peers without listen", func(c *Config) { c.Listen = "" }, "peers needs"},
		{"no secret", func(c *Config) { c.Secret = "" }, "set one of secret and secret_file"},
		{"both secrets", func(c *Config) { c.SecretFile = "/x" }, "set one of secret and secret_file"},
		{"short secret", func(c *Config) { c.Secret = "short" }, "at least 16"},
		{"beyond loopback without TLS", func(c *Config) { c.Listen = "0.0.0.0:7222" }, "beyond loopback"},
		{"half TLS", func(c *Config) { c.TLS.CertFile = "c" }, "go together"},
		{"bad peer", func(c *Config) { c.Peers = []string{"nope"} }, "peers[0]"},
		{"bad name", func(c *Config) { c.Name = "a.b" }, "pool.name"},
		{"no timeout", func(c *Config) { c.LeaseTimeout = 0 }, "must be positive"},
		{"advertised", func(c *Config) { c.Advertise.QUIC, c.Advertise.HTTP = "10.0.0.11:7443", "[fd00::11]:7080" }, ""},
		{"advertised by name", func(c *Config) { c.Advertise.QUIC = "rack1-a.example:7443" }, ""},
		{"advertised without a port", func(c *Config) { c.Advertise.QUIC = "10.0.0.11" }, "pool.advertise.quic \"10.0.0.11\": want host:port"},
		{"advertised wildcard", func(c *Config) { c.Advertise.QUIC = "0.0.0.0:7443" }, "pool.advertise.quic \"0.0.0.0:7443\": want a host the others can dial"},
		{"advertised IPv6 wildcard", func(c *Config) { c.Advertise.HTTP = "[::]:7080" }, "pool.advertise.http \"[::]:7080\": want a host the others can dial"},
		{"advertised without a host", func(c *Config) { c.Advertise.HTTP = ":7080" }, "pool.advertise.http \":7080\": want a host"},
		{"advertised port 0", func(c *Config) { c.Advertise.QUIC = "10.0.0.11:0" }, "pool.advertise.quic \"10.0.0.11:0\": want a port from 1 to 65535"},
		{"advertised port too big", func(c *Config) { c.Advertise.HTTP = "10.0.0.11:70000" }, "pool.advertise.http \"10.0.0.11:70000\": want a port"},
		{"advertised outside a pool", func(c *Config) { c.Listen, c.Peers, c.Advertise.QUIC = "", nil, "10.0.0.11:7443" }, "pool.advertise needs pool.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.change(&c)
			errs := c.Validate("pool")
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(fmt.Sprint(errs), tc.want) {
				t.Fatalf("got %v, want an error saying %q", errs, tc.want)
			}
		})
	}
	if c := good(); c.Replicas() != 2 || c.Size() != 2 {
		t.Errorf("a pool of two: %d replicas of %d members", c.Replicas(), c.Size())
	}
}

// routeLog keeps what a server logs.
type routeLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *routeLog) add(f string, a ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(f, a...))
	l.mu.Unlock()
}
func (l *routeLog) Noticef(f string, a ...any) { l.add(f, a...) }
func (l *routeLog) Warnf(f string, a ...any)   { l.add(f, a...) }
func (l *routeLog) Fatalf(f string, a ...any)  { l.add(f, a...) }
func (l *routeLog) Errorf(f string, a ...any)  { l.add(f, a...) }
func (l *routeLog) Debugf(f string, a ...any)  { l.add(f, a...) }
func (l *routeLog) Tracef(f string, a ...any)  {}
func (l *routeLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.lines, func(x string) bool { return strings.Contains(strings.ToLower(x), s) })
}

// writeCA writes a CA and, for each name, a key pair it signed for
// 127.0.0.1, into dir; it returns the CA's file.
func writeCA(t *testing.T, dir string, names ...string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pool CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, ca, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	write := func(path, kind string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(caFile, "CERTIFICATE", der)
	caCert, _ := x509.ParseCertificate(der)
	for i, n := range names {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		leaf := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: n}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
		d, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &k.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		write(filepath.Join(dir, n+".pem"), "CERTIFICATE", d)
		write(filepath.Join(dir, n+".key"), "EC PRIVATE KEY", kb)
	}
	return caFile
}

// Members route to each other over mutual TLS with the pool's secret; a
// server with another secret is refused.
func TestRoutesNeedTheSecret(t *testing.T) {
	dir := t.TempDir()
	ca := writeCA(t, dir, "a", "b", "c")
	ports := map[string]string{"a": testkit.FreePort(t), "b": testkit.FreePort(t), "c": testkit.FreePort(t)}
	start := func(name, secret string) (*server.Server, *routeLog) {
		c := Config{Name: "kerf", Listen: ports[name], Secret: secret, LeaseTimeout: time.Minute, ReservationTTL: time.Minute}
		for n, p := range ports {
			if n != name {
				c.Peers = append(c.Peers, p)
			}
		}
		c.TLS.CertFile, c.TLS.KeyFile, c.TLS.CAFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key"), ca
		if errs := c.Validate("pool"); len(errs) > 0 {
			t.Fatal(errs)
		}
		opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true}
		if _, _, err := c.ClusterOptions(opts, name, nil); err != nil {
			t.Fatal(err)
		}
		if !opts.SyncAlways || len(opts.Routes) != 2 || opts.Routes[0].User.Username() != routeUser {
			t.Fatalf("cluster options: sync %v, routes %v", opts.SyncAlways, opts.Routes)
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		log := &routeLog{}
		srv.SetLoggerV2(log, true, false, false)
		srv.Start()
		t.Cleanup(srv.Shutdown)
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s not ready", name)
		}
		return srv, log
	}
	routed := func(s *server.Server) []string {
		var out []string
		if rz, err := s.Routez(nil); err == nil {
			for _, r := range rz.Routes {
				if !slices.Contains(out, r.RemoteName) {
					out = append(out, r.RemoteName)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	_, clog := start("c", "another-secret-entirely")
	a, _ := start("a", "the-pool-secret-0123")
	b, _ := start("b", "the-pool-secret-0123")
	testkit.WaitFor(t, "a and b routed", func() bool {
		return slices.Equal(routed(a), []string{"b"}) && slices.Equal(routed(b), []string{"a"})
	})
	testkit.WaitFor(t, "c refused by a member", func() bool { return clog.has("authorization") || clog.has("authentication") })
	if r := routed(a); slices.Contains(r, "c") {
		t.Fatalf("a routes to c, which has another secret: %v", r)
	}
}

// A member publishes the address its configuration advertises, else its
// listener's; a wildcard listener's host is replaced by pool.listen's,
// else by this host's address on its route to a peer; with none of them,
// the error names the setting to use.
func TestAdvertised(t *testing.T) {
	for _, tc := range []struct {
		name, listener, bound string
		change                func(*Config)
		want, err             string
	}{
		{"set", AdvertiseQUIC, "0.0.0.0:7443", func(c *Config) { c.Advertise.QUIC = "10.0.0.11:9443" }, "10.0.0.11:9443", ""},
		{"set for http", AdvertiseHTTP, "[::]:7080", func(c *Config) { c.Advertise.QUIC, c.Advertise.HTTP = "10.0.0.11:9443", "10.0.0.11:80" }, "10.0.0.11:80", ""},
		{"bound to an address", AdvertiseQUIC, "127.0.0.5:7443", func(*Config) {}, "127.0.0.5:7443", ""},
		{"wildcard, pool.listen's host", AdvertiseQUIC, "0.0.0.0:7443", func(*Config) {}, "127.0.0.7:7443", ""},
		{"IPv6 wildcard, pool.listen's host", AdvertiseHTTP, "[::]:7080", func(*Config) {}, "127.0.0.7:7080", ""},
		{"no host, pool.listen's host", AdvertiseQUIC, ":7443", func(*Config) {}, "127.0.0.7:7443", ""},
		{"wildcards, the route to a peer", AdvertiseQUIC, "0.0.0.0:7443", func(c *Config) { c.Listen = "0.0.0.0:7222" }, "127.0.0.1:7443", ""},
		{"wildcards, no peer", AdvertiseQUIC, "0.0.0.0:7443", func(c *Config) { c.Listen, c.Peers = "0.0.0.0:7222", nil }, "",
			"set pool.advertise.quic"},
		{"wildcards, no peer, http", AdvertiseHTTP, "[::]:7080", func(c *Config) { c.Listen, c.Peers = "[::]:7222", nil }, "",
			"set pool.advertise.http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Name: "kerf", Listen: "127.0.0.7:7222", Peers: []string{"127.0.0.1:7223"}, Secret: "0123456789abcdef",
				LeaseTimeout: time.Minute, ReservationTTL: time.Minute}
			tc.change(&c)
			got, err := c.Advertised(tc.listener, tc.bound)
			mayErr := c.MayAdvertise(tc.listener, tc.bound)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Advertised(%s, %s) = %q, %v; want an error saying %q", tc.listener, tc.bound, got, err, tc.err)
				}
				if mayErr == nil || !strings.Contains(mayErr.Error(), tc.err) {
					t.Fatalf("MayAdvertise(%s, %s) = %v; want an error saying %q", tc.listener, tc.bound, mayErr, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Advertised(%s, %s) = %q, %v; want %q", tc.listener, tc.bound, got, err, tc.want)
			}
			if mayErr != nil {
				t.Fatalf("MayAdvertise(%s, %s): %v", tc.listener, tc.bound, mayErr)
			}
		})
	}
}
