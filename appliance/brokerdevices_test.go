package appliance

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles/client"
)

// kerf devices add issues a device login that works at once on the
// running broker, stored only as a bcrypt hash; kerf devices remove
// disconnects the device and refuses it from then on.
func TestDeviceLoginsThroughTheCLI(t *testing.T) {
	dir := t.TempDir()
	cfg, err := LoadConfig("", []string{
		"KERF_STATE_DIR=" + dir, "KERF_LISTEN__QUIC=127.0.0.1:0", "KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__BACKEND=emulated", "KERF_GPU__EMULATED__MEMORY=1GiB",
		"KERF_INGEST__BROKER__EMBEDDED__NATS_LISTEN=127.0.0.1:0", "KERF_INGEST__BROKER__EMBEDDED__MQTT_LISTEN=127.0.0.1:0",
		"KERF_INGEST__BROKER__EMBEDDED__ANONYMOUS_DEVICES=off",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, cfg)
	testkit.WaitFor(t, "the embedded broker", func() bool { return a.ingest.Load() != nil })
	tok, err := a.api.RotateAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	c := client.New("http://"+a.HTTPAddr(), tok)
	kerf := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := client.RunCLI(context.Background(), c, args, &out)
		return out.String(), err
	}

	out, err := kerf("devices", "add", "cam-9")
	if err != nil {
		t.Fatal(err)
	}
	var password string
	for line := range strings.Lines(out) {
		if p, ok := strings.CutPrefix(line, "password "); ok {
			password = strings.TrimSpace(p)
		}
	}
	if password == "" {
		t.Fatalf("no password in %q", out)
	}
	if stored, _ := os.ReadFile(cfg.DevicesPath()); !strings.Contains(string(stored), `"$2a$`) || strings.Contains(string(stored), password) {
		t.Errorf("devices.json holds %s: want the bcrypt hash alone", stored)
	}
	if _, err := kerf("devices", "add", "cam-9"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("adding cam-9 twice: %v", err)
	}
	if _, err := kerf("devices", "add", "kerfd"); err == nil || !strings.Contains(err.Error(), "422") {
		t.Errorf("adding kerfd: %v", err)
	}
	if out, err := kerf("devices", "list"); err != nil || !strings.Contains(out, "cam-9") {
		t.Errorf("list: %q, %v", out, err)
	}

	broker := a.ingest.Load().Broker
	dev := mqttClientAs(t, broker.MQTTAddr(), "cam-9", BrokerLogin{Name: "cam-9", Password: password}, nil)
	publish(t, dev, "edge/v1/default/n/load/cam-9", 1, false, `[{"n":"queue_depth","v":1}]`)

	if _, err := kerf("devices", "remove", "cam-9"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed device's connection to close", func() bool { return !dev.IsConnectionOpen() })
	m := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + broker.MQTTAddr()).SetClientID("again").
		SetUsername("cam-9").SetPassword(password).SetConnectTimeout(5 * time.Second))
	if tok := m.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		m.Disconnect(0)
		t.Error("a removed device logged in")
	}
	if _, err := kerf("devices", "remove", "cam-9"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("removing cam-9 twice: %v", err)
	}
}
