package main

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "b.json")
	sock := filepath.Join(dir, "kerf.sock")
	if err := auth.WriteBundle(bundle, auth.Bundle{Token: "kerf_x", QUIC: "127.0.0.1:1", Socket: sock, Fingerprint: "ab"}); err != nil {
		t.Fatal(err)
	}
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	here := func(p string) bool { return p == sock }
	nowhere := func(string) bool { return false }

	c, err := loadConfig(env(map[string]string{"KERF_BUNDLE": bundle}), here)
	if err != nil || c.Via != "unix" || len(c.devices) != 1 || c.devices[0] != 0 || c.memory != 0 {
		t.Fatalf("defaults with the socket here: %+v, %v", c, err)
	}
	c, err = loadConfig(env(map[string]string{"KERF_BUNDLE": bundle, "KERF_DEVICES": "1, 0", "KERF_MEMORY": "64MiB"}), nowhere)
	if err != nil || c.Via != "quic" || len(c.devices) != 2 || c.devices[0] != 1 || c.memory != 64<<20 {
		t.Fatalf("quic, devices, memory: %+v, %v", c, err)
	}
	// kerf run's lease and server override; CUDA_VISIBLE_DEVICES selects
	// within the slice set and stops at the first invalid entry.
	c, err = loadConfig(env(map[string]string{"KERF_BUNDLE": bundle, "KERF_DEVICES": "4,5,6", "KERF_LEASE": "l-9",
		"KERF_SERVER": "10.0.0.9:7443", "CUDA_VISIBLE_DEVICES": "2,0,7,1"}), nowhere)
	if err != nil || c.Lease != "l-9" || c.Bundle.QUIC != "10.0.0.9:7443" || !slices.Equal(c.devices, []int{6, 4}) {
		t.Fatalf("lease, server, visible devices: %+v, %v", c, err)
	}
	for _, kv := range []map[string]string{
		{},
		{"KERF_BUNDLE": filepath.Join(dir, "missing.json")},
		{"KERF_BUNDLE": bundle, "KERF_VIA": "carrier-pigeon"},
		{"KERF_BUNDLE": bundle, "KERF_DEVICES": "0,x"},
		{"KERF_BUNDLE": bundle, "KERF_DEVICES": "0,0"},
		{"KERF_BUNDLE": bundle, "KERF_DEVICES": "-1"},
		{"KERF_BUNDLE": bundle, "KERF_MEMORY": "lots"},
		{"KERF_BUNDLE": bundle, "KERF_MEMORY": "0"},
	} {
		if _, err := loadConfig(env(kv), here); err == nil {
			t.Errorf("%v accepted", kv)
		}
	}
}

func TestResolveProc(t *testing.T) {
	name := func(sym string, v int, pt bool) string {
		i, q := resolveProc(sym, v, pt)
		if i < 0 {
			return map[int]string{procNotFound: "not found", procNotSufficient: "too old"}[q]
		}
		return procs[i].name
	}
	for _, c := range []struct {
		sym  string
		v    int
		pt   bool
		want string
	}{
		{"cuMemAlloc", 12040, false, "cuMemAlloc_v2"},
		{"cuMemAlloc", 3000, false, "too old"},
		{"cuMemAlloc_v2", 12040, false, "cuMemAlloc_v2"},
		{"cuCtxDestroy", 3020, false, "cuCtxDestroy"},
		{"cuCtxDestroy", 4000, false, "cuCtxDestroy_v2"},
		{"cuGetProcAddress", 11030, false, "cuGetProcAddress"},
		{"cuGetProcAddress", 12000, false, "cuGetProcAddress_v2"},
		{"cuDeviceGetUuid", 11040, false, "cuDeviceGetUuid_v2"},
		{"cuLaunchKernel", 12000, true, "cuLaunchKernel_ptsz"},
		{"cuLaunchKernel_ptsz", 12000, false, "cuLaunchKernel_ptsz"},
		{"cuMemcpyHtoDAsync", 12000, true, "cuMemcpyHtoDAsync_v2_ptsz"},
		{"cuMemcpyHtoDAsync", 12000, false, "cuMemcpyHtoDAsync_v2"},
		{"cuMemcpyHtoD_v2_ptds", 12000, false, "cuMemcpyHtoD_v2_ptds"},
		{"cuMemcpyHtoD", 6050, true, "cuMemcpyHtoD_v2"},
		{"cuCtxSynchronize", 12000, true, "cuCtxSynchronize"},
		{"cuLaunchKernelEx", 11000, false, "too old"},
		{"cuNoSuch", 12000, false, "not found"},
		{"kerfShutdown", 12000, false, "not found"},
	} {
		if got := name(c.sym, c.v, c.pt); got != c.want {
			t.Errorf("%s at %d: %s, want %s", c.sym, c.v, got, c.want)
		}
	}
}

func TestCheckShapeAndAttrs(t *testing.T) {
	lim := launchLimits{threads: 1024, block: [3]uint32{1024, 1024, 64}, grid: [3]uint32{1<<31 - 1, 65535, 65535}, sharedOptin: 48 << 10}
	d := func(x, y, z uint32) abi.Dim3 { return abi.Dim3{X: x, Y: y, Z: z} }
	for _, c := range []struct {
		grid, block abi.Dim3
		shared      uint32
		want        Result
	}{
		{d(1, 1, 1), d(1, 1, 1), 0, abi.Success},
		{d(1<<31-1, 65535, 65535), d(1024, 1, 1), 48 << 10, abi.Success},
		{d(0, 1, 1), d(1, 1, 1), 0, abi.ErrInvalidValue},
		{d(1, 1, 1), d(1, 0, 1), 0, abi.ErrInvalidValue},
		{d(1, 65536, 1), d(1, 1, 1), 0, abi.ErrInvalidValue},
		{d(1, 1, 1), d(1, 1, 65), 0, abi.ErrInvalidValue},
		{d(1, 1, 1), d(64, 32, 1), 0, abi.ErrInvalidValue},
		{d(1, 1, 1), d(1024, 1024, 64), 0, abi.ErrInvalidValue},
		{d(1, 1, 1), d(1, 1, 1), 48<<10 + 1, abi.ErrInvalidValue},
	} {
		if got := checkShape(lim, c.grid, c.block, c.shared); got != c.want {
			t.Errorf("%v %v %d: %v, want %v", c.grid, c.block, c.shared, got, c.want)
		}
	}
	if r := checkAttrs([]launchAttr{{id: attrPriority}, {id: attrClusterDimension, vals: [3]uint32{1, 1, 1}}, {id: attrCooperative}}); r != abi.Success {
		t.Errorf("hints refused: %v", r)
	}
	coop := []launchAttr{{id: attrPriority}, {id: attrCooperative, vals: [3]uint32{1}}}
	if r := checkAttrs(coop); r != abi.Success || !cooperativeAttr(coop) || cooperativeAttr(coop[:1]) {
		t.Errorf("cooperative attribute: %v, %v", r, cooperativeAttr(coop))
	}
	for _, a := range []launchAttr{{id: attrClusterDimension, vals: [3]uint32{2, 1, 1}}, {id: attrProgrammaticEvent}, {id: 99}} {
		if r := checkAttrs([]launchAttr{a}); r != abi.ErrNotSupported {
			t.Errorf("%+v: %v", a, r)
		}
	}
}

// bytesParams is a parameter buffer made in Go.
type bytesParams []byte

func (b bytesParams) pack([]abi.ParamInfo, int) ([]byte, Result) { return b, abi.Success }

// TestDriverConcurrency drives the shim's Go logic from several OS
// threads at once, in this process, so that the race detector sees it.
// It swaps in a driver of its own for the process-wide one.
// freshDriver points the package's driver at a kerfd of its own with two
// devices, over the local path. A shut-down driver stays deinitialised,
// as CUDA's does, so each test (and each run of it) needs a fresh one.
func freshDriver(t *testing.T) {
	t.Helper()
	k := startKerfd(t)
	t.Setenv("KERF_BUNDLE", k.bundle(t, "alice"))
	t.Setenv("KERF_DEVICES", "0,1")
	t.Setenv("KERF_VIA", "unix")
	saved := drv
	drv = &driver{objs: map[uintptr]*object{}, hosts: map[uintptr]hostBlock{}, inProcess: true}
	t.Cleanup(func() { drv.shutdown(); drv = saved })
	if r := drv.initialize(0); r != abi.Success {
		t.Fatalf("init: %v", r)
	}
	if n, r := deviceCount(); n != 2 || r != abi.Success {
		t.Fatalf("count %d, %v", n, r)
	}
}

// A destroyed stream's or event's handle is refused. Single-threaded: a
// handle's memory may be reused by the next handle made on any thread,
// as CUDA's handles may.
func TestStaleHandlesAreRefused(t *testing.T) {
	freshDriver(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx, r := ctxCreate(0, 0)
	if r != abi.Success {
		t.Fatalf("ctx: %v", r)
	}
	defer ctxDestroy(ctx.key)
	st, r := streamCreate(0, 0)
	if r != abi.Success {
		t.Fatalf("stream: %v", r)
	}
	ev, r := eventCreate(0)
	if r != abi.Success {
		t.Fatalf("event: %v", r)
	}
	if r := streamDestroy(st.key); r != abi.Success {
		t.Fatalf("stream destroy: %v", r)
	}
	if r := eventDestroy(ev.key); r != abi.Success {
		t.Fatalf("event destroy: %v", r)
	}
	if r := streamSynchronize(st.key); r != abi.ErrInvalidHandle {
		t.Errorf("stale stream: %v", r)
	}
	if r := eventSynchronize(ev.key); r != abi.ErrInvalidHandle {
		t.Errorf("stale event: %v", r)
	}
	if r := streamDestroy(st.key); r != abi.ErrInvalidHandle {
		t.Errorf("stream destroyed twice: %v", r)
	}
}

func TestDriverConcurrency(t *testing.T) {
	freshDriver(t)
	const workers, rounds, n = 6, 5, 512
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // a context is current on a thread
			defer runtime.UnlockOSThread()
			if err := worker(w%2, rounds, n); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, r := current(); r != abi.ErrInvalidContext {
		t.Errorf("the test goroutine's thread has a context: %v", r)
	}
}

func worker(dev, rounds, n int) error {
	check := func(what string, r Result) error {
		if r != abi.Success {
			return errors.New(what + ": " + r.Name())
		}
		return nil
	}
	ctx, r := ctxCreate(0, dev)
	if err := check("ctx", r); err != nil {
		return err
	}
	defer ctxDestroy(ctx.key)
	mod, r, _ := moduleLoad(kernels.PTX("vadd"), kindModule)
	if err := check("load", r); err != nil {
		return err
	}
	fn, r := getFunction(mod.key, kindModule, "vadd", kindFunction)
	if err := check("function", r); err != nil {
		return err
	}
	for range rounds {
		st, r := streamCreate(0, 0)
		if err := check("stream", r); err != nil {
			return err
		}
		ev, r := eventCreate(0)
		if err := check("event", r); err != nil {
			return err
		}
		var p [3]uint64
		for i := range p {
			if p[i], r = memAlloc(uint64(4 * n)); r != abi.Success {
				return check("alloc", r)
			}
		}
		in := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(in[4*i:], uint32(i))
		}
		// Integer bit patterns as floats: small denormals add exactly.
		if err := check("htod", memcpyHtoDAsync(p[0], in, st.key)); err != nil {
			return err
		}
		if err := check("memset", memsetAsync(p[1], 0, 4, uint64(n), st.key)); err != nil {
			return err
		}
		params := make([]byte, 28)
		binary.LittleEndian.PutUint64(params[0:], p[0])
		binary.LittleEndian.PutUint64(params[8:], p[1])
		binary.LittleEndian.PutUint64(params[16:], p[2])
		binary.LittleEndian.PutUint32(params[24:], uint32(n))
		if err := check("launch", launch(fn.key, abi.Dim3{X: uint32(n / 128), Y: 1, Z: 1}, abi.Dim3{X: 128, Y: 1, Z: 1}, 0, st.key, bytesParams(params), nil, false)); err != nil {
			return err
		}
		if err := check("record", eventRecord(ev.key, st.key)); err != nil {
			return err
		}
		out := make([]byte, 4*n)
		if err := check("dtoh", memcpyDtoHAsync(out, p[2], st.key)); err != nil {
			return err
		}
		if err := check("event sync", eventSynchronize(ev.key)); err != nil {
			return err
		}
		if err := check("stream sync", streamSynchronize(st.key)); err != nil {
			return err
		}
		if string(out) != string(in) {
			return errors.New("vadd result differs")
		}
		for _, q := range p {
			if err := check("free", memFree(q)); err != nil {
				return err
			}
		}
		if err := check("event destroy", eventDestroy(ev.key)); err != nil {
			return err
		}
		if err := check("stream destroy", streamDestroy(st.key)); err != nil {
			return err
		}
	}
	return check("unload", moduleUnload(mod.key, kindModule))
}

func init() {
	// Nothing in this binary may pick up a real configuration, but for
	// the child processes of the Kerf-over-Kerf tests (and their kerfd's
	// workers), given one on purpose.
	if os.Getenv(childBinDirEnv) != "" {
		return
	}
	for _, k := range []string{"KERF_BUNDLE", "KERF_VIA", "KERF_DEVICES", "KERF_MEMORY"} {
		os.Unsetenv(k)
	}
}
