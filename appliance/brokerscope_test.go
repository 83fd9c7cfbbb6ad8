package appliance

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
