//go:build unix

package emubench

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

// cpuTime is the process's user and system CPU time so far: unlike wall
// time it leaves out the time other processes hold the CPU, so it is the
// steadier measure on a shared machine.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

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
				t0 := cpuTime(b)
				if _, err := k.RunStats(l); err != nil {
					b.Fatal(err)
				}
				return cpuTime(b) - t0
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
