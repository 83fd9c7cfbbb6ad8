//go:build cgo

package cuda

// Plumbing tests against a fake libcuda (testdata/fakecuda.c, built here
// with gcc). They check dlopen/dlsym, the version refusal, the C helpers'
// argument passing and the quota and metering book-keeping — not a GPU —
// and run the backend conformance suite (gpu/gputest) over the fake. The
// driver table is process-wide, so the scenarios run in a child test
// process.

import (
	"errors"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin"
	"github.com/kerf-edge/kerf/abi/fatbin/fatbintest"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/gputest"
)

const fakeDirEnv = "KERF_CUDA_FAKE_DIR"

// buildFake compiles the fake driver with extra -D flags into dir/name.
func buildFake(t *testing.T, dir, name string, defs ...string) {
	t.Helper()
	args := []string{"-shared", "-fPIC", "-pthread", "-Wall", "-Werror", "-Wno-unused-parameter", "-I" + headerDir, "-o", filepath.Join(dir, name)}
	args = append(args, defs...)
	args = append(args, filepath.Join("testdata", "fakecuda.c"))
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
}

// inChild builds the fake driver's variants and runs the test called
// child in a child test process, which loads them.
func inChild(t *testing.T, child string) {
	t.Helper()
	if os.Getenv(fakeDirEnv) != "" {
		t.Skip("in the child")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc")
	}
	dir := t.TempDir()
	buildFake(t, dir, "full.so")
	buildFake(t, dir, "old.so", "-DFAKE_VERSION=10020")
	buildFake(t, dir, "noparaminfo.so", "-DFAKE_NO_PARAMINFO")
	buildFake(t, dir, "cuda122.so", "-DFAKE_NO_PARAMINFO", "-DFAKE_VERSION=12020")
	buildFake(t, dir, "nodevices.so", "-DFAKE_DEVICES=0")
	buildFake(t, dir, "shim.so", "-DFAKE_SHIM")
	buildFake(t, dir, "timed.so", "-DFAKE_KERNEL_US=300")
	if out, err := exec.Command("gcc", "-shared", "-fPIC", "-o", filepath.Join(dir, "notcuda.so"), "-x", "c", "/dev/null").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	runChild(t, child, dir)
}

// runChild runs the test called child in a child test process, with the
// fake drivers in dir and the extra environment env.
func runChild(t *testing.T, child, dir string, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.v")
	cmd.Env = append(append(os.Environ(), fakeDirEnv+"="+dir), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+child) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// Skips in the child, with their reasons, show in the parent's log.
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		name, ok := strings.CutPrefix(l, "=== RUN   "+child+"/")
		if ok && i+1 < len(lines) && strings.Contains(string(out), "--- SKIP: "+child+"/"+name+" ") {
			t.Logf("child skipped %s: %s", name, strings.TrimSpace(lines[i+1]))
		}
	}
}

func TestFakeDriverPlumbing(t *testing.T) { inChild(t, "TestFakeDriverChild") }

func TestFakeDriverImageLayouts(t *testing.T) { inChild(t, "TestFakeDriverImageLayoutsChild") }

// TestDriverSymbolsPredateMinimum checks that every driver entry point the
// backend needs is as old as MinDriverVersion, except cuFuncGetParamInfo,
// whose layouts are otherwise read from module images.
func TestDriverSymbolsPredateMinimum(t *testing.T) {
	syms := driverSymbols()
	if len(syms) == 0 {
		t.Fatal("no driver symbols")
	}
	for _, s := range syms {
		if s.since > MinDriverVersion && s.name != "cuFuncGetParamInfo" {
			t.Errorf("%s needs CUDA %s, newer than MinDriverVersion %s", s.name, versionString(s.since), versionString(MinDriverVersion))
		}
	}
}

func TestFakeDriverConformance(t *testing.T) { inChild(t, "TestFakeDriverConformanceChild") }

// fakeKernels are the fake driver's vadd, which completes, and vadd with
// n = -1, which faults.
var fakeKernels = &gputest.Kernels{
	Ok: gputest.Kernel{Image: []byte(".version 8.4\n"), Name: "vadd", Launch: func(*testing.T, gpu.Context) (abi.LaunchConfig, []byte) {
		return fakeLaunch, make([]byte, 28)
	}},
	Fault: gputest.Kernel{Image: []byte(".version 8.4\n"), Name: "vadd", Launch: func(*testing.T, gpu.Context) (abi.LaunchConfig, []byte) {
		return fakeLaunch, append(make([]byte, 24), 0xff, 0xff, 0xff, 0xff)
	}},
}

// fakeVaddPTX declares the fake's vadd, for drivers without
// cuFuncGetParamInfo.
var fakeVaddPTX = []byte(".version 7.8\n.target sm_80\n.address_size 64\n" +
	".visible .entry vadd(\n\t.param .u64 a,\n\t.param .u64 b,\n\t.param .u64 c,\n\t.param .u32 n\n)\n{\n\tret;\n}\n")

var fakeLaunch = abi.LaunchConfig{Grid: abi.Dim3{X: 1, Y: 1, Z: 1}, Block: abi.Dim3{X: 32, Y: 1, Z: 1}}

func TestFakeDriverConformanceChild(t *testing.T) {
	dir := os.Getenv(fakeDirEnv)
	if dir == "" {
		t.Skip("run by TestFakeDriverConformance")
	}
	gputest.Run(t, func(t *testing.T) gpu.Backend {
		b, err := New(Config{Library: filepath.Join(dir, "full.so")})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, gputest.Options{
		MemLimit:         64<<20 + 16<<20, // the fake's context takes 64 MiB
		Kernels:          fakeKernels,
		NoMemoryContents: "the fake driver stores no bytes, and range checks are the driver's, which the fake does not model",
	})
}

func TestFakeDriverChild(t *testing.T) {
	dir := os.Getenv(fakeDirEnv)
	if dir == "" {
		t.Skip("run by TestFakeDriverPlumbing")
	}
	lib := func(name string) Config { return Config{Library: filepath.Join(dir, name)} }
	refused := func(name string, want error, msgs ...string) {
		t.Helper()
		_, err := New(lib(name))
		if !errors.Is(err, want) {
			t.Fatalf("%s: err %v, want %v", name, err, want)
		}
		for _, m := range msgs {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: %q lacks %q", name, err, m)
			}
		}
	}
	refused("missing.so", ErrNoDriver, "missing.so")
	refused("notcuda.so", ErrNoDriver, "cuDriverGetVersion")
	refused("old.so", ErrDriverTooOld, "CUDA 10.2", "10020", "CUDA 11.0", "11000")
	// A CUDA 12.4 driver must have cuFuncGetParamInfo.
	refused("noparaminfo.so", ErrDriverTooOld, "cuFuncGetParamInfo")
	refused("nodevices.so", ErrNoDevice, "no devices")
	refused("shim.so", ErrNoDriver, "client shim")

	// Every symbol the table names must be in the full fake, or New fails.
	b, err := New(lib("full.so"))
	if err != nil {
		t.Fatalf("full fake: %v (symbols %v)", err, driverSymbols())
	}
	if _, err := New(lib("old.so")); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("second library: %v", err)
	}
	devs := b.Devices()
	if len(devs) != 1 || devs[0].Name != "Kerf Fake GPU" || devs[0].TotalMem != 1<<30 ||
		devs[0].SMs != 132 || devs[0].CCMajor != 9 || devs[0].UUID[1] != 1 || devs[0].DriverVersion != 12040 || devs[0].Emulated {
		t.Fatalf("devices %+v", devs)
	}
	if _, err := b.Open(1, 0); abi.ResultOf(err) != abi.ErrInvalidDevice {
		t.Fatalf("Open(1): %v", err)
	}
	// The fake's context takes 64 MiB: a 32 MiB quota cannot hold it.
	if _, err := b.Open(0, 32<<20); abi.ResultOf(err) != abi.ErrOutOfMemory {
		t.Fatalf("Open under the context's footprint: %v", err)
	}

	g, err := b.Open(0, 100<<20)
	if err != nil {
		t.Fatal(err)
	}
	c := g.(*Context)
	if c.MemUsed() != 64<<20 {
		t.Fatalf("context footprint charged %d, want 64 MiB", c.MemUsed())
	}
	if free, total := c.MemInfo(); total != 100<<20 || free != 36<<20 {
		t.Fatalf("MemInfo = %d, %d", free, total)
	}
	m, err := c.ModuleLoad([]byte(".version 8.4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MemUsed() != 65<<20 {
		t.Fatalf("after module load charged %d, want 65 MiB", c.MemUsed())
	}
	if _, err := c.ModuleLoad([]byte("bad")); abi.ResultOf(err) != abi.ErrInvalidPTX || !strings.Contains(err.Error(), "line 1; error") {
		t.Fatalf("bad image: %v, want the driver's JIT error log", err)
	}
	moduleImages(t, c)
	// Limits go to the driver, which answers for the ones it has.
	if err := c.SetLimit(abi.LimitPrintfFIFOSize, 64<<10); err != nil {
		t.Fatalf("printf FIFO limit: %v", err)
	}
	if err := c.SetLimit(abi.LimitMaxL2FetchGranularity, 64); abi.ResultOf(err) != abi.ErrUnsupportedLimit {
		t.Fatalf("a limit the driver lacks: %v, want CUDA_ERROR_UNSUPPORTED_LIMIT", err)
	}
	p, err := c.MemAlloc(30 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.MemAlloc(5 << 20); abi.ResultOf(err) != abi.ErrOutOfMemory {
		t.Fatalf("over quota: %v", err)
	}
	if err := c.SetMemLimit(64 << 20); abi.ResultOf(err) != abi.ErrOutOfMemory {
		t.Fatalf("shrink below use: %v", err)
	}
	if err := c.MemFree(p + 512); abi.ResultOf(err) != abi.ErrInvalidValue {
		t.Fatalf("free of a non-base: %v", err)
	}
	if err := c.MemFree(p); err != nil {
		t.Fatal(err)
	}
	if c.MemUsed() != 65<<20 {
		t.Fatalf("after free charged %d", c.MemUsed())
	}

	f, err := m.Function("vadd")
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := f.Params()
	if len(ps) != 4 || ps[3] != (abi.ParamInfo{Offset: 24, Size: 4}) {
		t.Fatalf("params %+v", ps)
	}
	if _, err := m.Function("nope"); abi.ResultOf(err) != abi.ErrNotFound {
		t.Fatalf("missing kernel: %v", err)
	}
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: 1, Y: 1, Z: 1}, Block: abi.Dim3{X: 32, Y: 1, Z: 1}}
	params := make([]byte, 28)
	if err := c.Launch(f, cfg, params[:20], nil); abi.ResultOf(err) != abi.ErrInvalidValue {
		t.Fatalf("short parameter buffer: %v", err)
	}
	s, err := c.StreamCreate(abi.StreamNonBlocking, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(f, cfg, params, s); err != nil {
		t.Fatal(err)
	}
	if got := c.BusyTime().Microseconds(); got != 1500 {
		t.Fatalf("BusyTime %dµs after one 1.5 ms launch", got)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(f, cfg, params, s); abi.ResultOf(err) != abi.ErrInvalidHandle {
		t.Fatalf("launch on a destroyed stream: %v", err)
	}
	// n = -1 makes the fake fault: the context is poisoned for good.
	copy(params[24:], []byte{0xff, 0xff, 0xff, 0xff})
	if err := c.Launch(f, cfg, params, nil); abi.ResultOf(err) != abi.ErrIllegalAddress {
		t.Fatalf("faulting launch: %v", err)
	}
	if _, err := c.MemAlloc(1); abi.ResultOf(err) != abi.ErrIllegalAddress {
		t.Fatalf("after the fault: %v", err)
	}
	if err := m.Unload(); abi.ResultOf(err) != abi.ErrIllegalAddress {
		t.Fatalf("unload after the fault: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("closing a poisoned context: %v", err)
	}
	if err := c.Close(); abi.ResultOf(err) != abi.ErrInvalidContext {
		t.Fatalf("second close: %v", err)
	}
	if _, err := c.MemAlloc(1); abi.ResultOf(err) != abi.ErrInvalidContext {
		t.Fatalf("after close: %v", err)
	}
	// A fresh context starts from its own footprint only; its calls may
	// come from many goroutines at once.
	g2, err := b.Open(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if used := g2.(*Context).MemUsed(); used != 64<<20 {
		t.Fatalf("fresh context charged %d", used)
	}
	if free, total := g2.MemInfo(); total != 1<<30 || free > 1<<30-64<<20 {
		t.Fatalf("fresh context MemInfo = %d, %d", free, total)
	}
	concurrent(t, g2.(*Context))
	if err := g2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFakeDriverImageLayoutsChild runs on a CUDA 12.2 fake, which lacks
// cuFuncGetParamInfo: kernel layouts come from the module image.
func TestFakeDriverImageLayoutsChild(t *testing.T) {
	dir := os.Getenv(fakeDirEnv)
	if dir == "" {
		t.Skip("run by TestFakeDriverImageLayouts")
	}
	b, err := New(Config{Library: filepath.Join(dir, "cuda122.so")})
	if err != nil {
		t.Fatal(err)
	}
	if b.DriverVersion() != 12020 {
		t.Fatalf("driver version %d", b.DriverVersion())
	}
	g, err := b.Open(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ptx := fakeVaddPTX
	for _, img := range [][]byte{ptx, fatbintest.Container(fatbintest.PTX(80, ptx, true))} {
		m, err := g.ModuleLoad(img)
		if err != nil {
			t.Fatal(err)
		}
		f, err := m.Function("vadd")
		if err != nil {
			t.Fatal(err)
		}
		ps, _ := f.Params()
		want := []abi.ParamInfo{{Offset: 0, Size: 8}, {Offset: 8, Size: 8}, {Offset: 16, Size: 8}, {Offset: 24, Size: 4}}
		if !slices.Equal(ps, want) {
			t.Fatalf("params %v, want %v", ps, want)
		}
		if err := g.Launch(f, fakeLaunch, make([]byte, 28), nil); err != nil {
			t.Fatal(err)
		}
		if err := m.Unload(); err != nil {
			t.Fatal(err)
		}
	}
	// The fake knows vadd, but this image does not declare it.
	m, err := g.ModuleLoad([]byte(".version 8.4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Function("vadd"); abi.ResultOf(err) != abi.ErrNotSupported || !strings.Contains(err.Error(), "cuFuncGetParamInfo") {
		t.Fatalf("kernel the image lacks: %v", err)
	}
}

// moduleImages checks that a fatbin container reaches the driver whole and
// unchanged, and that images whose headers reach past their bytes never
// reach it. c's charge is the same after as before.
func moduleImages(t *testing.T, c *Context) {
	t.Helper()
	img := fatbintest.Container(
		fatbintest.PTX(90, []byte(".version 8.4\n.target sm_90\n"), true),
		fatbintest.Entry{Kind: fatbin.KindELF, Arch: 90, Payload: fatbintest.ELF(512)},
	)
	used := c.MemUsed()
	m, err := c.ModuleLoad(img)
	if err != nil {
		t.Fatal(err)
	}
	h := fnv.New64a()
	h.Write(img)
	if sum, n, err := m.Global("kerf_fake_image"); err != nil || sum != h.Sum64() || n != uint64(len(img)) {
		t.Fatalf("driver got %d bytes hashing %#x (%v); want %d, %#x", n, sum, err, len(img), h.Sum64())
	}
	if err := m.Unload(); err != nil {
		t.Fatal(err)
	}
	for name, bad := range fatbintest.Malformed() {
		if _, err := c.ModuleLoad(bad); abi.ResultOf(err) != abi.ErrInvalidImage {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if c.MemUsed() != used {
		t.Fatalf("charged %d after module images, %d before", c.MemUsed(), used)
	}
}

// concurrent hammers c from several goroutines (run with -race): the
// book-keeping must stay exact and nothing may deadlock.
func concurrent(t *testing.T, c *Context) {
	m, err := c.ModuleLoad([]byte(".version 8.4\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.Function("vadd")
	if err != nil {
		t.Fatal(err)
	}
	before, busy0 := c.MemUsed(), c.BusyTime()
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: 1, Y: 1, Z: 1}, Block: abi.Dim3{X: 1, Y: 1, Z: 1}}
	const workers, rounds = 4, 200
	done := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range rounds {
				p, err := c.MemAlloc(uint64(1 + (w*rounds+i)%5000))
				if err != nil {
					done <- err
					return
				}
				s, err := c.StreamCreate(0, 0)
				if err != nil {
					done <- err
					return
				}
				if err := c.Launch(f, cfg, make([]byte, 28), s); err != nil {
					done <- err
					return
				}
				c.MemInfo()
				c.BusyTime()
				if err := s.Destroy(); err != nil {
					done <- err
					return
				}
				if err := c.MemFree(p); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range workers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if c.MemUsed() != before {
		t.Fatalf("charged %d after balanced allocations, want %d", c.MemUsed(), before)
	}
	if got := c.BusyTime() - busy0; got.Microseconds() != workers*rounds*1500 {
		t.Fatalf("BusyTime grew %v over %d launches of 1.5 ms", got, workers*rounds)
	}
	if err := m.Unload(); err != nil {
		t.Fatal(err)
	}
	if c.MemUsed() != before-1<<20 {
		t.Fatalf("module footprint not returned: %d", c.MemUsed())
	}
}
