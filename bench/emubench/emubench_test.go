package emubench

import (
	"context"
	"errors"
	"testing"
)

func benchKernel(b *testing.B, kernel string, src []byte, workers int) {
	l, k, err := benchLaunch(kernel, src, workers)
	if err != nil {
		b.Fatal(err)
	}
	var total uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := k.RunStats(l)
		if err != nil {
			b.Fatal(err)
		}
		total += st.ThreadInstructions
	}
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(total)/s, "thread-instr/s")
	b.ReportMetric(float64(total)/s/float64(workers), "thread-instr/s/core")
}

func BenchmarkMatMul(b *testing.B) {
	b.Run("1worker", func(b *testing.B) { benchKernel(b, "matmul", nil, 1) })
	b.Run("2workers", func(b *testing.B) { benchKernel(b, "matmul", nil, 2) })
	srcs, err := CompileNVCC(context.Background(), b.TempDir())
	if err != nil {
		b.Skip(err)
	}
	b.Run("nvcc", func(b *testing.B) { benchKernel(b, "matmul", srcs["matmul"], 1) })
}

func BenchmarkVecAdd(b *testing.B) {
	b.Run("1worker", func(b *testing.B) { benchKernel(b, "vadd", nil, 1) })
	b.Run("2workers", func(b *testing.B) { benchKernel(b, "vadd", nil, 2) })
}

func TestRun(t *testing.T) {
	for _, k := range Kernels {
		r, err := Run(k, 1, 0)
		if err != nil || r.Launches != 1 || r.ThreadInstructions == 0 {
			t.Fatalf("Run(%s): %+v, %v", k, r, err)
		}
	}
	if _, err := Run("nope", 1, 0); err == nil {
		t.Fatal("Run(nope) succeeded")
	}
}

func TestRunNVCC(t *testing.T) {
	srcs, err := CompileNVCC(context.Background(), t.TempDir())
	if errors.Is(err, ErrNoCompiler) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range NVCCKernels {
		r, err := RunPTX(k, srcs[k], 1, 0)
		if err != nil || r.Compiler != "nvcc" || r.Launches != 1 || r.ThreadInstructions == 0 {
			t.Fatalf("RunPTX(%s): %+v, %v", k, r, err)
		}
	}
}

func TestRunNative(t *testing.T) {
	bin, err := BuildNative(context.Background(), t.TempDir())
	if errors.Is(err, ErrNoCompiler) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kernels {
		r, err := RunNative(context.Background(), bin, k, 0)
		if err != nil || r.Launches != 1 || r.LaunchTime <= 0 || r.FastestLaunch <= 0 {
			t.Fatalf("RunNative(%s): %+v, %v", k, r, err)
		}
	}
	if _, err := RunNative(context.Background(), bin, "nope", 0); err == nil {
		t.Fatal("RunNative(nope) succeeded")
	}
}

func BenchmarkReduce(b *testing.B) {
	b.Run("clang", func(b *testing.B) { benchKernel(b, "reduce", nil, 1) })
	srcs, err := CompileNVCC(context.Background(), b.TempDir())
	if err != nil {
		b.Skip(err)
	}
	b.Run("nvcc", func(b *testing.B) { benchKernel(b, "reduce", srcs["reduce"], 1) })
}

// CompareNVCC takes turns between the two builds and reports each one's
// median CPU time per launch.
func TestCompareNVCC(t *testing.T) {
	srcs, err := CompileNVCC(context.Background(), t.TempDir())
	if err != nil {
		t.Skip(err)
	}
	c, err := CompareNVCC("vadd", nil, 0)
	if err == nil {
		t.Errorf("vadd has no nvcc build, yet CompareNVCC measured it: %+v", c)
	}
	c, err = CompareNVCC("reduce", srcs["reduce"], 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Launches < 3 || c.ClangCPU <= 0 || c.NVCCCPU <= 0 || c.Speed != float64(c.ClangCPU)/float64(c.NVCCCPU) {
		t.Errorf("comparison %+v: want at least 3 launches of each, CPU times and their ratio", c)
	}
}
