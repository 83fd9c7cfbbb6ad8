package appliance

import (
	"bytes"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
)

// nvidiaDriverInstalled reports whether the dynamic linker knows a
// libcuda.so.1 (on CI, Debian's libcuda1: NVIDIA's driver, no GPU).
func nvidiaDriverInstalled(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("/sbin/ldconfig", "-p").Output()
	return err == nil && bytes.Contains(out, []byte("libcuda.so.1 "))
}

// TestAutoBackendWithoutGPU starts the backend as kerfd does with
// gpu.backend: auto on a machine without an NVIDIA GPU: kerfd serves the
// emulator, and says why in one warning. Where NVIDIA's driver is
// installed (CI installs Debian's libcuda1), the reason is cuInit's
// CUDA_ERROR_NO_DEVICE.
func TestAutoBackendWithoutGPU(t *testing.T) {
	cfg, err := LoadConfig("", []string{"KERF_GPU__BACKEND=auto", "KERF_GPU__EMULATED__MEMORY=1GiB"})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b, nv, kind, err := selectBackend(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if kind == "cuda" {
		nv.Close()
		t.Skipf("this machine has an NVIDIA GPU: %+v", b.Devices())
	}
	if kind != "emulated" || nv != nil || len(b.Devices()) == 0 || !b.Devices()[0].Emulated {
		t.Fatalf("kind %q, nvml %v, devices %+v", kind, nv, b.Devices())
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "serving the EMULATED GPU") {
		t.Fatalf("want one warning, got:\n%s", logs.String())
	}
	want := "no NVIDIA driver"
	if nvidiaDriverInstalled(t) {
		want = "CUDA_ERROR_NO_DEVICE"
	}
	if !strings.Contains(lines[0], want) {
		t.Fatalf("warning %q does not say %q", lines[0], want)
	}
	t.Log(lines[0])
}
