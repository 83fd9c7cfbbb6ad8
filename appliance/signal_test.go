package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/profiles/api"
)

// A load signal published over MQTT to kerfd's embedded broker crosses a
// policy threshold, and kerfd re-slices its GPUs.
func TestLoadSignalReslicesTheNode(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "kerfd.yaml")
	err := os.WriteFile(conf, []byte(`
slicer:
  profile: uniform-10
ingest:
  enabled: true
  site: plant-1
  node: line-2
  broker:
    embedded:
      nats_listen: "127.0.0.1:0"
      mqtt_listen: "127.0.0.1:0"
  rules:
    - name: camera-queue
      trigger:
        source: "plant-1/line-2/cam-*"
        metric: queue_depth
        aggregate: max
        window: 10s
        threshold: 100
        activationThreshold: 20
      target:
        profile: mixed-2x25-5x10
        idleProfile: uniform-10
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(conf, []string{
		"KERF_STATE_DIR=" + dir, "KERF_LISTEN__QUIC=127.0.0.1:0", "KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__BACKEND=emulated", "KERF_GPU__EMULATED__MEMORY=1GiB",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, cfg)
	testkit.WaitFor(t, "the embedded broker", func() bool { return a.ingest.Load() != nil })
	if p := a.node.sl.Status().Profile; p != "uniform-10" {
		t.Fatalf("starting profile %q", p)
	}
	c := mqttClient(t, a.ingest.Load().Broker.MQTTAddr(), "cam-07", nil)
	publish(t, c, "edge/v1/plant-1/line-2/load/cam-07", 1, false,
		`[{"bn":"urn:dev:cam-07:","n":"queue_depth","u":"count","v":120}]`)
	testkit.WaitFor(t, "the policy to re-slice the node", func() bool { return a.node.sl.Status().Profile == "mixed-2x25-5x10" })
	// The decision and its re-slice are one event in the operator's log,
	// naming the rule and its metric.
	testkit.WaitFor(t, "the re-slice in the event log", func() bool {
		events, err := a.api.Store().Events(50, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range events {
			if strings.Contains(e.Subject+e.Action+e.Detail+e.Summary, "camera-queue") {
				if e.Kind != api.EventKindReslice || e.Rule != "camera-queue" || e.Metric != "queue_depth" {
					t.Fatalf("event %+v", e)
				}
				n++
			}
		}
		return n == 1
	})
}

// A rule written through the REST API is validated on write and takes
// effect in the running policy engine.
func TestRuleFromTheAPIDrivesReslicing(t *testing.T) {
	a, c := startWithAPI(t, "", "KERF_SLICER__PROFILE=uniform-10", "KERF_INGEST__SITE=s", "KERF_INGEST__NODE=n")
	post := func(body string) int {
		var p *api.Problem
		if err := c.Do(context.Background(), "POST", "/v1/rules", json.RawMessage(body), nil); errors.As(err, &p) {
			return p.Status
		} else if err != nil {
			t.Fatal(err)
		}
		return http.StatusCreated
	}
	if code := post(`{"name":"bad","rule":{"name":"bad","trigger":{"source":"*","metric":"m","aggregate":"median","threshold":1},"target":{"profile":"whole"}}}`); code != http.StatusUnprocessableEntity {
		t.Fatalf("an invalid rule got %d, want 422", code)
	}
	if code := post(`{"name":"hot","rule":{"name":"hot","trigger":{"source":"s/n/*","metric":"temp","aggregate":"max","window":"10s","threshold":80},"target":{"profile":"whole","idleProfile":"uniform-10"}}}`); code != http.StatusCreated {
		t.Fatalf("a valid rule got %d, want 201", code)
	}
	probe := mqttClient(t, a.ingest.Load().Broker.MQTTAddr(), "probe-1", nil)
	// The rule reaches the engine within a poll; publish until it acts.
	testkit.WaitFor(t, "the API's rule to re-slice the node", func() bool {
		publish(t, probe, "edge/v1/s/n/load/probe-1", 1, false, `[{"n":"temp","u":"Cel","v":91}]`)
		return a.node.sl.Status().Profile == "whole"
	})
}
