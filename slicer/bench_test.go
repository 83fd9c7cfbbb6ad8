package slicer

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// busyNode is 8 GPUs on uniform-10 with half the slices held and in use.
func busyNode(b testing.TB, store Store) (*Slicer, *fakeControl) {
	ctl := newControl()
	s := newSlicer(b, Config{GPUs: gpus(8, "A100", 80*GiB), Reserve: DefaultReserve, Control: ctl, Store: store, Profile: "uniform-10"})
	for i := range 40 {
		l := must[Lease](b)(s.TryAllocate(Request{Tenant: fmt.Sprint("t", i), N: 1, Fraction: 0.1}))
		u := uint64(i%4) * GiB
		ctl.real[l.Slices[0]] = u
		must[struct{}](b)(struct{}{}, s.Report(l.ID, l.Slices[0], Usage{MemUsed: u, Calls: 1}))
	}
	return s, ctl
}

// BenchmarkPlanApply plans and applies alternating profiles on a busy
// node (8 GPUs, 40 live slices, pending shrinks), reporting p50 and p99.
func BenchmarkPlanApply(b *testing.B) {
	for _, tc := range []struct {
		name  string
		store func(b *testing.B) Store
	}{
		{"memory", func(*testing.B) Store { return nil }},
		{"filestore", func(b *testing.B) Store { return FileStore{Path: filepath.Join(b.TempDir(), "s.json")} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, _ := busyNode(b, tc.store(b))
			profiles := []string{"mixed-2x25-5x10", "uniform-20", "uniform-10"}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				p, err := s.Plan(profiles[i%3], ApplyOptions{})
				if err == nil {
					_, err = s.Apply(p, ApplyOptions{})
				}
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
