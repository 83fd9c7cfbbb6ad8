//go:build unix

package ptx

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// accessKernel is a kernel in which every thread repeats one memory
// access n times in a loop: %rd1 is the thread's own word of global
// memory, %rd0 a word all threads share, %r6 the thread's word of shared
// memory. An empty access measures the loop alone.
const accessKernel = `
.version 7.0
.target sm_70
.address_size 64
.visible .entry access(.param .u64 p, .param .u32 n)
{
	.reg .pred %%p<2>;
	.reg .b32 %%r<8>;
	.reg .f32 %%f<2>;
	.reg .b64 %%rd<3>;
	.shared .align 4 .b8 sh[1024];
	ld.param.u64 %%rd0, [p];
	ld.param.u32 %%r1, [n];
	cvta.to.global.u64 %%rd0, %%rd0;
	mov.u32 %%r2, %%tid.x;
	mul.wide.u32 %%rd2, %%r2, 4;
	add.s64 %%rd1, %%rd0, %%rd2;
	mov.u32 %%r6, sh;
	shl.b32 %%r7, %%r2, 2;
	add.s32 %%r6, %%r6, %%r7;
	mov.u32 %%r3, 0;
	mov.u32 %%r4, 0;
	mov.f32 %%f1, 0f3F800000;
L:
	%s
	add.s32 %%r3, %%r3, 1;
	setp.lt.u32 %%p1, %%r3, %%r1;
	@%%p1 bra L;
	st.global.u32 [%%rd1], %%r4;
	ret;
}
`

// accessCases are the accesses BenchmarkAccessCost compares, the first
// being the baseline.
var accessCases = []struct{ name, access string }{
	{"ld", "ld.global.u32 %r5, [%rd1]; add.s32 %r4, %r4, %r5;"},
	{"none", "add.s32 %r4, %r4, %r3;"},
	{"ld.volatile", "ld.volatile.global.u32 %r5, [%rd1]; add.s32 %r4, %r4, %r5;"},
	{"ld.relaxed.gpu", "ld.relaxed.gpu.global.u32 %r5, [%rd1]; add.s32 %r4, %r4, %r5;"},
	{"st", "st.global.u32 [%rd1], %r3; add.s32 %r4, %r4, %r3;"},
	{"st.volatile", "st.volatile.global.u32 [%rd1], %r3; add.s32 %r4, %r4, %r3;"},
	{"atom.add.u32", "atom.global.add.u32 %r5, [%rd1], 1; add.s32 %r4, %r4, %r5;"},
	{"atom.add.u32.shared-word", "atom.global.add.u32 %r5, [%rd0], 1; add.s32 %r4, %r4, %r5;"},
	{"red.add.u32", "red.global.add.u32 [%rd1], 1; add.s32 %r4, %r4, %r3;"},
	{"atom.add.f32", "atom.global.add.f32 %f0, [%rd1], %f1; add.s32 %r4, %r4, %r3;"},
	{"atom.cas.b32", "atom.global.cas.b32 %r5, [%rd1], %r5, %r3; add.s32 %r4, %r4, %r5;"},
	{"atom.shared.add.u32", "atom.shared.add.u32 %r5, [%r6], 1; add.s32 %r4, %r4, %r5;"},
}

// BenchmarkAccessCost measures what an atomic or volatile access costs
// the interpreter against a plain 32-bit global load: each case runs a
// launch of 8 blocks of 256 threads, each thread accessing memory 256
// times, in turn with the baseline, on one worker. It reports the
// process CPU time per thread-access of both (steadier than wall time on
// a shared machine) and the ratio, case over baseline.
func BenchmarkAccessCost(b *testing.B) {
	const blocks, threads, n = 8, 256, 256
	mem := newTestMem()
	buf := mem.alloc(4 * threads)
	prep := func(access string) (*Kernel, *Launch) {
		m, err := Load(fmt.Appendf(nil, accessKernel, access))
		if err != nil {
			b.Fatal(err)
		}
		k, err := m.Kernel("access")
		if err != nil {
			b.Fatal(err)
		}
		return k, launch(k, mem, [3]uint32{blocks, 1, 1}, [3]uint32{threads, 1, 1}, 0, packParams(b, k, buf, uint32(n)), 1)
	}
	kb, lb := prep(accessCases[0].access)
	run := func(k *Kernel, l *Launch) time.Duration {
		t0 := cpuTime(b)
		if err := k.Run(l); err != nil {
			b.Fatal(err)
		}
		return cpuTime(b) - t0
	}
	for _, c := range accessCases[1:] {
		b.Run(c.name, func(b *testing.B) {
			k, l := prep(c.access)
			var tb, tc time.Duration
			for b.Loop() {
				tb += run(kb, lb)
				tc += run(k, l)
			}
			per := float64(b.N) * blocks * threads * n
			b.ReportMetric(float64(tb.Nanoseconds())/per, "ns/ld")
			b.ReportMetric(float64(tc.Nanoseconds())/per, "ns/access")
			b.ReportMetric(float64(tc)/float64(tb), "×ld")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
