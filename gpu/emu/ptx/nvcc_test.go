package ptx

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// nvccCorpusFloor is the share of testdata/nvcc modules that must load.
// Raise it as the interpreter learns more of what nvcc emits.
const nvccCorpusFloor = 0.95

// nvccPTX compiles the CUDA files under testdata/nvcc named by names
// (without .cu) with nvcc 11.8 for compute_80 into dir, two at a time,
// and returns each one's PTX. It skips the test when nvcc is missing.
// flags are added to nvcc's command line.
func nvccPTX(t testing.TB, dir string, names []string, flags ...string) map[string][]byte {
	t.Helper()
	nvcc, err := exec.LookPath("nvcc")
	if err != nil {
		t.Skip("nvcc is not installed: the nvcc corpus cannot be compiled")
	}
	var (
		mu   sync.Mutex
		out  = map[string][]byte{}
		errs []string
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 2)
	)
	for _, n := range names {
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			dst := filepath.Join(dir, n+".ptx")
			args := append([]string{"-ptx", "-gencode", "arch=compute_80,code=compute_80", "-o", dst, filepath.Join("testdata", "nvcc", n+".cu")}, flags...)
			if _, err := exec.LookPath("clang-14"); err == nil {
				args = append([]string{"-ccbin", "clang-14"}, args...)
			}
			b, err := exec.Command(nvcc, args...).CombinedOutput()
			var src []byte
			if err == nil {
				src, err = os.ReadFile(dst)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("nvcc %s: %v\n%s", n, err, b))
				return
			}
			out[n] = src
		}(n)
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Strings(errs)
		t.Fatal(strings.Join(errs, "\n"))
	}
	return out
}

// corpusNames lists the CUDA files of testdata/nvcc without extension.
func corpusNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "nvcc", "*.cu"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".cu"))
	}
	sort.Strings(names)
	return names
}

// The PTX nvcc 11.8 emits for ordinary CUDA programs loads. The test
// logs every module that does not, with the reason, and fails when the
// share that loads drops below nvccCorpusFloor.
func TestNvccCorpusLoads(t *testing.T) {
	names := corpusNames(t)
	srcs := nvccPTX(t, t.TempDir(), names)
	loaded := 0
	for _, n := range names {
		if _, err := Load(srcs[n]); err != nil {
			t.Logf("%s: %v", n, err)
			continue
		}
		loaded++
	}
	rate := float64(loaded) / float64(len(names))
	t.Logf("nvcc corpus: %d of %d modules load (%.0f%%)", loaded, len(names), 100*rate)
	if rate < nvccCorpusFloor {
		t.Fatalf("load rate %.2f below the floor %.2f", rate, nvccCorpusFloor)
	}
}

// PTX with debug information (-G: .file, .loc and .section; -lineinfo:
// .file and .loc) loads, and a recursive kernel built with -G runs.
func TestNvccDebugInfoLoads(t *testing.T) {
	for _, flag := range []string{"-G", "-lineinfo"} {
		src := nvccPTX(t, t.TempDir(), []string{"recursion"}, flag)["recursion"]
		m, err := Load(src)
		if err != nil {
			t.Fatalf("%s: %v", flag, err)
		}
		k := mustKernel(t, m, "recurse")
		mem := newTestMem()
		in := mem.u32s([]uint32{10, 12})
		out, f := mem.alloc(8), mem.alloc(16)
		if err := k.Run(launch(k, mem, [3]uint32{1, 1, 1}, [3]uint32{2, 1, 1}, 0, packParams(t, k, in, out, f, 2), 1)); err != nil {
			t.Fatalf("%s: %v", flag, err)
		}
		if got := mem.getU32(out, 2); got[0] != 55 || got[1] != 144 {
			t.Fatalf("%s: fib = %v", flag, got)
		}
	}
}
