package appliance

import (
	"net/http"
	"testing"

	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles/api"
)

// counter reads a counter of the operator API's registry; -1 when absent.
func counter(t *testing.T, a *Appliance, name, label, value string) float64 {
	t.Helper()
	mfs, err := a.api.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// Load signals published over MQTT count their bytes, and one profile
// applied through the REST API is one re-slice in the metrics and the
// event log.
func TestMetricsCountIngestBytesAndReslices(t *testing.T) {
	dir := t.TempDir()
	cfg, err := LoadConfig("", []string{
		"KERF_STATE_DIR=" + dir, "KERF_LISTEN__QUIC=127.0.0.1:0", "KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__BACKEND=emulated", "KERF_GPU__EMULATED__MEMORY=1GiB",
		"KERF_INGEST__SITE=s", "KERF_INGEST__NODE=n",
		"KERF_INGEST__BROKER__EMBEDDED__NATS_LISTEN=127.0.0.1:0", "KERF_INGEST__BROKER__EMBEDDED__MQTT_LISTEN=127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, cfg)
	testkit.WaitFor(t, "the embedded broker", func() bool { return a.ingest.Load() != nil })
	c := mqttClient(t, a.ingest.Load().Broker.MQTTAddr(), "cam-1", nil)
	payloads := []string{`[{"n":"queue_depth","v":1}]`, `[{"n":"queue_depth","v":22},{"n":"fps","v":30}]`, `{not senml`}
	published := 0.0
	for _, p := range payloads {
		publish(t, c, "edge/v1/s/n/load/cam-1", 1, false, p)
		published += float64(len(p))
	}
	testkit.WaitFor(t, "kerf_ingest_bytes_total to count the signals", func() bool {
		return counter(t, a, "kerf_ingest_bytes_total", "source", "all") >= published
	})

	tok, err := a.api.RotateAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	before := counter(t, a, "kerf_reslices_total", "result", "ok")
	req, _ := http.NewRequest("POST", "http://"+a.HTTPAddr()+"/v1/profiles/uniform-20/apply", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("apply: %d", resp.StatusCode)
	}
	if got := counter(t, a, "kerf_reslices_total", "result", "ok") - before; got != 1 {
		t.Fatalf("one apply counted as %g re-slices", got)
	}
	testkit.WaitFor(t, "the re-slice in the event log", func() bool {
		evs, err := a.api.Store().Events(100, 0, api.EventKindReslice)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 1 {
			t.Fatalf("one apply logged %d re-slice events: %+v", len(evs), evs)
		}
		return len(evs) == 1
	})
}
