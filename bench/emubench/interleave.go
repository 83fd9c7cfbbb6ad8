package emubench

import (
	"fmt"
	"slices"
	"time"

	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

// Comparison is the outcome of CompareNVCC: the two builds of one kernel
// run on one worker, one launch of each in turn.
type Comparison struct {
	Kernel   string
	Launches int // of each build
	// ClangCPU and NVCCCPU are each build's median process CPU time per
	// launch (wall time where the platform does not report CPU time).
	ClangCPU time.Duration
	NVCCCPU  time.Duration
	// Speed is ClangCPU over NVCCCPU: above 1, nvcc's PTX runs faster.
	Speed float64
}

// CompareNVCC runs clang's build of kernel and nvcc's (src, from
// CompileNVCC) on one worker, one launch of each in turn, for about d,
// and compares their median CPU time per launch. Taking turns lets both
// builds see the same load, and CPU time leaves out the time other
// processes hold the CPU: on a shared machine, wall-clock figures of one
// build measured after the other move by 2×.
func CompareNVCC(kernel string, src []byte, d time.Duration) (Comparison, error) {
	start := time.Now()
	return compareNVCC(kernel, src, func(n int) bool { return n < 3 || time.Since(start) < d })
}

// compareNVCC is CompareNVCC running pairs of launches while more(the
// pairs run so far) holds.
func compareNVCC(kernel string, src []byte, more func(int) bool) (Comparison, error) {
	c := Comparison{Kernel: kernel}
	if len(src) == 0 {
		return c, fmt.Errorf("emubench: no nvcc build of %s to compare", kernel)
	}
	lc, kc, err := benchLaunch(kernel, nil, 1)
	if err != nil {
		return c, err
	}
	ln, kn, err := benchLaunch(kernel, src, 1)
	if err != nil {
		return c, err
	}
	once := func(k *ptx.Kernel, l *ptx.Launch) (time.Duration, error) {
		t0 := cpuTime()
		_, err := k.RunStats(l)
		return cpuTime() - t0, err
	}
	var tc, tn []time.Duration
	for more(len(tc)) {
		a, err := once(kc, lc)
		if err != nil {
			return c, err
		}
		b, err := once(kn, ln)
		if err != nil {
			return c, err
		}
		tc, tn = append(tc, a), append(tn, b)
	}
	if len(tc) == 0 {
		return c, fmt.Errorf("emubench: no launches of %s compared", kernel)
	}
	slices.Sort(tc)
	slices.Sort(tn)
	c.Launches = len(tc)
	c.ClangCPU, c.NVCCCPU = tc[len(tc)/2], tn[len(tn)/2]
	if c.NVCCCPU > 0 {
		c.Speed = float64(c.ClangCPU) / float64(c.NVCCCPU)
	}
	return c, nil
}
