package ingestbench

import (
	"context"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/appliance"
)

func startTestBroker(t *testing.T) *appliance.Broker {
	t.Helper()
	b, err := appliance.StartBroker(appliance.BrokerConfig{StoreDir: t.TempDir(), NATSListen: "127.0.0.1:0", MQTTListen: "127.0.0.1:0",
		MaxMemory: 32 << 20, MaxStore: 64 << 20, AnonymousOnLoopback: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	warmUp(t, b)
	return b
}

// warmUp connects one gateway and lets it go, so that the broker has set
// up its MQTT layer before a short run's clock starts.
func warmUp(t *testing.T, b *appliance.Broker) {
	t.Helper()
	g, err := dialBenchGateway(b.MQTTAddr(), "kerf-bench-warm-up", 1, func() {})
	if err != nil {
		t.Fatal(err)
	}
	g.close()
}

// kerf bench ingest's path, small: devices over MQTT QoS 1, no loss, paced
// and as fast as a small window of unacknowledged publishes allows; then a
// load oscillating across a threshold re-slices, but no more often than
// dwell and cooldown allow.
func TestRunSmall(t *testing.T) {
	b := startTestBroker(t)
	for _, o := range []Options{{Rate: 1000, Oscillate: -1}, {InFlight: 4, Oscillate: 2500 * time.Millisecond}} {
		o.Subscriber = b.KerfdLogin()
		o.MQTTAddr, o.NATSURL, o.Topics, o.Publishers, o.Duration = b.MQTTAddr(), b.ClientURL(), 200, 2, 300*time.Millisecond
		r, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Published == 0 || r.Lost != 0 || r.Delivered != r.Published || r.P99 <= 0 {
			t.Fatalf("rate %d, in flight %d: %+v", o.Rate, o.InFlight, r)
		}
		if osc := r.Oscillation; o.Oscillate > 0 && (osc == nil || osc.Reslices < 2 || int(osc.Reslices) > osc.Allowed ||
			osc.Crossings <= osc.Allowed) {
			t.Fatalf("oscillation %+v: want 2..allowed re-slices from more crossings than allowed", osc)
		}
	}
}

// Over MQTT alone (no NATS URL), kerfd's subscriber reads at QoS 1 and
// gets every signal.
func TestRunOverMQTT(t *testing.T) {
	b := startTestBroker(t)
	r, err := Run(context.Background(), Options{MQTTAddr: b.MQTTAddr(), Subscriber: b.KerfdLogin(), Topics: 100, Publishers: 2,
		Duration: 300 * time.Millisecond, Rate: 1000, Oscillate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Via != "mqtt" || r.Published == 0 || r.Lost != 0 {
		t.Fatalf("%+v", r)
	}
}

// The broker as kerfd's defaults have it takes the benchmark's devices.
func TestStartBroker(t *testing.T) {
	b, stop, err := StartBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	warmUp(t, b)
	r, err := Run(context.Background(), Options{MQTTAddr: b.MQTTAddr(), NATSURL: b.ClientURL(), Subscriber: b.KerfdLogin(), Topics: 10, Publishers: 1,
		Duration: 100 * time.Millisecond, Rate: 200, Oscillate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Via != "nats" || r.Published == 0 || r.Lost != 0 {
		t.Fatalf("%+v", r)
	}
}
