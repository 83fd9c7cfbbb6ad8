package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/appliance"
	"github.com/kerf-edge/kerf/intercept/launcher"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// The end-to-end tests build the shim with -buildmode=c-shared, compile
// the C programs in testdata against it, and run them against a real
// kerfd (in this process) serving two emulated devices.

var (
	binDir   string // the shim and the compiled programs
	buildErr error
)

// programs are the C test programs; dlopen is not linked against the shim.
var programs = []string{"vadd", "matmul", "streams", "memlimit", "errors", "twodev", "oob", "leak", "procaddr", "dlopen", "hold", "fatbin", "primary"}

func TestMain(m *testing.M) {
	if appliance.IsWorker() {
		os.Exit(appliance.RunWorker()) // this binary serves kerfd's tenant workers
	}
	if dir := os.Getenv(childBinDirEnv); dir != "" {
		binDir = dir // a child test process: the parent built everything
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "kerf-shim-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	buildErr = build(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	// Not with -race: ThreadSanitizer cannot map its shadow memory inside
	// a shared library here. The Go logic runs under the race detector in
	// TestDriverConcurrency instead.
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", filepath.Join(dir, "libcuda.so.1"), ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the shim: %v\n%s", err, out)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(programs))
	for i, p := range programs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"-O1", "-Wall", "-Werror", "-I../abi/include", "-Itestdata", "-o", filepath.Join(dir, p), filepath.Join("testdata", p+".c")}
			if p == "dlopen" {
				args = append(args, "-ldl")
			} else {
				args = append(args, "-L"+dir, "-l:libcuda.so.1", "-lpthread", "-lm")
			}
			if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("gcc %s: %v\n%s", p, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// kerfd is an appliance serving two emulated devices until the test ends.
type kerfd struct {
	a   *appliance.Appliance
	dir string
}

// startKerfd starts kerfd with overrides (KERF_* settings) applied last.
func startKerfd(t *testing.T, overrides ...string) *kerfd {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	dir := t.TempDir()
	cfg, err := appliance.LoadConfig("", append([]string{
		"KERF_STATE_DIR=" + dir,
		"KERF_LISTEN__QUIC=127.0.0.1:0",
		"KERF_LISTEN__HTTP=",
		"KERF_GPU__BACKEND=emulated",
		"KERF_GPU__EMULATED__MEMORY=256MiB",
		"KERF_GPU__EMULATED__DEVICES=2",
		"KERF_SLICER__PROFILE=uniform-20", // 20 programs run at once
		"KERF_INGEST__ENABLED=false",
	}, overrides...))
	if err != nil {
		t.Fatal(err)
	}
	a, err := appliance.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kerfd: %v", err)
		}
	})
	return &kerfd{a: a, dir: dir}
}

// bundle issues a token for tenant and returns its bundle's path.
func (k *kerfd) bundle(t *testing.T, tenant string) string {
	t.Helper()
	p, err := k.a.IssueBundle(tenant, 0, filepath.Join(k.dir, tenant+".json"))
	if err != nil {
		t.Fatal(err)
	}
	// Run may not have created the socket yet.
	testkit.WaitFor(t, "kerfd's socket", func() bool { return fileExists(filepath.Join(k.dir, "kerf.sock")) })
	return p
}

func ptx(name string) string {
	p, _ := filepath.Abs(filepath.Join("..", "gpu", "emu", "kernels", name+".ptx"))
	return p
}

// run runs program with env (KERF_* and arguments) and returns its output.
func run(t *testing.T, env []string, program string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, program), args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KERF_") && !strings.HasPrefix(e, "LD_LIBRARY_PATH=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, "LD_LIBRARY_PATH="+binDir)
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustRun(t *testing.T, env []string, program string, args ...string) {
	t.Helper()
	start := time.Now()
	out, err := run(t, env, program, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", program, env, err, out)
	}
	t.Logf("%s: %s (%v)", program, strings.TrimSpace(out), time.Since(start).Round(time.Millisecond))
}

// kerfRun runs program through `kerf run` (the launcher, in process):
// it leases gpus slices of the appliance, a fraction each or memory bytes,
// and runs the program in them.
func kerfRun(t *testing.T, bundle, via string, gpus int, memory uint64, program string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	runUnderKerf(t, &out, &out, bundle, via, gpus, memory, program, args...)
}

// kerfRunOutput is kerfRun returning what the program wrote to stdout.
func kerfRunOutput(t *testing.T, bundle, via string, gpus int, memory uint64, program string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	runUnderKerf(t, &stdout, &stderr, bundle, via, gpus, memory, program, args...)
	return stdout.String()
}

func runUnderKerf(t *testing.T, stdout, stderr *bytes.Buffer, bundle, via string, gpus int, memory uint64, program string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := launcher.Options{GPUs: gpus, Bundle: bundle, Via: via, Timeout: 30 * time.Second, ShimDir: binDir, Stdout: stdout, Stderr: stderr}
	if memory != 0 {
		o.Memory = memory
	} else {
		o.Fraction = 0.05
	}
	start := time.Now()
	code, err := launcher.Run(ctx, o, append([]string{filepath.Join(binDir, program)}, args...))
	if err != nil || code != 0 {
		t.Fatalf("kerf run %s over %s: exit %d, %v\n%s%s", program, via, code, err, stdout.String(), stderr.String())
	}
	t.Logf("%s: %s (%v)", program, strings.TrimSpace(stdout.String()+stderr.String()), time.Since(start).Round(time.Millisecond))
}

var vias = []string{"unix", "quic"}

func TestPrograms(t *testing.T) {
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	cases := []struct {
		program string
		args    []string
	}{
		{"vadd", []string{ptx("vadd"), ptx("stencil")}},
		{"matmul", []string{ptx("matmul")}},
		{"streams", []string{ptx("vadd")}},
		{"errors", []string{ptx("vadd")}},
		{"procaddr", []string{ptx("vadd")}},
		{"dlopen", []string{"run"}},
	}
	for _, via := range vias {
		t.Run(via, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.program, func(t *testing.T) {
					t.Parallel()
					kerfRun(t, b, via, 1, 0, c.program, c.args...)
				})
			}
		})
	}
}

func TestMemoryLimit(t *testing.T) {
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	for _, via := range vias {
		t.Run(via, func(t *testing.T) {
			kerfRun(t, b, via, 1, 4<<20, "memlimit", "4194304")
		})
	}
}

func TestTwoDevices(t *testing.T) {
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	for _, via := range vias {
		t.Run(via, func(t *testing.T) {
			kerfRun(t, b, via, 2, 0, "twodev", ptx("vadd"))
		})
	}
	// The default picks the local path when the socket is here.
	mustRun(t, []string{"KERF_BUNDLE=" + b, "KERF_DEVICES=1"}, "dlopen", "run")
}

// Inside a two-GPU slice set, CUDA_VISIBLE_DEVICES picks one, as CUDA
// users expect: vadd insists on seeing exactly one device.
func TestVisibleDevicesWithinTheSliceSet(t *testing.T) {
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	t.Setenv("CUDA_VISIBLE_DEVICES", "1")
	kerfRun(t, b, "unix", 2, 0, "vadd", ptx("vadd"), ptx("stencil"))
}

// One tenant's illegal address is that tenant's alone.
func TestIllegalAddressIsolated(t *testing.T) {
	k := startKerfd(t)
	alice, bob := k.bundle(t, "alice"), k.bundle(t, "bob")
	for _, via := range vias {
		t.Run(via, func(t *testing.T) {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				kerfRun(t, alice, via, 1, 0, "oob", ptx("oob"))
			}()
			go func() {
				defer wg.Done()
				kerfRun(t, bob, via, 1, 0, "vadd", ptx("vadd"))
			}()
			wg.Wait()
		})
	}
}

// The last release of a device's primary context destroys it: its memory
// is freed and returned to the slice, and the next retain gets a fresh
// context (testdata/primary.c).
func TestPrimaryContextRelease(t *testing.T) {
	k := startKerfd(t)
	for _, via := range vias {
		t.Run(via, func(t *testing.T) {
			// A tenant per path: the last run's lease may still be on
			// its way back when the next one asks for a whole GPU.
			kerfRun(t, k.bundle(t, "primary-"+via), via, 1, 256<<20, "primary")
		})
	}
}

// A program that exits holding memory, a module and queued work leaves
// nothing behind on the server: its session, its worker process and the
// memory the worker held are gone.
func TestExitFreesEverything(t *testing.T) {
	k := startKerfd(t)
	b := k.bundle(t, "alice")
	for _, via := range vias {
		t.Run(via, func(t *testing.T) {
			kerfRun(t, b, via, 1, 0, "leak", ptx("vadd"))
			testkit.WaitFor(t, "the tenant's session and worker to end", func() bool { return len(k.a.Sessions()) == 0 })
		})
	}
}

func TestMissingBundle(t *testing.T) {
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	out, err := run(t, nil, "dlopen", "noinit")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "KERF_BUNDLE is not set") || strings.Count(out, "kerf:") != 1 {
		t.Fatalf("stderr does not explain in one line:\n%s", out)
	}
	out, err = run(t, []string{"KERF_BUNDLE=/nonexistent/bundle.json"}, "dlopen", "noinit")
	if err != nil || !strings.Contains(out, "KERF_BUNDLE") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// A tenant program killed with SIGKILL, holding memory, leaves nothing on
// the server: its session, worker and lease are gone from what the API
// reports. Over QUIC the server notices by the connection's idle timeout.
func TestKilledProgramLeavesNothing(t *testing.T) {
	k := startKerfd(t)
	b := k.bundle(t, "mallory")
	for _, via := range vias {
		t.Run(via, func(t *testing.T) {
			out := &testkit.SyncBuffer{}
			done := make(chan int, 1)
			go func() {
				code, _ := launcher.Run(context.Background(), launcher.Options{GPUs: 1, Fraction: 0.05, Bundle: b, Via: via,
					Timeout: 30 * time.Second, ShimDir: binDir, Stdout: out, Stderr: out}, []string{filepath.Join(binDir, "hold")})
				done <- code
			}()
			var pid int
			testkit.WaitFor(t, "the program to hold its memory", func() bool {
				_, err := fmt.Sscanf(out.String(), "holding pid %d", &pid)
				return err == nil
			})
			held := func() uint64 {
				var n uint64
				for _, tn := range k.a.Sessions() {
					n += tn.MemUsed
				}
				return n
			}
			testkit.WaitFor(t, "the server to report the held memory", func() bool { return held() >= 8<<20 })
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if code := <-done; code != 128+int(syscall.SIGKILL) {
				t.Fatalf("kerf run exited %d", code)
			}
			testkit.WaitForWithin(t, 30*time.Second, "the killed tenant's session, worker and memory to go", func() bool {
				return len(k.a.Sessions()) == 0
			})
		})
	}
}
