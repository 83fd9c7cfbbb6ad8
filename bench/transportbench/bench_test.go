package transportbench

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{4, 1}, 2.5},
		{[]float64{5, 1, 3}, 3},
		{[]float64{9, 1, 2, 4}, 3},
	} {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// A small run goes through every measurement on both paths and fills in
// every figure; it asserts no speed.
func TestRunSmall(t *testing.T) {
	var progress bytes.Buffer
	res, err := Run(context.Background(), Options{Bulk: 4 << 20, SyncCalls: 200, AsyncCalls: 2000, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Path != "unix" || res[1].Path != "quic" {
		t.Fatalf("results for %+v", res)
	}
	for _, r := range res {
		for name, v := range map[string]float64{"sync p50": r.SyncP50us, "raw sync p50": r.RawSyncP50us,
			"async": r.AsyncPerSec, "raw async": r.RawAsyncPerSec, "bulk": r.BulkGBps, "raw bulk": r.RawBulkGBps} {
			if !(v > 0) {
				t.Errorf("%s %s = %v", r.Path, name, v)
			}
		}
		if len(r.Targets) == 0 {
			t.Errorf("%s: no targets judged", r.Path)
		}
	}
	if !strings.Contains(progress.String(), "quic bulk: kerf") || !strings.Contains(progress.String(), "medians of 2 rounds") {
		t.Errorf("progress lacks the QUIC bulk rounds:\n%s", progress.String())
	}
}
