package pool

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config is the pool section of kerfd's configuration. A node is in a pool
// when Listen is set; Peers names the other members' cluster listeners.
type Config struct {
	// Name is the pool's (the NATS cluster's) name; every member uses the
	// same one.
	Name string `koanf:"name"`
	// Node is this node's name in the pool, unique in it; it is also the
	// broker's server name. Empty: the node's name in topics.
	Node string `koanf:"node"`
	// Listen is the cluster listener, host:port. Empty: not in a pool.
	Listen string `koanf:"listen"`
	// Peers are the other members' cluster listeners, host:port.
	Peers []string `koanf:"peers"`
	// Advertise is where the other members, tenants and operators reach
	// this member, host:port each, as it publishes them to the pool (its
	// inventory entry, the bundles that name the pool, redirects). Empty:
	// the listener's own address, or where that is a wildcard (0.0.0.0,
	// [::]) the host of Listen, else this host's address on its route to
	// the first peer that has one, with the listener's port (Advertised).
	Advertise struct {
		QUIC string `koanf:"quic"`
		HTTP string `koanf:"http"`
	} `koanf:"advertise"`
	// Secret authenticates the members to each other; SecretFile holds
	// it instead. At least 16 characters.
	Secret     string `koanf:"secret"`
	SecretFile string `koanf:"secret_file"`
	// TLS of the cluster routes, required when Listen is beyond loopback:
	// this node's key pair and the CA that signed every member's.
	TLS struct {
		CertFile string `koanf:"cert_file"`
		KeyFile  string `koanf:"key_file"`
		CAFile   string `koanf:"ca_file"`
	} `koanf:"tls"`
	// LeaseTimeout: a node out of the pool this long loses its leases.
	LeaseTimeout time.Duration `koanf:"lease_timeout"`
	// ReservationTTL: a placement made for another node (Place) that its
	// tenant has not taken up by then is given back.
	ReservationTTL time.Duration `koanf:"reservation_ttl"`
}

// routeUser is the members' user on each other's cluster listeners.
const routeUser = "kerf-pool"

// minSecret is the shortest secret a pool accepts.
const minSecret = 16

// Enabled reports whether the node is in a pool.
func (c *Config) Enabled() bool { return c.Listen != "" }

// Size is the number of members the configuration names: this node and
// its peers.
func (c *Config) Size() int { return 1 + len(c.Peers) }

// Replicas is how many copies each bucket keeps: three, or every member
// when the pool has fewer.
func (c *Config) Replicas() int { return min(3, c.Size()) }

// Validate checks the section; prefix names it in errors ("pool").
func (c *Config) Validate(prefix string) []error {
	if !c.Enabled() {
		if len(c.Peers) > 0 {
			return []error{fmt.Errorf("%s.peers needs %s.listen", prefix, prefix)}
		}
		if c.Advertise.QUIC != "" || c.Advertise.HTTP != "" {
			return []error{fmt.Errorf("%s.advertise needs %s.listen", prefix, prefix)}
		}
		return nil
	}
	var errs []error
	for _, a := range []struct{ key, addr string }{{"quic", c.Advertise.QUIC}, {"http", c.Advertise.HTTP}} {
		if a.addr == "" {
			continue
		}
		if err := dialable(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s.advertise.%s %w", prefix, a.key, err))
		}
	}
	if c.Name == "" || strings.ContainsAny(c.Name, " \t.*>") {
		errs = append(errs, fmt.Errorf("%s.name %q: want a name without spaces, dots or wildcards", prefix, c.Name))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("%s.listen: %w", prefix, err))
	}
	for i, p := range c.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			errs = append(errs, fmt.Errorf("%s.peers[%d]: %w", prefix, i, err))
		}
	}
	if (c.Secret == "") == (c.SecretFile == "") {
		errs = append(errs, fmt.Errorf("%s: set one of secret and secret_file (the members authenticate each other with it)", prefix))
	} else if c.Secret != "" && len(c.Secret) < minSecret {
		errs = append(errs, fmt.Errorf("%s.secret: want at least %d characters", prefix, minSecret))
	}
	t := c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") || (t.CertFile == "") != (t.CAFile == "") {
		errs = append(errs, fmt.Errorf("%s.tls: cert_file, key_file and ca_file go together", prefix))
	}
	if host, _, err := net.SplitHostPort(c.Listen); err == nil && !loopback(host) && t.CertFile == "" {
		errs = append(errs, fmt.Errorf("%s.listen %s is beyond loopback: the routes need %s.tls (cert_file, key_file, ca_file)", prefix, c.Listen, prefix))
	}
	if c.LeaseTimeout <= 0 || c.ReservationTTL <= 0 {
		errs = append(errs, fmt.Errorf("%s: lease_timeout and reservation_ttl must be positive", prefix))
	}
	return errs
}

// secret is the shared secret, from the configuration or its file.
func (c *Config) secret() (string, error) {
	if c.SecretFile == "" {
		return c.Secret, nil
	}
	b, err := os.ReadFile(c.SecretFile)
	if err != nil {
		return "", fmt.Errorf("pool secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < minSecret {
		return "", fmt.Errorf("pool secret in %s: want at least %d characters", c.SecretFile, minSecret)
	}
	return s, nil
}

// RouteURL is the URL by which this node dials a peer's cluster listener,
// with the pool's credentials.
func (c *Config) RouteURL(peer string) (*url.URL, error) {
	if _, _, err := net.SplitHostPort(peer); err != nil {
		return nil, fmt.Errorf("peer %q: %w", peer, err)
	}
	s, err := c.secret()
	if err != nil {
		return nil, err
	}
	return &url.URL{Scheme: "nats-route", User: url.UserPassword(routeUser, s), Host: peer}, nil
}

// systemAccount is the broker's system account in a pool, where kerfd asks
// JetStream to forget a member that left.
const systemAccount = "SYS"

// routePing and routePingsOut: how often a route is pinged, and how many
// pings may go unanswered before it is dropped.
const (
	routePing     = time.Second
	routePingsOut = 3
)

// memberTag is the JetStream server tag a member carries, by which a
// bucket's placement names members.
func memberTag(node string) string { return "kerf-member:" + strings.ToLower(node) }

// ClusterOptions turns opts, the broker's options, into a member of the
// pool: its server name is the node's, tagged memberTag, it listens for routes, dials each
// peer (extra adds peers joined at run time), authenticates routes with
// the secret (and TLS when configured), and JetStream syncs every write
// to disk. It returns the login of the system account, which only kerfd
// knows.
func (c *Config) ClusterOptions(opts *server.Options, node string, extra []string) (user, password string, err error) {
	host, port, err := splitPort(c.Listen)
	if err != nil {
		return "", "", fmt.Errorf("pool.listen: %w", err)
	}
	secret, err := c.secret()
	if err != nil {
		return "", "", err
	}
	opts.ServerName = node
	opts.Tags.Add(memberTag(node))
	opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port = c.Name, host, port
	opts.Cluster.Username, opts.Cluster.Password = routeUser, secret
	opts.Cluster.AuthTimeout = 5
	opts.Cluster.ConnectRetries = 0 // a configured route is retried for ever
	// A member cut off with its connections left open (a partition, a
	// cable pulled) is found by the routes' pings: one a second, the route
	// dropped after three go unanswered, so that it counts as down within
	// seconds rather than after nats-server's default of a minute or more.
	opts.Cluster.PingInterval, opts.Cluster.MaxPingsOut = routePing, routePingsOut
	for _, p := range append(append([]string(nil), c.Peers...), extra...) {
		u, err := c.RouteURL(p)
		if err != nil {
			return "", "", err
		}
		opts.Routes = append(opts.Routes, u)
	}
	if c.TLS.CertFile != "" {
		tc, err := c.routeTLS()
		if err != nil {
			return "", "", err
		}
		opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = tc, 5
	}
	// A write the pool acknowledged is on disk on a majority of members
	// (JetStream's default syncs every two minutes).
	opts.SyncAlways = true
	sys := server.NewAccount(systemAccount)
	opts.Accounts = append(opts.Accounts, sys)
	opts.SystemAccount = systemAccount
	user, password = "kerfd-system", rand.Text()
	opts.Users = append(opts.Users, &server.User{Username: user, Password: password, Account: sys})
	return user, password, nil
}

// routeTLS is mutual TLS between members: each presents its key pair and
// accepts only peers whose certificate the pool's CA signed.
func (c *Config) routeTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("pool.tls: %w", err)
	}
	pem, err := os.ReadFile(c.TLS.CAFile)
	if err != nil {
		return nil, fmt.Errorf("pool.tls.ca_file: %w", err)
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("pool.tls.ca_file %s: no PEM certificates", c.TLS.CAFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca, ClientCAs: ca,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}, nil
}

func splitPort(addr string) (string, int, error) {
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var p int
	if _, err := fmt.Sscan(ps, &p); err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	if p == 0 {
		return "", 0, errors.New("a cluster listener needs a fixed port: peers dial it")
	}
	return h, p, nil
}

// Listeners a member publishes an address of, as named under
// pool.advertise.
const (
	AdvertiseQUIC = "quic"
	AdvertiseHTTP = "http"
)

// Advertised is the address this member publishes for its listener
// (AdvertiseQUIC or AdvertiseHTTP) bound at bound, host:port:
// pool.advertise's when set; else bound when its host is one a peer can
// dial; else, for a wildcard host (0.0.0.0, [::], none), the host of
// pool.listen when that is not a wildcard, or this host's address on its
// route to the first of pool.peers that has one, with bound's port. An
// error names the setting that would give one.
func (c *Config) Advertised(listener, bound string) (string, error) {
	set := c.Advertise.QUIC
	if listener == AdvertiseHTTP {
		set = c.Advertise.HTTP
	}
	if set != "" {
		return set, nil
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("listen.%s %q: %w", listener, bound, err)
	}
	if !wildcard(host) {
		return bound, nil
	}
	if h, _, err := net.SplitHostPort(c.Listen); err == nil && !wildcard(h) {
		return net.JoinHostPort(h, port), nil
	}
	for _, p := range c.Peers {
		if h, err := sourceTo(p); err == nil {
			return net.JoinHostPort(h, port), nil
		}
	}
	return "", fmt.Errorf("listen.%s %s is a wildcard, pool.listen %s is one too and no peer is reachable to find this member's address: set pool.advertise.%s to the host:port the others dial",
		listener, bound, c.Listen, listener)
}

// MayAdvertise reports, at configuration time, why Advertised could give
// no address for listener bound at bound: nil when it can (or may, once
// the route to a peer is known).
func (c *Config) MayAdvertise(listener, bound string) error {
	if !c.Enabled() || bound == "" {
		return nil
	}
	if (listener == AdvertiseQUIC && c.Advertise.QUIC != "") || (listener == AdvertiseHTTP && c.Advertise.HTTP != "") {
		return nil
	}
	host, _, err := net.SplitHostPort(bound)
	if err != nil || !wildcard(host) {
		return nil // the listener's own check says what is wrong
	}
	if h, _, err := net.SplitHostPort(c.Listen); (err == nil && !wildcard(h)) || len(c.Peers) > 0 {
		return nil
	}
	return fmt.Errorf("listen.%s %s is a wildcard, and so is pool.listen %s, with no peers to find this member's address by: set pool.advertise.%s to the host:port the others dial",
		listener, bound, c.Listen, listener)
}

// sourceTo is the address this host sends from to peer, host:port: the
// interface its routing table picks. Nothing is sent.
func sourceTo(peer string) (string, error) {
	conn, err := net.Dial("udp", peer)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	a, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok || a.IP.IsUnspecified() {
		return "", fmt.Errorf("no route to %s", peer)
	}
	return a.IP.String(), nil
}

// dialable checks addr, an address published for others to dial:
// host:port with a host that is not a wildcard and a port from 1 to
// 65535.
func dialable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port (%w)", addr, err)
	}
	if wildcard(host) {
		return fmt.Errorf("%q: want a host the others can dial, not a wildcard", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: want a port from 1 to 65535", addr)
	}
	return nil
}

// wildcard reports whether host is empty or an unspecified address
// (0.0.0.0, ::), which a listener binds and no one can dial.
func wildcard(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
