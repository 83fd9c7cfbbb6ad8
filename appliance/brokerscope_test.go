package appliance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/kerf-edge/kerf/transport"
)

// A device that logs in publishes load signals and statuses under its
// own name only, over NATS and MQTT; what it sends under another's is
// not delivered.
func TestBrokerDevicePublishesUnderItsOwnName(t *testing.T) {
	b := startDeviceBroker(t, BrokerConfig{Devices: []BrokerLogin{{Name: "cam-07", Password: "pw"}}})
	kerfd := kerfdConn(t, b)
	seen, err := kerfd.SubscribeSync("edge.>")
	if err != nil {
		t.Fatal(err)
	}
	kerfd.Flush()
	next := func() *nats.Msg {
		t.Helper()
		m, err := seen.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	nc, v := deviceConn(t, b, BrokerLogin{Name: "cam-07", Password: "pw"})
	for _, subj := range []string{"edge.v1.s.n.load.cam-08", "edge.v1.s.n.status.cam-08", "edge.v1.s.n.load.cam-07x"} {
		nc.Publish(subj, []byte("forged"))
		waitFor(t, "publish violation on "+subj, func() bool { return v.has(`Permissions Violation for Publish to "` + subj + `"`) })
	}
	nc.Publish("edge.v1.s.n.load.cam-07", []byte("own"))
	if m := next(); m.Subject != "edge.v1.s.n.load.cam-07" {
		t.Fatalf("kerfd got %s first: want the device's own signal alone", m.Subject)
	}

	dev := mqttClientAs(t, b.MQTTAddr(), "cam-07", BrokerLogin{Name: "cam-07", Password: "pw"}, nil)
	dev.Publish("edge/v1/s/n/load/cam-08", 0, false, "forged").WaitTimeout(5 * time.Second)
	publish(t, dev, "edge/v1/s/n/status/cam-07", 1, false, "online")
	if m := next(); m.Subject != "edge.v1.s.n.status.cam-07" {
		t.Fatalf("kerfd got %s first over MQTT: want the device's own status alone", m.Subject)
	}
}

// Retained messages on new topics past max_retained, or larger than
// max_retained_size, are not stored; a topic's newer message still
// replaces its older, and MQTT sessions are still kept.
func TestBrokerCapsRetainedMessages(t *testing.T) {
	b := startDeviceBroker(t, BrokerConfig{AnonymousOnLoopback: true, MaxRetained: 5, MaxRetainedSize: 64})
	dev := mqttClient(t, b.MQTTAddr(), "flooder", nil)
	for i := range 20 {
		dev.Publish(fmt.Sprintf("edge/v1/s/n%d/status/cam-07", i), 1, true, "online").WaitTimeout(5 * time.Second)
	}
	dev.Publish("edge/v1/s/n0/status/cam-07", 1, true, "offline").WaitTimeout(5 * time.Second)
	dev.Publish("edge/v1/s/n1/status/cam-07", 1, true, strings.Repeat("x", 2048)).WaitTimeout(5 * time.Second)

	js, err := jetstream.New(kerfdConn(t, b))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, mqttRetainedStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 5 {
		t.Errorf("%d retained messages stored, the cap is 5", info.State.Msgs)
	}

	// A new session, not clean, is still stored, and sees the replaced
	// status and the one the oversized message did not replace.
	k := b.KerfdLogin()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + b.MQTTAddr()).SetClientID("watcher").SetCleanSession(false).SetConnectTimeout(5 * time.Second).
		SetUsername(k.Name).SetPassword(k.Password)
	got := make(chan string, 4)
	w := mqtt.NewClient(o)
	if tok := w.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("a session with the retained store capped: %v", tok.Error())
	}
	defer w.Disconnect(0)
	for _, topic := range []string{"edge/v1/s/n0/status/cam-07", "edge/v1/s/n1/status/cam-07"} {
		tok := w.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() + "=" + string(m.Payload()) })
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		select {
		case m := <-got:
			want := map[string]string{"edge/v1/s/n0/status/cam-07": "offline", "edge/v1/s/n1/status/cam-07": "online"}[topic]
			if m != topic+"="+want {
				t.Errorf("retained %s, want %s", m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no retained message on %s", topic)
		}
	}
}

// Listeners beyond loopback speak TLS only, with a self-signed
// certificate kept in the state directory; a device that trusts it by its
// fingerprint logs in and publishes over NATS and MQTT.
func TestBrokerTLSBeyondLoopback(t *testing.T) {
	tlsDir := t.TempDir()
	login := BrokerLogin{Name: "cam-07", Password: "pw"}
	b := startDeviceBroker(t, BrokerConfig{NATSListen: "0.0.0.0:0", MQTTListen: "0.0.0.0:0", TLSDir: tlsDir, Devices: []BrokerLogin{login}})
	if _, err := os.Stat(filepath.Join(tlsDir, "tls-cert.pem")); err != nil {
		t.Fatalf("no certificate kept: %v", err)
	}
	if !strings.HasPrefix(b.ClientURL(), "tls://") || b.ClientTLS() == nil {
		t.Fatalf("NATS listener %s without TLS", b.ClientURL())
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(b.ClientURL(), "tls://"))
	_, mport, _ := net.SplitHostPort(b.MQTTAddr())

	// In the clear: the NATS greeting demands TLS, and a plain MQTT
	// CONNECT gets no CONNACK.
	raw, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	info, _ := bufio.NewReader(raw).ReadString('\n')
	raw.Close()
	if !strings.Contains(info, `"tls_required":true`) {
		t.Errorf("NATS greeting %q does not demand TLS", info)
	}
	plain := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:" + mport).SetClientID("plain").
		SetUsername(login.Name).SetPassword(login.Password).SetConnectTimeout(3 * time.Second))
	if tok := plain.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		plain.Disconnect(0)
		t.Error("MQTT in the clear accepted beyond loopback")
	}
	// A client pinning another certificate is refused.
	otherCert, _, err := transport.LoadOrCreateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pinOther := (&Broker{cert: otherCert}).ClientTLS()
	if nc, err := nats.Connect("tls://127.0.0.1:"+port, nats.UserInfo(login.Name, login.Password), nats.Secure(pinOther)); err == nil {
		nc.Close()
		t.Error("a client pinning another certificate connected")
	}

	kerfd := kerfdConn(t, b)
	seen, err := kerfd.SubscribeSync("edge.>")
	if err != nil {
		t.Fatal(err)
	}
	kerfd.Flush()
	nc, err := nats.Connect("tls://127.0.0.1:"+port, nats.UserInfo(login.Name, login.Password), nats.Secure(b.ClientTLS()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Publish("edge.v1.s.n.load.cam-07", []byte("nats"))
	dev := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://127.0.0.1:" + mport).SetClientID("cam-07").SetTLSConfig(b.ClientTLS()).
		SetUsername(login.Name).SetPassword(login.Password).SetConnectTimeout(5 * time.Second))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT over TLS: %v", tok.Error())
	}
	defer dev.Disconnect(0)
	publish(t, dev, "edge/v1/s/n/status/cam-07", 1, false, "mqtt")
	for _, want := range []string{"nats", "mqtt"} {
		m, err := seen.NextMsg(5 * time.Second)
		if err != nil || string(m.Data) != want {
			t.Fatalf("kerfd got %v, %v: want %q", m, err, want)
		}
	}
}

// kerfd's own subscription reaches a broker whose listeners are beyond
// loopback, over TLS, and a device's signal drives a decision.
// With NATS on loopback (plain) and MQTT beyond it (TLS), kerfd's own
// subscription over NATS speaks plain NATS.
func TestStartIngestWithTLS(t *testing.T) {
	for _, natsListen := range []string{"0.0.0.0:0", "127.0.0.1:0"} {
		t.Run("nats="+natsListen, func(t *testing.T) { testStartIngestWithTLS(t, natsListen) })
	}
}

func testStartIngestWithTLS(t *testing.T, natsListen string) {
	dir := t.TempDir()
	cfg, err := LoadConfig("", []string{"KERF_STATE_DIR=" + dir, "KERF_INGEST__SITE=plant-1", "KERF_INGEST__NODE=n", "KERF_INGEST__TICK=50ms",
		"KERF_INGEST__BROKER__EMBEDDED__NATS_LISTEN=" + natsListen, "KERF_INGEST__BROKER__EMBEDDED__MQTT_LISTEN=0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Ingest.Broker.Embedded.Devices = []BrokerLogin{{Name: "cam-1", Password: "pw"}}
	cfg.Ingest.Rules = []ingest.Rule{testRule()}
	rec := &recApplier{}
	in, err := StartIngest(cfg, rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := os.Stat(filepath.Join(dir, "broker-tls", "tls-cert.pem")); err != nil {
		t.Fatalf("no certificate in the state directory: %v", err)
	}
	_, mport, _ := net.SplitHostPort(in.Broker.MQTTAddr())
	dev := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://127.0.0.1:" + mport).SetClientID("cam-1").SetTLSConfig(in.Broker.ClientTLS()).
		SetUsername("cam-1").SetPassword("pw").SetConnectTimeout(5 * time.Second))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT over TLS: %v", tok.Error())
	}
	defer dev.Disconnect(0)
	waitFor(t, "a decision from a signal over TLS", func() bool {
		publish(t, dev, "edge/v1/plant-1/n/load/cam-1", 1, false, `[{"n":"queue_depth","v":50}]`)
		d, _ := rec.last()
		return d.Profile != ""
	})
}

// Device logins change on the running broker: an added device logs in at
// once; a removed one is disconnected, over NATS and MQTT, and refused
// from then on; the configured devices and kerfd's own user stay.
func TestBrokerDeviceLoginsChangeLive(t *testing.T) {
	configured := BrokerLogin{Name: "cam-01", Password: "pw1"}
	b := startDeviceBroker(t, BrokerConfig{Devices: []BrokerLogin{configured}})
	hash, err := bcrypt.GenerateFromPassword([]byte("pw2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	added := BrokerLogin{Name: "cam-02", Password: "pw2"}
	if _, err := nats.Connect(b.ClientURL(), nats.UserInfo(added.Name, added.Password)); err == nil {
		t.Fatal("a device not yet added logged in")
	}
	if err := b.SetDevices([]BrokerLogin{{Name: added.Name, Password: string(hash)}}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetDevices([]BrokerLogin{{Name: "cam-01", Password: "x"}}); err == nil {
		t.Error("a device named as a configured one was added")
	}
	if err := b.SetDevices([]BrokerLogin{{Name: added.Name, Password: string(hash)}}); err != nil {
		t.Fatal(err)
	}
	nc, _ := deviceConn(t, b, added)
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	kept, _ := deviceConn(t, b, configured)
	kerfd := kerfdConn(t, b)
	dev := mqttClientAs(t, b.MQTTAddr(), "cam-02", added, nil)
	publish(t, dev, "edge/v1/s/n/load/cam-02", 1, false, "x")

	if err := b.SetDevices(nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed device's MQTT connection to close", func() bool { return !dev.IsConnectionOpen() })
	waitFor(t, "the removed device's NATS connection to end", func() bool {
		select {
		case <-closed:
			return true
		default:
			return nc.Status() != nats.CONNECTED
		}
	})
	if _, err := nats.Connect(b.ClientURL(), nats.UserInfo(added.Name, added.Password)); err == nil {
		t.Error("a removed device logged in over NATS")
	}
	m := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + b.MQTTAddr()).SetClientID("again").
		SetUsername(added.Name).SetPassword(added.Password).SetConnectTimeout(5 * time.Second))
	if tok := m.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		m.Disconnect(0)
		t.Error("a removed device logged in over MQTT")
	}
	for name, c := range map[string]*nats.Conn{"configured device": kept, "kerfd": kerfd} {
		if err := c.Flush(); err != nil || !c.IsConnected() {
			t.Errorf("%s lost its connection: %v", name, err)
		}
	}
}

// A flood of failed logins writes a line or two to kerfd's log, not one
// per attempt, and the summary at shutdown counts them.
func TestBrokerLogIsRateLimited(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := BrokerConfig{Devices: []BrokerLogin{{Name: "cam-07", Password: "pw"}}, NATSListen: "127.0.0.1:0", MQTTListen: "127.0.0.1:0"}
	cfg.StoreDir, cfg.MaxMemory, cfg.MaxStore = t.TempDir(), 32<<20, 64<<20
	b, err := StartBroker(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	const tries = 50
	for range tries {
		if nc, err := nats.Connect(b.ClientURL(), nats.UserInfo("cam-07", "guess"), nats.NoReconnect()); err == nil {
			nc.Close()
			t.Fatal("a wrong password logged in")
		}
	}
	lines := func() int {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(logs.String(), "authentication error")
	}
	if n := lines(); n < 1 || n > 2 {
		t.Errorf("%d log lines for %d failed logins, want 1 or 2:\n%s", n, tries, logs.String())
	}
	b.Shutdown()
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "count=") {
		t.Errorf("no summary with a count at shutdown:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
