package appliance

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/kerf-edge/kerf/ingest"
)

// The broker holds no password in plain text, so nats-server has nothing
// to warn of; kerfd, devices configured with a password or a hash, devices
// added later and anonymous devices (an nkey user: a no-auth user with a
// hashed password would be refused) all still get in.
func TestBrokerHoldsNoPlaintextPasswords(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hash, err := bcrypt.GenerateFromPassword([]byte("pw8"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := BrokerConfig{AnonymousOnLoopback: true, NATSListen: "127.0.0.1:0", MQTTListen: "127.0.0.1:0",
		Devices: []BrokerLogin{{Name: "cam-07", Password: "pw7"}, {Name: "cam-08", Password: string(hash)}}}
	cfg.StoreDir, cfg.MaxMemory, cfg.MaxStore = t.TempDir(), 32<<20, 64<<20
	b, err := StartBroker(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	if err := b.SetDevices([]BrokerLogin{{Name: "cam-09", Password: "pw9"}}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	for _, u := range b.opts.Users {
		if !isBcryptHash(u.Password) {
			t.Errorf("user %s: password not hashed", u.Username)
		}
	}
	b.mu.Unlock()

	kerfd := kerfdConn(t, b)
	sub, err := kerfd.SubscribeSync(ingest.LoadFilterNATS)
	if err != nil {
		t.Fatal(err)
	}
	kerfd.Flush() // the server has the subscription before anything is published
	expect := func(subject string) {
		t.Helper()
		if m, err := sub.NextMsg(5 * time.Second); err != nil || m.Subject != subject {
			t.Fatalf("kerfd got %v, %v; want %s", m, err, subject)
		}
	}
	for _, login := range []BrokerLogin{{}, {Name: "cam-07", Password: "pw7"}, {Name: "cam-08", Password: "pw8"}, {Name: "cam-09", Password: "pw9"}} {
		nc, _ := deviceConn(t, b, login)
		source := login.Name
		if source == "" {
			source = "anon"
		}
		if err := nc.Publish("edge.v1.s.n.load."+source, []byte(`[{"n":"q","v":1}]`)); err != nil {
			t.Fatal(err)
		}
		expect("edge.v1.s.n.load." + source)
	}
	publish(t, mqttClient(t, b.MQTTAddr(), "anon-mqtt", nil), "edge/v1/s/n/load/anon-mqtt", 1, false, `[{"n":"q","v":1}]`)
	expect("edge.v1.s.n.load.anon-mqtt")
	if nc, err := nats.Connect(b.ClientURL(), nats.UserInfo("cam-08", string(hash)), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("the hash itself logged in")
	}

	b.Shutdown()
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "Plaintext passwords") {
		t.Fatalf("nats-server warned of plaintext passwords:\n%s", logs.String())
	}
}
