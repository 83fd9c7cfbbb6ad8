package appliance

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
	"github.com/kerf-edge/kerf/internal/tenantkit"
	"github.com/kerf-edge/kerf/transport"
)

func testConfig(t *testing.T, dir string) Config {
	t.Helper()
	cfg, err := LoadConfig("", []string{
		"KERF_STATE_DIR=" + dir,
		"KERF_LISTEN__QUIC=127.0.0.1:0",
		"KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__EMULATED__MEMORY=1GiB",
		"KERF_GPU__BACKEND=emulated",
		"KERF_INGEST__ENABLED=false",
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs an appliance until the test ends.
func start(t *testing.T, cfg Config) *Appliance {
	t.Helper()
	return startLogged(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startLogged runs an appliance that logs to log until the test ends.
func startLogged(t *testing.T, cfg Config, log *slog.Logger) *Appliance {
	t.Helper()
	a, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	waitHTTP(t, "http://"+a.HTTPAddr()+"/healthz")
	return a
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", url, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func f32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// runVadd runs the vadd kernel through a tenant session and checks it.
func runVadd(t *testing.T, c *transport.Client, n int) {
	t.Helper()
	mod, err := c.ModuleLoad(kernels.PTX("vadd"))
	if err != nil {
		t.Fatalf("module load: %v", err)
	}
	fn, err := c.ModuleGetFunction(mod, "vadd")
	if err != nil {
		t.Fatal(err)
	}
	layout, err := c.FuncParams(fn)
	if err != nil || len(layout) != 4 {
		t.Fatalf("param layout %v, %v", layout, err)
	}
	a, b := make([]float32, n), make([]float32, n)
	for i := range a {
		a[i], b[i] = float32(i)*0.5, float32(n-i)
	}
	var ptrs [3]uint64
	for i := range ptrs {
		if ptrs[i], err = c.MemAlloc(uint64(4 * n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.MemcpyHtoD(ptrs[0], tenantkit.F32Bytes(a)); err != nil {
		t.Fatal(err)
	}
	if err := c.MemcpyHtoD(ptrs[1], tenantkit.F32Bytes(b)); err != nil {
		t.Fatal(err)
	}
	params := make([]byte, layout[3].Offset+layout[3].Size)
	for i := range ptrs {
		binary.LittleEndian.PutUint64(params[layout[i].Offset:], ptrs[i])
	}
	binary.LittleEndian.PutUint32(params[layout[3].Offset:], uint32(n))
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: uint32((n + 127) / 128), Y: 1, Z: 1}, Block: abi.Dim3{X: 128, Y: 1, Z: 1}}
	if err := c.LaunchKernel(fn, cfg, 0, params); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4*n)
	if err := c.MemcpyDtoH(out, ptrs[2]); err != nil {
		t.Fatal(err)
	}
	for i, v := range f32s(out) {
		if v != a[i]+b[i] {
			t.Fatalf("c[%d] = %v, want %v", i, v, a[i]+b[i])
		}
	}
}

func TestApplianceServesKernelsOverBothPaths(t *testing.T) {
	dir := t.TempDir()
	a := start(t, testConfig(t, dir))
	b, err := auth.ReadBundle(filepath.Join(dir, "bundles", "default.json"))
	if err != nil {
		t.Fatalf("first-start bundle: %v", err)
	}
	fp, err := transport.ParseFingerprint(b.Fingerprint)
	if err != nil || fp != a.Fingerprint() {
		t.Fatalf("bundle fingerprint %q, appliance %s", b.Fingerprint, a.Fingerprint())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := transport.Options{Token: []byte(b.Token)}
	local, err := transport.DialUnix(ctx, b.Socket, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	remote, err := transport.DialQUIC(ctx, b.QUIC, transport.QUICOptions{Options: opts, Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	for name, c := range map[string]*transport.Client{"unix": local, "quic": remote} {
		t.Run(name, func(t *testing.T) {
			if !c.Device.Emulated {
				t.Fatal("emulated device not reported as emulated")
			}
			runVadd(t, c, 1000+37)
		})
	}
	// Readiness says plainly what serves.
	resp, err := http.Get("http://" + a.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct {
		Backend  string `json:"backend"`
		Sessions int    `json:"sessions"`
		Devices  []struct {
			Emulated bool `json:"emulated"`
		} `json:"devices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	if ready.Backend != "emulated" || len(ready.Devices) != 1 || !ready.Devices[0].Emulated || ready.Sessions != 2 {
		t.Fatalf("readyz = %+v", ready)
	}
}

func TestIdentityAndTokensSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	first, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	fp := first.Fingerprint()
	path, err := first.IssueBundle("tenant-a", 1<<20, "")
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	a := start(t, cfg)
	if a.Fingerprint() != fp {
		t.Fatal("certificate changed across a restart")
	}
	b, err := auth.ReadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := transport.DialUnix(ctx, b.Socket, transport.Options{Token: []byte(b.Token)})
	if err != nil {
		t.Fatalf("token issued before the restart: %v", err)
	}
	defer c.Close()
	if c.Device.TotalMem != 1<<20 {
		t.Fatalf("slice memory %d, token limit 1 MiB", c.Device.TotalMem)
	}
	if _, err := c.MemAlloc(2 << 20); abi.ResultOf(err) != abi.ErrOutOfMemory {
		t.Fatalf("allocation beyond the token's limit: %v", err)
	}
	// Revoking from another process ends the live session.
	if _, err := RevokeOffline(cfg, "tenant-a"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Err() == nil {
		c.MemGetInfo() // each handshake elsewhere or call here lets the server notice
		if _, err := transport.DialUnix(ctx, b.Socket, transport.Options{Token: []byte(b.Token)}); err == nil {
			t.Fatal("revoked token accepted")
		}
		if time.Now().After(deadline) {
			t.Fatal("revoked tenant's session still open")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// KERF_* variables that are not configuration keys (the CLI's KERF_API,
// the shim's KERF_BUNDLE) do not disturb kerfd's configuration.
func TestConfigIgnoresOtherKerfVariables(t *testing.T) {
	cfg, err := LoadConfig("", []string{"KERF_API=http://127.0.0.1:7080", "KERF_BUNDLE=/x.json", "KERF_ADMIN_TOKEN=kerfadm_x",
		"KERF_INGEST=yes", "KERF_LOG__LEVEL=debug"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "debug" || cfg.API.MaxBody != "1MiB" || !cfg.Ingest.Enabled || cfg.GPU.Emulated.Name != "Kerf Emulated GPU" {
		t.Fatalf("config %+v", cfg)
	}
}

// The emulated device's name, memory and SM count are configurable, and
// the name always says it is emulated.
func TestEmulatedDeviceIsConfigurable(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.GPU.Emulated.Name, cfg.GPU.Emulated.Memory, cfg.GPU.Emulated.SMs = "Line 2 GPU", "2GiB", 4
	b, kind, err := newBackend(cfg, slog.New(slog.DiscardHandler))
	if err != nil || kind != "emulated" {
		t.Fatal(kind, err)
	}
	d := b.Devices()[0]
	if d.Name != "Line 2 GPU (Emulated)" || d.TotalMem != 2<<30 || d.SMs != 4 || !d.Emulated {
		t.Fatalf("device %+v", d)
	}
}

func TestConfigRejectsNonsense(t *testing.T) {
	for _, env := range [][]string{
		{"KERF_GPU__BACKEND=quantum"},
		{"KERF_GPU__EMULATED__MEMORY=lots"},
		{"KERF_GPU__EMULATED__DEVICES=0"},
		{"KERF_LOG__LEVEL=chatty"},
	} {
		if _, err := LoadConfig("", env); err == nil {
			t.Errorf("%v accepted", env)
		}
	}
}
