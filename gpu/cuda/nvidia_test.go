//go:build cgo

package cuda

// Tests against NVIDIA's own libcuda.so.1 (Debian's libcuda1, which
// installs without a GPU; CI installs it). Without a GPU the driver loads,
// resolves every entry point and answers cuInit with
// CUDA_ERROR_NO_DEVICE, which New must turn into ErrNoDevice. The driver
// table is process-wide, so the test runs in a child test process.

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

const nvidiaChildEnv = "KERF_CUDA_NVIDIA_CHILD"

func TestNVIDIADriver(t *testing.T) {
	if os.Getenv(nvidiaChildEnv) != "" {
		t.Skip("in the child")
	}
	const child = "TestNVIDIADriverChild"
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.v")
	cmd.Env = append(os.Environ(), nvidiaChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+child) {
		if i := strings.Index(string(out), "--- SKIP: "+child); i >= 0 {
			t.Skipf("%s", out[i:])
		}
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// symbolSince is the CUDA version that introduced e's driver symbol name.
func symbolSince(e *abi.EntryPoint, name string) int {
	for _, v := range e.Versions {
		if e.Name+v.Suffix == name {
			return v.Since
		}
	}
	return e.Since
}

// expectedSymbol is the symbol a driver of CUDA version v gives e: the
// newest of e's driver symbols that v has, or "" if none.
func expectedSymbol(e *abi.EntryPoint, v int) string {
	for _, name := range e.DriverSymbols() {
		if symbolSince(e, name) <= v {
			return name
		}
	}
	return ""
}

func TestNVIDIADriverChild(t *testing.T) {
	if os.Getenv(nvidiaChildEnv) == "" {
		t.Skip("run by TestNVIDIADriver")
	}
	var logs bytes.Buffer
	b, err := New(Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	switch {
	case err == nil:
		t.Logf("NVIDIA driver, CUDA %s, devices %+v (gpu_test.go exercises them)", versionString(b.DriverVersion()), b.Devices())
	case errors.Is(err, ErrNoDriver) && strings.Contains(err.Error(), "cannot load"):
		t.Skipf("NVIDIA's libcuda.so.1 is not installed (Debian: apt-get install libcuda1, from contrib non-free): %v", err)
	case errors.Is(err, ErrNoDriver) && strings.Contains(err.Error(), "client shim"):
		t.Skipf("libcuda.so.1 is Kerf's own shim, not NVIDIA's driver: %v", err)
	case errors.Is(err, ErrNoDevice):
		// No GPU: one line naming the driver's version and cuInit's result.
		msg := err.Error()
		t.Logf("without a GPU: %s", msg)
		for _, want := range []string{"no CUDA device", "found no GPU", "cuInit", "CUDA_ERROR_NO_DEVICE"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q lacks %q", msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%q is more than one line", msg)
		}
	default:
		t.Fatalf("New: %v", err)
	}
	if logs.Len() != 0 {
		t.Errorf("New logged %q", logs.String())
	}
	// Resolve the whole table again (a refused driver was closed) and
	// check each entry point got the newest symbol the driver's version has.
	if b == nil {
		if msg, _ := dlOpen(DefaultLibrary, bootstrapSymbols, 0); msg != "" {
			t.Fatal(msg)
		}
	}
	v, r := driverVersion()
	if r != 0 || v < MinDriverVersion {
		t.Fatalf("cuDriverGetVersion: %d, %d", v, r)
	}
	if msg, missing := dlOpen(DefaultLibrary, -1, v); msg != "" {
		t.Fatalf("resolving the table on CUDA %s: %s (missing %v)", versionString(v), msg, missing)
	}
	for _, s := range driverSymbols() {
		e := abi.LookupEntryPoint(s.name)
		if e == nil {
			t.Fatalf("%s is no entry point", s.name)
		}
		if want := expectedSymbol(e, v); s.resolved != want {
			t.Errorf("%s resolved as %q on CUDA %s, want %q", s.name, s.resolved, versionString(v), want)
		}
	}
	if got, want := haveParamInfo(), v >= 12040; got != want {
		t.Errorf("cuFuncGetParamInfo present %v on CUDA %s", got, versionString(v))
	}
	t.Logf("CUDA %s: %d entry points resolved; kernel layouts from %s", versionString(v), len(driverSymbols()),
		map[bool]string{true: "cuFuncGetParamInfo", false: "module images"}[haveParamInfo()])
}
