package main

// Kerf over Kerf: the real-GPU backend (gpu/cuda) with Kerf's own shim as
// its driver. An inner kerfd serves the emulated GPU; a lease on it and
// the shim stand in for an NVIDIA driver, which the backend drives as it
// would a real one (kerfenv.TestAllowShimDriver lifts its refusal of the
// shim, for tests only). On that pairing run the backend conformance
// suite, and the C test programs through an outer kerfd whose backend is
// cuda. The driver table is process-wide and the shim reads its lease
// from the environment, so both run in child test processes.

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/appliance"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/cuda"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
	"github.com/kerf-edge/kerf/gpu/gputest"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/transport"
)

const (
	// childBinDirEnv tells a child test process where the parent built the
	// shim and the programs (TestMain builds nothing then).
	childBinDirEnv = "KERF_TEST_CHILD_BINDIR"
	// outerStateEnv is the outer kerfd's state directory, in its child.
	outerStateEnv = "KERF_TEST_OUTER_STATE"
	// innerMemory is what the lease on the inner kerfd gives the backend:
	// its one device's memory. kerfd keeps 512 MiB of a real GPU back
	// from its slices (slicer.DefaultReserve); 1 GiB is left.
	innerMemory = 1536 << 20
)

// startInnerKerfd starts the inner kerfd: two whole emulated GPUs.
func startInnerKerfd(t *testing.T) *kerfd {
	t.Helper()
	return startKerfd(t, "KERF_GPU__EMULATED__MEMORY=2GiB", "KERF_SLICER__PROFILE=whole",
		"KERF_SLICER__MAX_FRACTION_PER_TENANT=0")
}

// shimDriverEnv leases one slice of innerMemory bytes on the inner kerfd
// for the test's length and returns the environment under which the shim
// serves it as a driver to the backend: what `kerf run` gives a program,
// and the test-only switch.
func shimDriverEnv(t *testing.T, inner *kerfd) []string {
	t.Helper()
	path := inner.bundle(t, "outer-kerfd")
	b, err := auth.ReadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	lease, err := transport.OpenLeaseUnix(ctx, b.Socket, transport.Options{Token: []byte(b.Token), Name: "kerf over kerf"},
		transport.AllocRequest{Count: 1, Memory: innerMemory, Device: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lease.Close() })
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KERF_") && !strings.HasPrefix(e, "LD_LIBRARY_PATH=") {
			env = append(env, e)
		}
	}
	return append(env, kerfenv.Bundle+"="+path, kerfenv.Lease+"="+lease.ID, kerfenv.Devices+"="+strconv.Itoa(lease.Slices[0].Device),
		kerfenv.Via+"=unix", kerfenv.Memory+"="+strconv.Itoa(innerMemory),
		kerfenv.TestAllowShimDriver+"=1", childBinDirEnv+"="+binDir)
}

// shimDriver is the shim's path, as the backend's library.
func shimDriver() string { return filepath.Join(binDir, "libcuda.so.1") }

// inChildProcess reports whether this is the child test process of a
// Kerf-over-Kerf test (and skips otherwise).
func inChildProcess(t *testing.T) {
	t.Helper()
	if os.Getenv(kerfenv.TestAllowShimDriver) != "1" || os.Getenv(childBinDirEnv) == "" {
		t.Skip("run by a Kerf-over-Kerf test in a child process")
	}
}

// TestKerfOverKerfConformance runs the backend conformance suite on the
// CUDA backend driving the shim.
func TestKerfOverKerfConformance(t *testing.T) {
	inner := startInnerKerfd(t)
	const child = "TestKerfOverKerfConformanceChild"
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.v")
	cmd.Env = shimDriverEnv(t, inner)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+child)) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// overKerfKernels are the emulator's test kernels: vadd over 32 floats,
// and oob_write, which writes far past its buffer.
var overKerfKernels = &gputest.Kernels{
	Ok: gputest.Kernel{Image: kernels.PTX("vadd.ptx"), Name: "vadd", Launch: func(t *testing.T, c gpu.Context) (abi.LaunchConfig, []byte) {
		var params []byte
		for range 3 {
			params = binary.LittleEndian.AppendUint64(params, mustAlloc(t, c, 128))
		}
		return overKerfLaunch, binary.LittleEndian.AppendUint32(params, 32)
	}},
	Fault: gputest.Kernel{Image: kernels.PTX("oob.ptx"), Name: "oob_write", Launch: func(t *testing.T, c gpu.Context) (abi.LaunchConfig, []byte) {
		return overKerfLaunch, binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint64(nil, mustAlloc(t, c, 128)), 0)
	}},
}

var overKerfLaunch = abi.LaunchConfig{Grid: abi.Dim3{X: 1, Y: 1, Z: 1}, Block: abi.Dim3{X: 32, Y: 1, Z: 1}}

func mustAlloc(t *testing.T, c gpu.Context, n uint64) uint64 {
	t.Helper()
	p, err := c.MemAlloc(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKerfOverKerfConformanceChild(t *testing.T) {
	inChildProcess(t)
	var logs bytes.Buffer
	backend, err := cuda.New(cuda.Config{Library: shimDriver(), Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "TEST ONLY") {
		t.Errorf("no warning that the backend drives the shim: %q", logs.String())
	}
	// Launches are metered with events recorded around them, which the
	// inner kerfd's emulated GPU times. First: the suite's fault test
	// ends the shared session's device work.
	t.Run("EventMetering", func(t *testing.T) {
		c, err := backend.Open(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		m, err := c.ModuleLoad(overKerfKernels.Ok.Image)
		if err != nil {
			t.Fatal(err)
		}
		f, err := m.Function(overKerfKernels.Ok.Name)
		if err != nil {
			t.Fatal(err)
		}
		cfg, params := overKerfKernels.Ok.Launch(t, c)
		for range 3 {
			if err := c.Launch(f, cfg, params, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Synchronize(); err != nil {
			t.Fatal(err)
		}
		if busy := c.(gpu.Meter).BusyTime(); busy <= 0 {
			t.Fatalf("BusyTime %v after three launches", busy)
		}
	})
	gputest.Run(t, func(*testing.T) gpu.Backend { return backend }, gputest.Options{Kernels: overKerfKernels,
		FaultsShared: "the shim serves every context of a device over one session to the inner kerfd, and a fault ends the session's device work"})
}

// outerKerfd is a kerfd whose backend is cuda over the shim, in a child
// process, and the bundle of its tenant "alice".
type outerKerfd struct {
	bundle string
	log    *bytes.Buffer
}

// startOuterKerfd starts the outer kerfd and waits until it serves.
func startOuterKerfd(t *testing.T, inner *kerfd) *outerKerfd {
	t.Helper()
	state := t.TempDir()
	const child = "TestOuterKerfdChild"
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.v")
	cmd.Env = append(shimDriverEnv(t, inner), outerStateEnv+"="+state)
	o := &outerKerfd{bundle: filepath.Join(state, "alice.json"), log: new(bytes.Buffer)}
	cmd.Stdout, cmd.Stderr = o.log, o.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("outer kerfd (%v):\n%s", waitErr, o.log)
		}
	})
	testkit.WaitFor(t, "the outer kerfd's bundle and socket", func() bool {
		select {
		case <-exited:
			t.Fatalf("outer kerfd exited: %v", waitErr)
		default:
		}
		return fileExists(o.bundle) && fileExists(filepath.Join(state, "kerf.sock"))
	})
	return o
}

// TestOuterKerfdChild is the outer kerfd: gpu.backend cuda, the shim as
// its driver. It writes alice's bundle, then serves until SIGTERM.
func TestOuterKerfdChild(t *testing.T) {
	inChildProcess(t)
	state := os.Getenv(outerStateEnv)
	if state == "" {
		t.Skip("run by startOuterKerfd")
	}
	cfg, err := appliance.LoadConfig("", []string{
		"KERF_STATE_DIR=" + state,
		"KERF_LISTEN__QUIC=127.0.0.1:0",
		"KERF_LISTEN__HTTP=",
		"KERF_GPU__BACKEND=cuda",
		"KERF_GPU__CUDA__LIBRARY=" + shimDriver(),
		"KERF_SLICER__PROFILE=uniform-10",
		"KERF_SLICER__MAX_FRACTION_PER_TENANT=0",
		"KERF_INGEST__ENABLED=false",
	})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	a, err := appliance.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if _, err := a.IssueBundle("alice", 0, filepath.Join(state, "alice.json")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestKerfOverKerfPrograms runs the C test programs and the CUDA-runtime
// programs (rt_*.cu, when nvcc is here) as tenants of the outer kerfd:
// contexts per tenant, modules from PTX and fatbins, launches, streams
// and events, memory quotas, faults, and what a program leaves at exit,
// all through the CUDA backend.
func TestKerfOverKerfPrograms(t *testing.T) {
	inner := startInnerKerfd(t)
	outer := startOuterKerfd(t, inner)
	good, bad := writeFatbins(t)
	// The outer kerfd drives the inner one: its backend holds a session
	// there from the start, and each tenant session's worker opens one
	// more, which ends with it.
	outerSessions := func() int {
		n := 0
		for _, s := range inner.a.Sessions() {
			if s.Tenant == "outer-kerfd" {
				n++
			}
		}
		return n
	}
	base := outerSessions()
	if base == 0 {
		t.Fatal("the outer kerfd holds no session on the inner one")
	}
	for _, c := range []struct {
		program string
		memory  uint64
		args    []string
	}{
		{"vadd", 0, []string{ptx("vadd"), ptx("stencil")}},
		{"matmul", 0, []string{ptx("matmul")}},
		{"streams", 0, []string{ptx("vadd")}},
		{"errors", 0, []string{ptx("vadd")}},
		{"procaddr", 0, []string{ptx("vadd")}},
		{"dlopen", 0, []string{"run"}},
		{"fatbin", 0, []string{good, bad}},
		{"memlimit", 4 << 20, []string{"4194304"}},
		{"leak", 0, []string{ptx("vadd")}},
	} {
		t.Run(c.program, func(t *testing.T) {
			kerfRun(t, outer.bundle, "unix", 1, c.memory, c.program, c.args...)
			testkit.WaitFor(t, "the tenant's worker's session on the inner kerfd to end", func() bool { return outerSessions() == base })
		})
	}
	// One tenant's illegal address is that tenant's alone.
	t.Run("oob", func(t *testing.T) {
		t.Run("neighbour", func(t *testing.T) {
			t.Parallel()
			kerfRun(t, outer.bundle, "unix", 1, 0, "vadd", ptx("vadd"), ptx("stencil"))
		})
		t.Run("faulting", func(t *testing.T) {
			t.Parallel()
			kerfRun(t, outer.bundle, "unix", 1, 0, "oob", ptx("oob"))
		})
	})
	t.Run("runtime", func(t *testing.T) {
		buildRuntimePrograms(t)
		for _, link := range cudartLinks {
			for _, p := range rtPrograms {
				t.Run(p+"_"+link, func(t *testing.T) {
					if rtGPUs(p) > 1 {
						t.Skipf("%s needs %d devices; the inner kerfd serves one", p, rtGPUs(p))
					}
					if why, ok := rtEmulatorOnly[p]; ok {
						t.Skipf("%s: %s", p, why)
					}
					kerfRun(t, outer.bundle, "unix", 1, rtSlice, p+"_"+link, strconv.Itoa(rtSlice))
				})
			}
		}
	})
}
