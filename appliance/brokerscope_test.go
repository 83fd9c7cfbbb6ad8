package appliance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
