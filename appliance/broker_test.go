package appliance

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/internal/testkit"
)

func startTestBroker(t *testing.T) *Broker {
	t.Helper()
	b, err := StartBroker(BrokerConfig{StoreDir: t.TempDir(), NATSListen: "127.0.0.1:0", MQTTListen: "127.0.0.1:0",
		MaxMemory: 32 << 20, MaxStore: 64 << 20, AnonymousOnLoopback: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	return b
}

// mqttClient connects without credentials: a device on a loopback listener.
func mqttClient(t *testing.T, addr, id string, will *ingest.Topic) mqtt.Client {
	t.Helper()
	return mqttClientAs(t, addr, id, BrokerLogin{}, will)
}

func mqttClientAs(t *testing.T, addr, id string, login BrokerLogin, will *ingest.Topic) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetProtocolVersion(4).SetConnectTimeout(5 * time.Second).
		SetUsername(login.Name).SetPassword(login.Password)
	if will != nil {
		o.SetWill(will.MQTT(), ingest.StatusOffline, 1, true)
	}
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c mqtt.Client, topic string, qos byte, retained bool, payload string) {
	t.Helper()
	if tok := c.Publish(topic, qos, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kerfdConn is a NATS connection as kerfd's own user.
func kerfdConn(t *testing.T, b *Broker) *nats.Conn {
	t.Helper()
	k := b.KerfdLogin()
	opts := []nats.Option{nats.UserInfo(k.Name, k.Password), nats.Timeout(testkit.WaitTimeout)} // a loaded machine: more than the 2 s default
	if tc := b.ClientTLS(); tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	nc, err := nats.Connect(b.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// The MQTT bridge maps edge/v1/... topics to edge.v1... subjects both ways.
func TestBrokerMQTTNATSMapping(t *testing.T) {
	b := startTestBroker(t)
	nc := kerfdConn(t, b)
	sub, err := nc.SubscribeSync(ingest.LoadFilterNATS)
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	c := mqttClient(t, b.MQTTAddr(), "dev-1", nil)
	got := make(chan string, 1)
	if tok := c.Subscribe("edge/v1/+/+/status/kerfd", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() + " " + string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	publish(t, c, "edge/v1/plant-1/n_1/load/cam-07", 1, false, `[{"n":"q","v":1}]`)
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || m.Subject != "edge.v1.plant-1.n_1.load.cam-07" || string(m.Data) != `[{"n":"q","v":1}]` {
		t.Fatalf("nats got %v %v", m, err)
	}
	nc.Publish("edge.v1.plant-1.n_1.status.kerfd", []byte("online"))
	select {
	case s := <-got:
		if s != "edge/v1/plant-1/n_1/status/kerfd online" {
			t.Fatalf("mqtt got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no status over mqtt")
	}
	if ents, _ := os.ReadDir(b.srvStoreDir()); len(ents) == 0 {
		t.Error("nothing in the store dir")
	}
}

func (b *Broker) srvStoreDir() string { return b.srv.StoreDir() }

type recApplier struct {
	mu    sync.Mutex
	calls []ingest.Decision
}

func (r *recApplier) ApplyProfile(_ context.Context, _ ingest.Target, _ string, d ingest.Decision) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, d)
	return nil
}

func (r *recApplier) last() (ingest.Decision, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return ingest.Decision{}, 0
	}
	return r.calls[len(r.calls)-1], len(r.calls)
}

func testRule() ingest.Rule {
	gpu := 0
	return ingest.Rule{Name: "cams",
		Trigger:  ingest.Trigger{Source: "plant-1/*/cam-*", Metric: "queue_depth", Aggregate: "max", Window: ingest.Duration(time.Minute), Threshold: 10, StaleAfter: ingest.Duration(time.Hour)},
		Target:   ingest.Target{GPU: &gpu, Profile: "7x10gb", IdleProfile: "1x80gb"},
		Fallback: ingest.Fallback{Profile: "2x40gb"}}
}

func startPipeline(t *testing.T) (*ingest.Pipeline, *ingest.Engine, *recApplier) {
	t.Helper()
	rec := &recApplier{}
	eng, err := ingest.NewEngine([]ingest.Rule{testRule()}, rec, ingest.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := ingest.NewPipeline(eng, ingest.PipelineOptions{Tick: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p, eng, rec
}

// Signal to decision through the embedded broker: devices on MQTT and on
// NATS, kerfd subscribed over MQTT and over NATS; malformed messages on the
// way are counted and do not stop the good ones.
func TestBrokerIngestEndToEnd(t *testing.T) {
	b := startTestBroker(t)
	status := &ingest.Topic{Site: "plant-1", Node: "n1", Kind: ingest.KindStatus, Source: "kerfd"}
	for _, sub := range []string{"mqtt", "nats"} {
		t.Run(sub, func(t *testing.T) {
			p, _, rec := startPipeline(t)
			switch sub {
			case "mqtt":
				s, err := ingest.SubscribeMQTT(context.Background(), ingest.MQTTOptions{Broker: "tcp://" + b.MQTTAddr(), Status: status,
					Username: b.KerfdLogin().Name, Password: b.KerfdLogin().Password}, p)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			case "nats":
				s, err := ingest.SubscribeNATS(ingest.NATSOptions{URL: b.ClientURL(), Username: b.KerfdLogin().Name, Password: b.KerfdLogin().Password}, p)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			dev := mqttClient(t, b.MQTTAddr(), "cam-07-"+sub, nil)
			nc, err := nats.Connect(b.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			// Subscriptions are live once a status round-trips.
			waitFor(t, "subscriber", func() bool {
				publish(t, dev, "edge/v1/plant-1/n1/status/cam-07", 0, false, "online")
				time.Sleep(20 * time.Millisecond)
				return p.Stats().Messages > 0
			})
			for i := 0; i < 20; i++ {
				publish(t, dev, "edge/v1/plant-1/n1/load/cam-07", 1, false, `[{"bn":"urn:dev:cam-07:","n":"queue_depth","v":`)
			}
			nc.Publish("edge.v1.plant-1.n1.load.cam-09", []byte(`not json`))
			publish(t, dev, "edge/v1/plant-1/n1/load/cam-07", 1, false, `[{"bn":"urn:dev:cam-07:","n":"queue_depth","u":"count","v":12}]`)
			waitFor(t, "scale-up from mqtt", func() bool { d, _ := rec.last(); return d.Profile == "7x10gb" })
			d, _ := rec.last()
			if d.Inputs[0].Source != "plant-1/n1/cam-07" || d.Value != 12 {
				t.Errorf("decision %+v", d)
			}
			nc.Publish("edge.v1.plant-1.n1.load.cam-08", []byte(`[{"n":"queue_depth","v":30}]`))
			waitFor(t, "signal from nats", func() bool { return p.Stats().Signals >= 2 })
			waitFor(t, "malformed counted", func() bool { return p.Stats().Malformed >= 21 })
		})
	}
	// kerfd's retained status: online while subscribed, offline after Close.
	c := mqttClient(t, b.MQTTAddr(), "watcher", nil)
	got := make(chan string, 4)
	c.Subscribe(status.MQTT(), 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }).WaitTimeout(5 * time.Second)
	select {
	case s := <-got:
		if s != ingest.StatusOffline {
			t.Errorf("kerfd status after close %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("no retained kerfd status")
	}
}

// A device that vanishes fires its Will; the retained offline status makes
// its series stale at once and the rule falls back.
func TestBrokerDeviceWillFallback(t *testing.T) {
	b := startTestBroker(t)
	p, _, rec := startPipeline(t)
	s, err := ingest.SubscribeMQTT(context.Background(), ingest.MQTTOptions{Broker: "tcp://" + b.MQTTAddr(), Username: b.KerfdLogin().Name, Password: b.KerfdLogin().Password}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	will := ingest.Topic{Site: "plant-1", Node: "n1", Kind: ingest.KindStatus, Source: "cam-07"}
	conn := rawMQTTConnect(t, b.MQTTAddr(), "cam-07", will.MQTT(), ingest.StatusOffline)
	dev := mqttClient(t, b.MQTTAddr(), "cam-07-pub", nil)
	waitFor(t, "scale-up", func() bool {
		publish(t, dev, "edge/v1/plant-1/n1/load/cam-07", 1, false, `[{"n":"queue_depth","v":50}]`)
		d, _ := rec.last()
		return d.Profile == "7x10gb"
	})
	conn.Close() // no DISCONNECT: the broker publishes the Will
	waitFor(t, "fallback", func() bool { d, _ := rec.last(); return d.Reason == ingest.ReasonFallbackStale })
	if st := p.Liveness()["plant-1/n1/cam-07"]; st != ingest.StatusOffline {
		t.Errorf("liveness %q", st)
	}
}

// rawMQTTConnect opens an MQTT 3.1.1 session with a retained QoS 1 Will and
// returns the connection, so the test can drop it without a DISCONNECT.
func rawMQTTConnect(t *testing.T, addr, id, willTopic, willMsg string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...) }
	var body []byte
	body = append(body, str("MQTT")...)
	body = append(body, 4, 0x02|0x04|0x08|0x20, 0, 30) // clean, will, QoS 1, retain; keepalive 30s
	body = append(body, str(id)...)
	body = append(body, str(willTopic)...)
	body = append(body, str(willMsg)...)
	pkt := append([]byte{0x10, byte(len(body))}, body...)
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	ack := make([]byte, 4)
	if _, err := bufio.NewReader(conn).Read(ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("connack %x %v", ack, err)
	}
	return conn
}

func TestIngestConfig(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/kerf.yaml"
	os.WriteFile(path, []byte(`
ingest:
  enabled: true
  node: edge_1
  rules:
    - name: cams
      trigger: {source: "default/*/cam-*", metric: queue_depth, aggregate: max, window: 30s, threshold: 10, activationThreshold: 4, staleAfter: 20s}
      target: {gpu: 0, profile: 7x10gb, idleProfile: 1x80gb}
      behavior: {scaleDown: {stabilizationWindow: 1m}, minDwell: 2m, cooldown: 30s, tolerance: 0.1}
      fallback: {profile: 2x40gb, failureThreshold: 2}
`), 0o600)
	c, err := LoadConfig(path, []string{"KERF_STATE_DIR=" + dir})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Ingest.Rules[0]
	if r.Trigger.Window.D() != 30*time.Second || *r.Trigger.ActivationThreshold != 4 || *r.Target.GPU != 0 ||
		r.Behavior.ScaleDown.StabilizationWindow.D() != time.Minute || r.Fallback.FailureThreshold != 2 || r.Behavior.Tolerance != 0.1 {
		t.Errorf("rule %+v", r)
	}
	if in := c.Ingest; in.MaxSeries != 65536 || in.MaxSeriesPerPublisher != 1024 || in.MaxUnreadSeries != 4096 || in.UnreadTTL != time.Minute {
		t.Errorf("series bounds: %d, %d per publisher, %d unread, unread_ttl %v", in.MaxSeries, in.MaxSeriesPerPublisher, in.MaxUnreadSeries, in.UnreadTTL)
	}
	bc := c.BrokerConfig()
	if bc.ServerName != "kerfd-edge_1" || bc.StoreDir != dir+"/broker" || bc.MaxMemory != 64<<20 || bc.MQTTListen != "127.0.0.1:1883" ||
		bc.MQTTMessages != "memory" || bc.SublistCache {
		t.Errorf("broker config %+v", bc)
	}
	os.WriteFile(path, []byte(`
ingest:
  rules:
    - name: x
      trigger: {source: "*", metric: m, window: soon}
`), 0o600)
	_, err = LoadConfig(path, nil)
	if err == nil || !strings.Contains(err.Error(), `"soon": want a duration`) {
		t.Errorf("error %v", err)
	}
	_, err = LoadConfig("", []string{"KERF_INGEST__MAX_SERIES=100", "KERF_INGEST__MAX_SERIES_PER_PUBLISHER=200",
		"KERF_INGEST__MAX_UNREAD_SERIES=0", "KERF_INGEST__UNREAD_TTL=10ms"})
	for _, want := range []string{"ingest.max_series_per_publisher 200: more than max_series 100",
		"ingest.max_unread_series 0: want at least 1", "ingest.unread_ttl 10ms: want at least 1s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	_, err = LoadConfig("", []string{"KERF_INGEST__BROKER__EMBEDDED__MQTT_MESSAGES=disk"})
	if err == nil || !strings.Contains(err.Error(), `mqtt_messages "disk": want memory or file`) {
		t.Errorf("error %v", err)
	}
	if !bc.AnonymousOnLoopback || len(bc.Devices) != 0 || bc.MaxStore != 64<<20 {
		t.Errorf("broker defaults: anonymous on loopback %v, devices %v, max_store %d", bc.AnonymousOnLoopback, bc.Devices, bc.MaxStore)
	}
	os.WriteFile(path, []byte(`
ingest:
  broker:
    embedded:
      max_store: "0"
      anonymous_devices: always
      devices: [{name: cam-1, password: a}, {name: cam-1, password: b}, {name: kerfd, password: c}, {name: cam-2}]
`), 0o600)
	_, err = LoadConfig(path, nil)
	for _, want := range []string{"max_store: want more than 0", `anonymous_devices "always": want loopback or off`,
		`devices[1]: "cam-1" listed twice`, `devices[2]: device name "kerfd" is the broker's own`, "devices[3]: empty password"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	os.WriteFile(path, []byte(`
ingest:
  broker: {mode: cloud}
  rules:
    - name: x
      trigger: {source: "*", metric: m, aggregate: median}
`), 0o600)
	_, err = LoadConfig(path, nil)
	for _, want := range []string{`ingest.broker.mode "cloud"`, `ingest.rules[0].trigger.aggregate: "median"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// StartIngest from configuration: embedded mode with credentials required
// of every client, then external NATS mode pointed at that same broker.
func TestStartIngest(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/kerf.yaml"
	os.WriteFile(path, []byte(`
ingest:
  enabled: true
  site: plant-1
  node: n1
  tick: 50ms
  broker:
    embedded:
      nats_listen: "127.0.0.1:0"
      mqtt_listen: "127.0.0.1:0"
      max_memory: 32MiB
      max_store: 64MiB
      anonymous_devices: "off"
      devices: [{name: cam-1, password: pw}]
  rules:
    - name: cams
      trigger: {source: "plant-1/*/cam-*", metric: queue_depth, aggregate: max, window: 1m, threshold: 10}
      target: {profile: 7x10gb, idleProfile: 1x80gb}
`), 0o600)
	cfg, err := LoadConfig(path, []string{"KERF_STATE_DIR=" + dir})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recApplier{}
	in, err := StartIngest(cfg, rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := os.Stat(dir + "/broker"); err != nil {
		t.Errorf("store dir: %v", err)
	}
	// No credentials, no connection, on either listener.
	if nc, err := nats.Connect(in.Broker.ClientURL()); err == nil {
		nc.Close()
		t.Error("nats without credentials accepted")
	}
	anon := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + in.Broker.MQTTAddr()).SetClientID("anon").SetConnectTimeout(5 * time.Second))
	if tok := anon.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		anon.Disconnect(0)
		t.Error("mqtt without credentials accepted")
	}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + in.Broker.MQTTAddr()).SetClientID("cam-1").SetUsername("cam-1").SetPassword("pw")
	dev := mqtt.NewClient(o)
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer dev.Disconnect(100)
	publish(t, dev, "edge/v1/plant-1/n1/load/cam-1", 1, false, `[{"n":"queue_depth","v":11}]`)
	waitFor(t, "decision via StartIngest", func() bool { d, _ := rec.last(); return d.Profile == "7x10gb" })

	// External NATS mode against the same broker.
	cfg.Ingest.Broker.Mode = "external"
	cfg.Ingest.Broker.External.Protocol = "nats"
	cfg.Ingest.Broker.External.URL = in.Broker.ClientURL()
	k := in.Broker.KerfdLogin()
	cfg.Ingest.Broker.External.Username, cfg.Ingest.Broker.External.Password = k.Name, k.Password
	rec2 := &recApplier{}
	in2, err := StartIngest(cfg, rec2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in2.Close()
	if in2.Broker != nil {
		t.Error("external mode started a broker")
	}
	waitFor(t, "decision via external nats", func() bool {
		publish(t, dev, "edge/v1/plant-1/n1/load/cam-1", 1, false, `[{"n":"queue_depth","v":12}]`)
		d, _ := rec2.last()
		return d.Profile == "7x10gb"
	})
}

// mqttMessagesStorage reports how the broker keeps MQTT QoS 1 messages.
func mqttMessagesStorage(t *testing.T, b *Broker) jetstream.StorageType {
	t.Helper()
	js, err := jetstream.New(kerfdConn(t, b))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), "$MQTT_msgs")
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().Config.Storage
}

// MQTT QoS 1 messages wait in memory by default, and MQTT subscribers at
// QoS 1 still get every one.
func TestBrokerKeepsMQTTMessagesInMemory(t *testing.T) {
	b := startTestBroker(t)
	if got := mqttMessagesStorage(t, b); got != jetstream.MemoryStorage {
		t.Fatalf("$MQTT_msgs on %v, want memory", got)
	}
	sub := mqttClientAs(t, b.MQTTAddr(), "sub", b.KerfdLogin(), nil)
	var got atomic.Int64
	if tok := sub.Subscribe("edge/v1/s/n/load/#", 1, func(mqtt.Client, mqtt.Message) { got.Add(1) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	dev := mqttClient(t, b.MQTTAddr(), "dev", nil)
	const n = 200
	for i := range n {
		publish(t, dev, fmt.Sprintf("edge/v1/s/n/load/d%d", i%10), 1, false, `[{"n":"load","v":1}]`)
	}
	waitFor(t, "every QoS 1 message at the subscriber", func() bool { return got.Load() >= n })
}

// A file-backed message stream from an earlier run (mqtt_messages: file)
// is kept when the broker restarts wanting memory: its consumers are MQTT
// sessions' subscriptions.
func TestBrokerKeepsEarlierFileMessageStream(t *testing.T) {
	dir := t.TempDir()
	cfg := BrokerConfig{StoreDir: dir, NATSListen: "127.0.0.1:0", MQTTListen: "127.0.0.1:0", MaxMemory: 32 << 20,
		MaxStore: 64 << 20, MQTTMessages: "file", AnonymousOnLoopback: true}
	b, err := StartBroker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := mqttClient(t, b.MQTTAddr(), "early", nil) // the MQTT layer creates its streams
	c.Disconnect(100)
	if got := mqttMessagesStorage(t, b); got != jetstream.FileStorage {
		t.Fatalf("mqtt_messages: file gave %v", got)
	}
	b.Shutdown()
	cfg.MQTTMessages = ""
	var logs strings.Builder
	b, err = StartBroker(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	if got := mqttMessagesStorage(t, b); got != jetstream.FileStorage {
		t.Fatalf("restart changed the stream to %v", got)
	}
	if !strings.Contains(logs.String(), "stay in the existing stream's storage") {
		t.Fatalf("no warning logged: %s", logs.String())
	}
}
