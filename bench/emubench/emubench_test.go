package emubench

import (
	"testing"
)

func benchKernel(b *testing.B, kernel string, workers int) {
	l, k, err := benchLaunch(kernel, workers)
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
	b.Run("1worker", func(b *testing.B) { benchKernel(b, "matmul", 1) })
	b.Run("2workers", func(b *testing.B) { benchKernel(b, "matmul", 2) })
}

func BenchmarkVecAdd(b *testing.B) {
	b.Run("1worker", func(b *testing.B) { benchKernel(b, "vadd", 1) })
	b.Run("2workers", func(b *testing.B) { benchKernel(b, "vadd", 2) })
}

func TestRun(t *testing.T) {
	for _, k := range []string{"matmul", "vadd"} {
		r, err := Run(k, 1, 0)
		if err != nil || r.Launches != 1 || r.ThreadInstructions == 0 {
			t.Fatalf("Run(%s): %+v, %v", k, r, err)
		}
	}
	if _, err := Run("nope", 1, 0); err == nil {
		t.Fatal("Run(nope) succeeded")
	}
}
