package appliance

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// violations collects the errors the broker sends a NATS connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

func (v *violations) has(sub string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}

// deviceConn connects to the broker's NATS listener as a device: anonymous
// when login is empty.
func deviceConn(t *testing.T, b *Broker, login BrokerLogin) (*nats.Conn, *violations) {
	t.Helper()
	v := &violations{}
	opts := []nats.Option{nats.ErrorHandler(v.handler), nats.Timeout(testkit.WaitTimeout)}
	if login.Name != "" {
		opts = append(opts, nats.UserInfo(login.Name, login.Password))
	}
	nc, err := nats.Connect(b.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

func startDeviceBroker(t *testing.T, cfg BrokerConfig) *Broker {
	t.Helper()
	cfg.StoreDir, cfg.MaxMemory, cfg.MaxStore = t.TempDir(), 32<<20, 64<<20
	if cfg.TLSDir == "" {
		cfg.TLSDir = t.TempDir()
	}
	if cfg.NATSListen == "" {
		cfg.NATSListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	}
	b, err := StartBroker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	return b
}

// A device, anonymous or logged in, cannot delete or create streams
// through the JetStream API: $MQTT_msgs survives, and MQTT QoS 1 publishes
// still reach kerfd after the attempt.
func TestBrokerDevicesHaveNoJetStreamAPI(t *testing.T) {
	b := startDeviceBroker(t, BrokerConfig{AnonymousOnLoopback: true, Devices: []BrokerLogin{{Name: "cam-07", Password: "pw"}}})
	kjs, err := jetstream.New(kerfdConn(t, b))
	if err != nil {
		t.Fatal(err)
	}
	for _, login := range []BrokerLogin{{}, {Name: "cam-07", Password: "pw"}} {
		nc, v := deviceConn(t, b, login)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if _, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.DELETE.$MQTT_msgs", nil); err == nil {
			t.Errorf("device %q: stream delete answered", login.Name)
		}
		cancel()
		waitFor(t, "a publish permission violation", func() bool { return v.has("Permissions Violation for Publish") })
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "fill", Subjects: []string{"fill.>"}, Storage: jetstream.FileStorage})
		cancel()
		if err == nil {
			t.Errorf("device %q created a stream", login.Name)
		}
		if _, err := kjs.Stream(context.Background(), mqttMessageStream.Name); err != nil {
			t.Fatalf("after device %q: %s: %v", login.Name, mqttMessageStream.Name, err)
		}
		if _, err := kjs.Stream(context.Background(), "fill"); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("after device %q: stream fill: %v", login.Name, err)
		}
	}
	// MQTT QoS 1 still goes through JetStream and reaches kerfd.
	kerfd := kerfdConn(t, b)
	sub, err := kerfd.SubscribeSync(ingest.LoadFilterNATS)
	if err != nil {
		t.Fatal(err)
	}
	kerfd.Flush() // the server has the subscription before anything is published
	dev := mqttClientAs(t, b.MQTTAddr(), "cam-07", BrokerLogin{Name: "cam-07", Password: "pw"}, nil)
	publish(t, dev, "edge/v1/s/n/load/cam-07", 1, false, `[{"n":"q","v":1}]`)
	if m, err := sub.NextMsg(5 * time.Second); err != nil || m.Subject != "edge.v1.s.n.load.cam-07" {
		t.Fatalf("kerfd got %v, %v", m, err)
	}
}

// A device publishes only load signals and statuses, and subscribes only
// to kerfd's status: not to others' signals, not to $SYS.
func TestBrokerDevicePermissions(t *testing.T) {
	b := startDeviceBroker(t, BrokerConfig{AnonymousOnLoopback: true})
	kerfd := kerfdConn(t, b)
	seen, err := kerfd.SubscribeSync("edge.>")
	if err != nil {
		t.Fatal(err)
	}
	kerfd.Flush()
	nc, v := deviceConn(t, b, BrokerLogin{})
	nc.Publish("edge.v1.s.n.config.cam-07", []byte("x"))
	nc.Publish("edge.v1.s.n.load.cam-07", []byte("ok"))
	if m, err := seen.NextMsg(5 * time.Second); err != nil || m.Subject != "edge.v1.s.n.load.cam-07" {
		t.Fatalf("kerfd's first message %v, %v: want the load signal alone", m, err)
	}
	for _, subj := range []string{"$SYS.>", ingest.LoadFilterNATS, "$JS.API.>"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "subscribe violation on "+subj, func() bool { return v.has(`Permissions Violation for Subscription to "` + subj + `"`) })
	}
	if _, err := nc.SubscribeSync("edge.v1.s.n.status.kerfd"); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	if v.has("status.kerfd") {
		t.Error("a device may not watch kerfd's status")
	}

	// Over MQTT: the SUBACK refuses others' load signals.
	dev := mqttClient(t, b.MQTTAddr(), "cam-08", nil)
	tok := dev.Subscribe("edge/v1/+/+/load/+", 1, func(mqtt.Client, mqtt.Message) {})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if got := tok.(*mqtt.SubscribeToken).Result()["edge/v1/+/+/load/+"]; got != 0x80 {
		t.Errorf("SUBACK for others' load signals %#x, want 0x80 (failure)", got)
	}
}

// Device logins: the password as such or its bcrypt hash; a wrong one,
// or none when anonymous devices are off, is refused on both listeners.
func TestBrokerDeviceLogin(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b := startDeviceBroker(t, BrokerConfig{Devices: []BrokerLogin{{Name: "cam-07", Password: "pw"}, {Name: "cam-09", Password: string(hash)}}})
	for _, c := range []struct {
		login BrokerLogin
		ok    bool
	}{{BrokerLogin{"cam-07", "pw"}, true}, {BrokerLogin{"cam-09", "secret"}, true}, {BrokerLogin{"cam-07", "wrong"}, false},
		{BrokerLogin{"cam-09", string(hash)}, false}, {BrokerLogin{}, false}, {BrokerLogin{"kerfd", ""}, false}} {
		var opts []nats.Option
		if c.login.Name != "" {
			opts = append(opts, nats.UserInfo(c.login.Name, c.login.Password))
		}
		nc, err := nats.Connect(b.ClientURL(), opts...)
		if err == nil {
			nc.Close()
		}
		if (err == nil) != c.ok {
			t.Errorf("nats %q/%q: %v, want accepted %v", c.login.Name, c.login.Password, err, c.ok)
		}
		o := mqtt.NewClientOptions().AddBroker("tcp://" + b.MQTTAddr()).SetClientID("c").SetConnectTimeout(5 * time.Second).
			SetUsername(c.login.Name).SetPassword(c.login.Password)
		m := mqtt.NewClient(o)
		tok := m.Connect()
		ok := tok.WaitTimeout(10*time.Second) && tok.Error() == nil
		if ok {
			m.Disconnect(0)
		}
		if ok != c.ok {
			t.Errorf("mqtt %q/%q: %v, want accepted %v", c.login.Name, c.login.Password, tok.Error(), c.ok)
		}
	}
}

// Anonymous devices are let in only on a listener bound to loopback: an
// MQTT listener beyond it takes none even when the NATS listener is on
// loopback (nats-server's MQTT listener would fall back to NATS's
// no-auth user).
func TestBrokerAnonymousOnlyOnLoopback(t *testing.T) {
	for _, natsListen := range []string{"0.0.0.0:0", "127.0.0.1:0"} {
		t.Run("nats="+natsListen, func(t *testing.T) { testBrokerAnonymousOnlyOnLoopback(t, natsListen) })
	}
}

func testBrokerAnonymousOnlyOnLoopback(t *testing.T, natsListen string) {
	b := startDeviceBroker(t, BrokerConfig{AnonymousOnLoopback: true, NATSListen: natsListen, MQTTListen: "0.0.0.0:0"})
	if strings.HasPrefix(b.ClientURL(), "tls://") {
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(b.ClientURL(), "tls://"))
		if nc, err := nats.Connect("tls://127.0.0.1:"+port, nats.Secure(b.ClientTLS())); err == nil {
			nc.Close()
			t.Error("anonymous NATS client accepted on 0.0.0.0")
		}
	}
	_, mport, _ := net.SplitHostPort(b.MQTTAddr())
	m := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://127.0.0.1:" + mport).SetTLSConfig(b.ClientTLS()).SetClientID("anon").SetConnectTimeout(5 * time.Second))
	if tok := m.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		m.Disconnect(0)
		t.Error("anonymous MQTT client accepted on 0.0.0.0")
	}
}

// The default JetStream caps refuse a stream larger than the store may
// hold, even from kerfd's own user.
func TestBrokerStorageCaps(t *testing.T) {
	dir := t.TempDir()
	cfg, err := LoadConfig("", []string{"KERF_STATE_DIR=" + dir})
	if err != nil {
		t.Fatal(err)
	}
	bc := cfg.BrokerConfig()
	bc.NATSListen, bc.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	b, err := StartBroker(bc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	js, err := jetstream.New(kerfdConn(t, b))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, st := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "big", Subjects: []string{"big.>"}, Storage: st, MaxBytes: 256 << 20})
		if err == nil {
			t.Errorf("a 256 MiB %v stream was created under the default caps", st)
			js.DeleteStream(ctx, "big")
		}
	}
	// A stream without its own cap stops at the account's.
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "fill", Subjects: []string{"fill.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000<<10)
	var refused error
	stored := 0
	for ; stored < 200; stored++ {
		if _, refused = js.Publish(ctx, "fill.x", payload); refused != nil {
			break
		}
	}
	if refused == nil {
		t.Fatal("200 publishes of 1000 KiB all stored")
	}
	t.Logf("%d stored, then: %v", stored, refused)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > uint64(bc.MaxStore) {
		t.Fatalf("stream holds %d bytes, cap %d", info.State.Bytes, bc.MaxStore)
	}
}

// Streams a broker without accounts kept in the global account are
// removed at start: nobody can reach them, and they held disk past the caps.
func TestBrokerRemovesGlobalAccountStreams(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "jetstream", "$G", "streams", "fill")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "1.blk"), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := StartBroker(BrokerConfig{StoreDir: dir, NATSListen: "127.0.0.1:0", MQTTListen: "127.0.0.1:0", MaxMemory: 32 << 20, MaxStore: 64 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	if _, err := os.Stat(filepath.Join(dir, "jetstream", "$G")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the global account's streams are still there: %v", err)
	}
}
