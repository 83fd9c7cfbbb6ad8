package appliance

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/pool"
	"github.com/kerf-edge/kerf/transport"
)

// BrokerConfig is the embedded broker: NATS with JetStream and MQTT 3.1.1.
type BrokerConfig struct {
	ServerName string // MQTT needs one; default "kerfd"
	StoreDir   string // JetStream storage (MQTT sessions, retained messages)
	NATSListen string // host:port; port 0 picks a free one
	MQTTListen string // host:port; port 0 picks a free one
	// JetStream caps, bytes, for the whole server and for kerfd's account
	// alike: no client can make the broker hold more.
	MaxMemory int64
	MaxStore  int64
	// MQTTMessages is where MQTT QoS 1 and 2 messages wait for MQTT
	// subscribers: "memory" (the default) or "file". See
	// createMQTTMessageStream.
	MQTTMessages string
	// MaxRetained caps the MQTT retained messages, one per topic, and
	// MaxRetainedSize each one's payload; a retained message on a new
	// topic past the cap, or larger, is not stored (a topic's newer one
	// still replaces its older). 0: nats-server's defaults, no cap.
	MaxRetained     int64
	MaxRetainedSize int32
	// SublistCache keeps nats-server's per-account cache of subject
	// matches. Off by default: devices publish on thousands of distinct
	// topics, which churn a 1,024-entry cache; kerf bench ingest (10,000
	// topics) ran 38–61% faster without it, in four paired runs.
	SublistCache bool
	// Devices may log in on either listener with these credentials, and
	// then only publish load signals and statuses (devicePermissions).
	Devices []BrokerLogin
	// AnonymousOnLoopback lets clients without credentials in, as devices,
	// on a listener bound to a loopback address; never on another.
	AnonymousOnLoopback bool
	// A listener not bound to loopback speaks TLS only: with the key pair
	// in CertFile and KeyFile, or else with a self-signed one kept in
	// TLSDir (made on first start, like the QUIC listener's).
	CertFile, KeyFile string
	TLSDir            string
	// Pool, when set, makes the broker a member of a pool (brokerpool.go);
	// PoolJoined are the peers joined at run time.
	Pool       *pool.Config
	PoolJoined []string
}

// BrokerLogin is one user's credentials on the embedded broker. Password
// is the password itself or its bcrypt hash ("$2a$..."; nats-server
// compares either).
type BrokerLogin struct {
	Name     string `koanf:"name"`
	Password string `koanf:"password"`
}

// Broker is a running embedded broker.
type Broker struct {
	srv      *server.Server
	mqttAddr string
	kerfd    BrokerLogin // kerfd's own user: every subject, the JetStream API
	// cert is the certificate of the listeners that speak TLS; empty when
	// none does.
	cert tls.Certificate

	// The options the server runs with, for reloads that change device
	// logins; base holds kerfd's user and the configured devices, which a
	// reload keeps (as it keeps the anonymous device, an nkey user).
	mu   sync.Mutex
	opts *server.Options
	base []*server.User

	logs *natsLogger // nil without a logger; flushed at shutdown

	system BrokerLogin // the system account's user, in a pool only
}

// Users and the account on the embedded broker. Devices and kerfd share
// kerfdAccount, whose JetStream holds the MQTT layer's streams; devices'
// permissions keep them off the JetStream API, $SYS and everything but
// their own subjects. The MQTT layer reaches JetStream through the
// server's internal clients, which user permissions do not bind.
const (
	kerfdAccount  = "KERF"
	kerfdUser     = "kerfd"
	anonymousUser = "anonymous-device"
)

// devicePermissions: publish load signals and statuses (a device's Will is
// a status), subscribe to nothing but kerfd's own status. A device that
// logs in publishes under its own name only, as the topic's source
// (edge/v1/+/+/load/<name>); the anonymous device (loopback only) under
// any. MQTT topics are checked as their NATS subjects.
func devicePermissions(name string) *server.Permissions {
	publish := []string{ingest.LoadFilterNATS, ingest.StatusFilterNATS}
	if name != "" {
		publish = []string{"edge.v1.*.*.load." + name, "edge.v1.*.*.status." + name}
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: publish},
		Subscribe: &server.SubjectPermission{Allow: []string{"edge.v1.*.*.status.kerfd"}},
	}
}

// StartBroker starts the embedded broker and waits until it accepts clients.
func StartBroker(cfg BrokerConfig, log *slog.Logger) (*Broker, error) {
	if cfg.ServerName == "" {
		cfg.ServerName = "kerfd"
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("broker: empty store dir")
	}
	if cfg.MaxMemory <= 0 || cfg.MaxStore <= 0 {
		return nil, errors.New("broker: JetStream caps must be positive")
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	nh, np, err := splitListen(cfg.NATSListen, false)
	if err != nil {
		return nil, fmt.Errorf("broker: nats listen: %w", err)
	}
	mh, mp, err := splitListen(cfg.MQTTListen, true)
	if err != nil {
		return nil, fmt.Errorf("broker: mqtt listen: %w", err)
	}
	opts, kerfd, err := brokerAuth(cfg, nh, mh)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := removeGlobalAccountStore(cfg.StoreDir, log); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	opts.ServerName = cfg.ServerName
	opts.Host, opts.Port = nh, np
	opts.JetStream, opts.StoreDir = true, cfg.StoreDir
	opts.JetStreamMaxMemory, opts.JetStreamMaxStore = cfg.MaxMemory, cfg.MaxStore
	opts.NoSigs, opts.MaxPayload = true, 1<<20
	opts.MQTT.Host, opts.MQTT.Port = mh, mp
	opts.NoSublistCache = !cfg.SublistCache
	cert, err := brokerTLS(cfg, opts, nh, mh, log)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	var system BrokerLogin
	if cfg.Pool != nil {
		if system, err = joinPool(cfg, opts); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	var logs *natsLogger
	if log != nil {
		logs = newNATSLogger(log.With("component", "broker"))
		srv.SetLoggerV2(logs, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("broker: not ready after 10s (ports in use?)")
	}
	if cfg.Pool != nil {
		// JetStream needs a quorum of the pool first.
		go createPoolMQTTStreams(srv, kerfd, cfg, log)
	} else if err := createMQTTStreams(srv, kerfd, cfg, log); err != nil {
		srv.Shutdown()
		return nil, err
	}
	return &Broker{srv: srv, mqttAddr: net.JoinHostPort(mh, strconv.Itoa(mp)), kerfd: kerfd, cert: cert,
		opts: opts, base: slices.Clone(opts.Users), logs: logs, system: system}, nil
}

// SetDevices replaces the device logins added since start (the
// configured ones stay) and applies them to the running server: a new
// device may log in at once, and a client logged in as a device no longer
// listed is disconnected and refused from then on. Passwords may be
// bcrypt hashes.
func (b *Broker) SetDevices(devices []BrokerLogin) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var acc *server.Account
	taken := map[string]bool{}
	for _, u := range b.base {
		taken[u.Username] = true
		if u.Username == kerfdUser {
			acc = u.Account
		}
	}
	users := slices.Clone(b.base)
	for _, d := range devices {
		if err := validDeviceName(d.Name); err != nil {
			return err
		}
		if taken[d.Name] {
			return fmt.Errorf("device %q is already a login on the broker", d.Name)
		}
		taken[d.Name] = true
		hash, err := bcryptHash(d.Password)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Name, err)
		}
		users = append(users, &server.User{Username: d.Name, Password: hash, Account: acc, Permissions: devicePermissions(d.Name)})
	}
	opts := b.opts.Clone()
	opts.Users = users
	if err := b.srv.ReloadOptions(opts); err != nil {
		return fmt.Errorf("broker: applying device logins: %w", err)
	}
	b.opts = opts
	return nil
}

// brokerTLS turns TLS on for each listener not bound to loopback: with
// the configured key pair, or the self-signed one in cfg.TLSDir, whose
// fingerprint it logs for devices to pin. It returns the certificate,
// empty when both listeners are on loopback.
func brokerTLS(cfg BrokerConfig, opts *server.Options, natsHost, mqttHost string, log *slog.Logger) (tls.Certificate, error) {
	if isLoopback(natsHost) && isLoopback(mqttHost) {
		return tls.Certificate{}, nil
	}
	var cert tls.Certificate
	var err error
	source := cfg.CertFile
	if cfg.CertFile != "" {
		cert, err = tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	} else if cfg.TLSDir == "" {
		return cert, errors.New("a listener beyond loopback needs TLS: no certificate and no directory to keep one in")
	} else {
		cert, _, err = transport.LoadOrCreateCert(cfg.TLSDir)
		source = filepath.Join(cfg.TLSDir, "tls-cert.pem")
	}
	if err != nil {
		return cert, fmt.Errorf("TLS: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if !isLoopback(natsHost) {
		opts.TLSConfig, opts.TLSTimeout = tc, 5
	}
	if !isLoopback(mqttHost) {
		opts.MQTT.TLSConfig, opts.MQTT.TLSTimeout = tc.Clone(), 5
	}
	if log != nil {
		log.Info("broker: TLS on the listeners beyond loopback", "certificate", source,
			"fingerprint", transport.FingerprintOf(cert.Certificate[0]).String(),
			"nats", opts.TLSConfig != nil, "mqtt", opts.MQTT.TLSConfig != nil)
	}
	return cert, nil
}

// ClientTLS is a TLS configuration that trusts the broker's certificate
// alone, by its fingerprint, whatever name a client dials it by; nil when
// no listener speaks TLS.
func (b *Broker) ClientTLS() *tls.Config {
	if len(b.cert.Certificate) == 0 {
		return nil
	}
	want := transport.FingerprintOf(b.cert.Certificate[0])
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // the fingerprint below is the check
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || transport.FingerprintOf(raw[0]) != want {
				return errors.New("broker certificate does not match its fingerprint")
			}
			return nil
		},
	}
}

// brokerAuth makes the options' account and users: kerfdAccount with
// JetStream capped at cfg's limits, kerfd's user (a fresh random password
// each start), the configured devices, and the anonymous device on
// loopback listeners when cfg allows it.
func brokerAuth(cfg BrokerConfig, natsHost, mqttHost string) (*server.Options, BrokerLogin, error) {
	opts := &server.Options{}
	// An account's JetStream limits are set only through the configuration
	// language; the string carries nothing but numbers.
	conf := fmt.Sprintf("accounts { %s { jetstream { max_mem: %d, max_file: %d } } }", kerfdAccount, cfg.MaxMemory, cfg.MaxStore)
	if err := opts.ProcessConfigString(conf); err != nil {
		return nil, BrokerLogin{}, err
	}
	var acc *server.Account
	for _, a := range opts.Accounts {
		if a.Name == kerfdAccount {
			acc = a
		}
	}
	if acc == nil {
		return nil, BrokerLogin{}, errors.New("account " + kerfdAccount + " missing")
	}
	// The server holds only bcrypt hashes (the least cost: the passwords
	// are random or the operator's, and a slow hash would make a flood of
	// failed logins cost a CPU); kerfd keeps its own password to log in.
	kerfd := BrokerLogin{Name: kerfdUser, Password: rand.Text()}
	kerfdHash, err := bcryptHash(kerfd.Password)
	if err != nil {
		return nil, BrokerLogin{}, err
	}
	opts.Users = []*server.User{{Username: kerfd.Name, Password: kerfdHash, Account: acc}}
	for _, d := range cfg.Devices {
		if err := validDeviceName(d.Name); err != nil {
			return nil, BrokerLogin{}, err
		}
		hash, err := bcryptHash(d.Password)
		if err != nil {
			return nil, BrokerLogin{}, fmt.Errorf("device %s: %w", d.Name, err)
		}
		opts.Users = append(opts.Users, &server.User{Username: d.Name, Password: hash, Account: acc, Permissions: devicePermissions(d.Name)})
	}
	if cfg.AnonymousOnLoopback && (isLoopback(natsHost) || isLoopback(mqttHost)) {
		// The anonymous device is an nkey user: nats-server lets a client
		// without credentials in as its no-auth user by copying that
		// user's password into the client's, so a user with a hashed
		// password would be compared with its own hash and refused. Nobody
		// holds the nkey's seed, and a client naming the nkey must sign
		// with it on every listener where it is not the no-auth user.
		anon, err := anonymousDevice(acc)
		if err != nil {
			return nil, BrokerLogin{}, err
		}
		opts.Nkeys = []*server.NkeyUser{anon}
		// nats-server's MQTT listener falls back to the NATS listener's
		// no-auth user when it has none of its own: with MQTT beyond
		// loopback, NATS on loopback takes no anonymous device either.
		if isLoopback(natsHost) && isLoopback(mqttHost) {
			opts.NoAuthUser = anon.Nkey
		}
		if isLoopback(mqttHost) {
			opts.MQTT.NoAuthUser = anon.Nkey
		}
	}
	return opts, kerfd, nil
}

// anonymousDevice is the user clients without credentials get, where
// they are let in: a new nkey whose seed is thrown away.
func anonymousDevice(acc *server.Account) (*server.NkeyUser, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return &server.NkeyUser{Nkey: pub, Account: acc, Permissions: devicePermissions("")}, nil
}

// bcryptHash is password's bcrypt hash, or password itself when it is
// one already (nats-server tells them apart the same way).
func bcryptHash(password string) (string, error) {
	if isBcryptHash(password) {
		return password, nil
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	return string(h), err
}

// isBcryptHash reports whether s looks like a bcrypt hash: $2a$, $2b$,
// $2x$ or $2y$, then the cost's two digits.
func isBcryptHash(s string) bool {
	return len(s) > 7 && s[0] == '$' && s[1] == '2' && strings.ContainsRune("abxy", rune(s[2])) && s[3] == '$' &&
		s[4] >= '0' && s[4] <= '9' && s[5] >= '0' && s[5] <= '9' && s[6] == '$'
}

// removeGlobalAccountStore removes the JetStream streams of the global
// account, where a broker without accounts kept MQTT sessions, retained
// messages and whatever streams clients created. No user is in that
// account now, so nothing could read them, and they would hold disk
// outside the caps. MQTT devices re-subscribe and re-publish retained
// statuses when they reconnect.
func removeGlobalAccountStore(storeDir string, log *slog.Logger) error {
	dir := filepath.Join(storeDir, server.JetStreamStoreDir, server.DEFAULT_GLOBAL_ACCOUNT)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if log != nil {
		log.Warn("broker: removing streams of the global account, which no client can reach", "dir", dir)
	}
	return os.RemoveAll(dir)
}

// validDeviceName refuses the names of the broker's own users and names
// that cannot be a topic's source segment, which a device publishes under.
func validDeviceName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("device with an empty name")
	case name == kerfdUser || name == anonymousUser:
		return fmt.Errorf("device name %q is the broker's own", name)
	}
	if err := ingest.ValidSegment(name); err != nil {
		return fmt.Errorf("device name: %w", err)
	}
	return nil
}

// isLoopback reports whether a listener host binds loopback only.
// "localhost" counts; an empty host (every interface) does not.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// KerfdLogin is kerfd's own user on the broker: every subject and the
// JetStream API. Its password changes with every start.
func (b *Broker) KerfdLogin() BrokerLogin { return b.kerfd }

// mqttMessageStream is the JetStream stream in which nats-server's MQTT
// layer stores every QoS 1 and 2 PUBLISH for MQTT subscribers, with
// interest retention. nats-server creates it file-backed on first use
// unless it exists; its name and subjects are documented in nats-server's
// MQTT implementation notes.
var mqttMessageStream = jetstream.StreamConfig{Name: "$MQTT_msgs", Subjects: []string{"$MQTT.msgs.>"},
	Retention: jetstream.InterestPolicy, Storage: jetstream.MemoryStorage}

// createMQTTMessageStream creates the MQTT message stream in memory before
// nats-server would create it on file. Each QoS 1 PUBLISH is offered to it
// before the PUBACK; on file, even one no MQTT subscriber wants costs a
// write syscall (a skip record), and kerf bench ingest ran 13% faster in
// memory. The price: QoS 1 messages queued for offline MQTT subscribers do
// not survive a restart. Sessions and retained messages stay on file.
//
// A file-backed stream left by an earlier run, or created by an MQTT client
// that connected in the moment before this ran, is kept (with a warning):
// deleting it would drop its consumers, the MQTT sessions' subscriptions.
func createMQTTMessageStream(ctx context.Context, js jetstream.JetStream, log *slog.Logger) error {
	_, err := js.CreateStream(ctx, mqttMessageStream)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		st, lerr := js.Stream(ctx, mqttMessageStream.Name)
		if lerr != nil {
			return fmt.Errorf("broker: %s: %w", mqttMessageStream.Name, lerr)
		}
		if got := st.CachedInfo().Config.Storage; got != mqttMessageStream.Storage && log != nil {
			log.Warn("broker: MQTT messages stay in the existing stream's storage", "stream", mqttMessageStream.Name,
				"storage", got.String(), "want", mqttMessageStream.Storage.String())
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("broker: create %s: %w", mqttMessageStream.Name, err)
	}
	return nil
}

// createMQTTStreams sets up, as kerfd's user, the MQTT layer's streams
// that kerfd configures: the message stream (when in memory) and the
// retained messages' caps.
func createMQTTStreams(srv *server.Server, kerfd BrokerLogin, cfg BrokerConfig, log *slog.Logger) error {
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.UserInfo(kerfd.Name, kerfd.Password), nats.Name("kerfd-setup"))
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cfg.MQTTMessages != "file" {
		if err := createMQTTMessageStream(ctx, js, log); err != nil {
			return err
		}
	}
	if cfg.MaxRetained > 0 {
		return capMQTTRetained(ctx, js, cfg.MaxRetained, cfg.MaxRetainedSize, 1)
	}
	return nil
}

// capMQTTRetained creates, or updates, the stream in which nats-server's
// MQTT layer keeps retained messages, as nats-server would make it (one
// message per topic, on file) but capped: at most max messages of at
// most size bytes, and new topics refused past the cap (DiscardNew; a
// topic's newer message still replaces its older). Without it a device
// publishing retained messages on ever new topics fills max_store, and
// then MQTT sessions and QoS 1 messages are refused too.
func capMQTTRetained(ctx context.Context, js jetstream.JetStream, max int64, size int32, replicas int) error {
	cfg := jetstream.StreamConfig{Name: mqttRetainedStream, Subjects: []string{"$MQTT.rmsgs.>"}, Storage: jetstream.FileStorage, Replicas: replicas,
		Retention: jetstream.LimitsPolicy, MaxMsgsPerSubject: 1, MaxMsgs: max, Discard: jetstream.DiscardNew}
	if size > 0 {
		cfg.MaxMsgSize = size + retainedHeader
		cfg.MaxBytes = max * int64(cfg.MaxMsgSize)
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("broker: capping %s: %w", mqttRetainedStream, err)
	}
	return nil
}

// retainedHeader is room for the header nats-server stores with each
// retained message (its topic, origin, source and flags), on top of the
// payload that max_retained_size caps.
const retainedHeader = 1024

// mqttRetainedStream is nats-server's stream of MQTT retained messages
// (its MQTT implementation notes name it).
const mqttRetainedStream = "$MQTT_rmsgs"

// splitListen parses host:port. Port 0 for NATS becomes the server's random
// port; for MQTT, whose bound port the server does not report, a free one.
func splitListen(addr string, pick bool) (string, int, error) {
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	if p == 0 && !pick {
		return h, server.RANDOM_PORT, nil
	}
	if p == 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(h, "0"))
		if err != nil {
			return "", 0, err
		}
		p = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	return h, p, nil
}

// ClientURL is the NATS URL for clients.
func (b *Broker) ClientURL() string { return b.srv.ClientURL() }

// MQTTAddr is the MQTT listener's host:port.
func (b *Broker) MQTTAddr() string { return b.mqttAddr }

// Shutdown stops the broker and waits for it.
func (b *Broker) Shutdown() {
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
	b.logs.close()
}

// IngestConfig is the ingest section of the configuration.
type IngestConfig struct {
	Enabled bool   `koanf:"enabled"`
	Site    string `koanf:"site"`
	Node    string `koanf:"node"` // empty: the host name
	Broker  struct {
		Mode     string `koanf:"mode"` // embedded or external
		Embedded struct {
			NATSListen string `koanf:"nats_listen"`
			MQTTListen string `koanf:"mqtt_listen"`
			ServerName string `koanf:"server_name"`
			StoreDir   string `koanf:"store_dir"` // empty: <state_dir>/broker
			MaxMemory  string `koanf:"max_memory"`
			MaxStore   string `koanf:"max_store"`
			// MQTTMessages: memory or file (BrokerConfig.MQTTMessages).
			MQTTMessages string `koanf:"mqtt_messages"`
			// MaxRetained, MaxRetainedSize: BrokerConfig's.
			MaxRetained     int64  `koanf:"max_retained"`
			MaxRetainedSize string `koanf:"max_retained_size"`
			SublistCache    bool   `koanf:"sublist_cache"` // BrokerConfig.SublistCache
			// Devices: BrokerConfig.Devices.
			Devices []BrokerLogin `koanf:"devices"`
			// AnonymousDevices: loopback (BrokerConfig.AnonymousOnLoopback) or off.
			AnonymousDevices string `koanf:"anonymous_devices"`
			// TLS of the listeners beyond loopback (BrokerConfig.CertFile).
			TLS struct {
				CertFile string `koanf:"cert_file"`
				KeyFile  string `koanf:"key_file"`
			} `koanf:"tls"`
		} `koanf:"embedded"`
		External struct {
			Protocol  string `koanf:"protocol"` // mqtt or nats
			URL       string `koanf:"url"`
			Username  string `koanf:"username"`
			Password  string `koanf:"password"`
			Token     string `koanf:"token"`      // nats only
			CredsFile string `koanf:"creds_file"` // nats only
			TLS       struct {
				CAFile     string `koanf:"ca_file"`
				CertFile   string `koanf:"cert_file"`
				KeyFile    string `koanf:"key_file"`
				ServerName string `koanf:"server_name"`
			} `koanf:"tls"`
		} `koanf:"external"`
	} `koanf:"broker"`
	Queue struct {
		PerSource  int `koanf:"per_source"`
		Total      int `koanf:"total"`
		MaxSources int `koanf:"max_sources"`
	} `koanf:"queue"`
	Tick      time.Duration `koanf:"tick"`
	SeriesTTL time.Duration `koanf:"series_ttl"` // ingest.EngineOptions.SeriesTTL
	// The series table's bounds: ingest.EngineOptions of the same names.
	MaxSeries             int           `koanf:"max_series"`
	MaxSeriesPerPublisher int           `koanf:"max_series_per_publisher"`
	MaxUnreadSeries       int           `koanf:"max_unread_series"`
	UnreadTTL             time.Duration `koanf:"unread_ttl"`
	// MaxSamplesPerSeries is ingest.EngineOptions.MaxSamples: with
	// MaxSeries it bounds the table's memory.
	MaxSamplesPerSeries int           `koanf:"max_samples_per_series"`
	Rules               []ingest.Rule `koanf:"rules"`
}

func (c *Config) validateIngest() []error {
	in := &c.Ingest
	var errs []error
	if in.Site != "" {
		if err := ingest.ValidSegment(in.Site); err != nil {
			errs = append(errs, fmt.Errorf("ingest.site: %w", err))
		}
	}
	if in.Node != "" {
		if err := ingest.ValidSegment(in.Node); err != nil {
			errs = append(errs, fmt.Errorf("ingest.node: %w", err))
		}
	}
	switch in.Broker.Mode {
	case "embedded":
		e := in.Broker.Embedded
		for _, f := range [][2]string{{"nats_listen", e.NATSListen}, {"mqtt_listen", e.MQTTListen}} {
			if _, _, err := net.SplitHostPort(f[1]); err != nil {
				errs = append(errs, fmt.Errorf("ingest.broker.embedded.%s: %w", f[0], err))
			}
		}
		for _, f := range [][2]string{{"max_memory", e.MaxMemory}, {"max_store", e.MaxStore}} {
			if n, err := units.ParseBytes(f[1]); err != nil {
				errs = append(errs, fmt.Errorf("ingest.broker.embedded.%s: %w", f[0], err))
			} else if n == 0 {
				errs = append(errs, fmt.Errorf("ingest.broker.embedded.%s: want more than 0", f[0]))
			}
		}
		if e.AnonymousDevices != "loopback" && e.AnonymousDevices != "off" {
			errs = append(errs, fmt.Errorf("ingest.broker.embedded.anonymous_devices %q: want loopback or off", e.AnonymousDevices))
		}
		seen := map[string]bool{}
		for i, d := range e.Devices {
			if err := validDeviceName(d.Name); err != nil {
				errs = append(errs, fmt.Errorf("ingest.broker.embedded.devices[%d]: %w", i, err))
			} else if seen[d.Name] {
				errs = append(errs, fmt.Errorf("ingest.broker.embedded.devices[%d]: %q listed twice", i, d.Name))
			}
			seen[d.Name] = true
			if d.Password == "" {
				errs = append(errs, fmt.Errorf("ingest.broker.embedded.devices[%d]: empty password", i))
			}
		}
		if (e.TLS.CertFile == "") != (e.TLS.KeyFile == "") {
			errs = append(errs, errors.New("ingest.broker.embedded.tls: cert_file and key_file go together"))
		}
		if e.MaxRetained < 0 {
			errs = append(errs, fmt.Errorf("ingest.broker.embedded.max_retained = %d: want 0 (no cap) or more", e.MaxRetained))
		}
		if n, err := units.ParseBytes(e.MaxRetainedSize); err != nil || n > 1<<20 {
			errs = append(errs, fmt.Errorf("ingest.broker.embedded.max_retained_size %q: want bytes, at most 1MiB", e.MaxRetainedSize))
		}
		if e.MQTTMessages != "memory" && e.MQTTMessages != "file" {
			errs = append(errs, fmt.Errorf("ingest.broker.embedded.mqtt_messages %q: want memory or file", e.MQTTMessages))
		}
	case "external":
		x := in.Broker.External
		if x.Protocol != "mqtt" && x.Protocol != "nats" {
			errs = append(errs, fmt.Errorf("ingest.broker.external.protocol %q: want mqtt or nats", x.Protocol))
		}
		if in.Enabled && x.URL == "" {
			errs = append(errs, errors.New("ingest.broker.external.url is empty"))
		}
		if (x.TLS.CertFile == "") != (x.TLS.KeyFile == "") {
			errs = append(errs, errors.New("ingest.broker.external.tls: cert_file and key_file go together"))
		}
	default:
		errs = append(errs, fmt.Errorf("ingest.broker.mode %q: want embedded or external", in.Broker.Mode))
	}
	if in.SeriesTTL < 0 {
		errs = append(errs, fmt.Errorf("ingest.series_ttl %v: must not be negative", in.SeriesTTL))
	}
	errs = append(errs, in.validateSeriesBounds()...)
	if _, err := ingest.ValidateRules(in.Rules); err != nil {
		errs = append(errs, fmt.Errorf("ingest.%w", err))
	}
	return errs
}

// IngestNode is this node's name in topics: ingest.node, else the host name
// with characters topics cannot carry replaced by '-'.
func (c *Config) IngestNode() string {
	if c.Ingest.Node != "" {
		return c.Ingest.Node
	}
	h, _ := os.Hostname()
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, h)
	if h == "" {
		return "node"
	}
	return h[:min(len(h), 64)]
}

// BrokerConfig is the embedded broker's configuration.
func (c *Config) BrokerConfig() BrokerConfig {
	e := c.Ingest.Broker.Embedded
	mem, _ := units.ParseBytes(e.MaxMemory)
	store, _ := units.ParseBytes(e.MaxStore)
	dir := e.StoreDir
	if dir == "" {
		dir = filepath.Join(c.StateDir, "broker")
	}
	name := e.ServerName
	if name == "" {
		name = "kerfd-" + c.IngestNode()
	}
	retainedSize, _ := units.ParseBytes(e.MaxRetainedSize)
	return BrokerConfig{ServerName: name, StoreDir: dir, NATSListen: e.NATSListen, MQTTListen: e.MQTTListen,
		MaxMemory: int64(mem), MaxStore: int64(store), MQTTMessages: e.MQTTMessages, SublistCache: e.SublistCache,
		MaxRetained: e.MaxRetained, MaxRetainedSize: int32(retainedSize),
		CertFile: e.TLS.CertFile, KeyFile: e.TLS.KeyFile, TLSDir: filepath.Join(c.StateDir, "broker-tls"),
		Devices: e.Devices, AnonymousOnLoopback: e.AnonymousDevices == "loopback", Pool: c.poolOfBroker(), PoolJoined: pool.LoadJoined(c.PoolJoinedPath())}
}

// IngestTLS builds the TLS configuration for an external broker, or nil
// when none is configured and the URL does not ask for TLS.
func (c *Config) IngestTLS() (*tls.Config, error) {
	x := c.Ingest.Broker.External
	t := x.TLS
	if t.CAFile == "" && t.CertFile == "" && t.ServerName == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ingest.broker.external.tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ingest.broker.external.tls.ca_file %s: no PEM certificates", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ingest.broker.external.tls: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
