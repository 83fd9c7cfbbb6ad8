package profiles

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerf-edge/kerf/auth"
)

// A pool member labels every series on /metrics with its name; a node
// outside a pool adds no label.
func TestMetricsLabelledByNode(t *testing.T) {
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "kerf_test_extra_total", Help: "A collector from Deps."})
	for _, node := range []string{"rack1-a", ""} {
		t.Run("node="+node, func(t *testing.T) {
			dir := t.TempDir()
			toks, err := auth.OpenTokenStore(filepath.Join(dir, "tokens.json"))
			if err != nil {
				t.Fatal(err)
			}
			srv, err := New(Config{StateDir: dir, MetricsNode: node}, Deps{Node: newFakeNode(), Tokens: toks,
				Collectors: []prometheus.Collector{extra}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			mfs, err := srv.Registry().Gather()
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					got := ""
					for _, l := range m.GetLabel() {
						if l.GetName() == "node" {
							got = l.GetValue()
						}
					}
					if got != node {
						t.Fatalf("%s has node=%q, want %q", mf.GetName(), got, node)
					}
				}
				seen[mf.GetName()] = true
			}
			for _, name := range []string{"kerf_reslices_total", "go_goroutines", "kerf_test_extra_total"} {
				if !seen[name] {
					t.Errorf("%s not gathered", name)
				}
			}
		})
	}
}
