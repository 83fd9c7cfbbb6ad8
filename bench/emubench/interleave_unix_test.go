//go:build unix

package emubench

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

// BenchmarkNVCCOverClang runs clang's and nvcc's build of each kernel on
// one worker, one launch of each in turn, and reports nvcc's speed
// relative to clang's: clang's median CPU time per launch over nvcc's
// (above 1, nvcc's PTX runs faster).
func BenchmarkNVCCOverClang(b *testing.B) {
	srcs, err := CompileNVCC(context.Background(), b.TempDir())
	if err != nil {
		b.Skip(err)
	}
	for _, kernel := range NVCCKernels {
		b.Run(kernel, func(b *testing.B) {
			lc, kc, err := benchLaunch(kernel, nil, 1)
			if err != nil {
				b.Fatal(err)
			}
			ln, kn, err := benchLaunch(kernel, srcs[kernel], 1)
			if err != nil {
				b.Fatal(err)
			}
			once := func(k *ptx.Kernel, l *ptx.Launch) time.Duration {
				t0 := cpuTime()
				if _, err := k.RunStats(l); err != nil {
					b.Fatal(err)
				}
				return cpuTime() - t0
			}
			var tc, tn []time.Duration
			for b.Loop() {
				tc = append(tc, once(kc, lc))
				tn = append(tn, once(kn, ln))
			}
			slices.Sort(tc)
			slices.Sort(tn)
			mc, mn := tc[len(tc)/2], tn[len(tn)/2]
			b.ReportMetric(float64(mc.Microseconds()), "clang-cpu-µs/launch")
			b.ReportMetric(float64(mn.Microseconds()), "nvcc-cpu-µs/launch")
			b.ReportMetric(float64(mc)/float64(mn), "nvcc/clang-speed")
		})
	}
}
