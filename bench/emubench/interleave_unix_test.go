//go:build unix

package emubench

import (
	"context"
	"testing"
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
			c, err := compareNVCC(kernel, srcs[kernel], func(int) bool { return b.Loop() })
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(c.ClangCPU.Microseconds()), "clang-cpu-µs/launch")
			b.ReportMetric(float64(c.NVCCCPU.Microseconds()), "nvcc-cpu-µs/launch")
			b.ReportMetric(c.Speed, "nvcc/clang-speed")
		})
	}
}
