package nvml

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/kerf-edge/kerf/appliance"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/internal/tenantkit"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/transport"
)

// The tests run a real kerfd (in this process, tenants in worker
// processes that re-execute this binary) on two emulated devices.

func TestMain(m *testing.M) {
	if appliance.IsWorker() {
		os.Exit(appliance.RunWorker())
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

type kerfd struct {
	a   *appliance.Appliance
	dir string
}

func startKerfd(t *testing.T) *kerfd {
	t.Helper()
	dir := t.TempDir()
	cfg, err := appliance.LoadConfig("", []string{
		"KERF_STATE_DIR=" + dir,
		"KERF_LISTEN__QUIC=127.0.0.1:0",
		"KERF_LISTEN__HTTP=",
		"KERF_GPU__BACKEND=emulated",
		"KERF_GPU__EMULATED__MEMORY=256MiB",
		"KERF_GPU__EMULATED__DEVICES=2",
		"KERF_SLICER__PROFILE=mixed-2x25-5x10",
		"KERF_INGEST__ENABLED=false",
	})
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
	k := &kerfd{a: a, dir: dir}
	testkit.WaitFor(t, "kerfd's socket", func() bool { return fileExists(k.socket()) })
	return k
}

func (k *kerfd) socket() string { return filepath.Join(k.dir, "kerf.sock") }

// bundle issues a token for tenant and returns its bundle's path.
func (k *kerfd) bundle(t *testing.T, tenant string) string {
	t.Helper()
	p, err := k.a.IssueBundle(tenant, 0, filepath.Join(k.dir, tenant+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lease holds a quarter-GPU slice for tenant's bundle until the test ends.
func (k *kerfd) lease(t *testing.T, token string) *transport.LeaseHolder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	l, err := transport.OpenLeaseUnix(ctx, k.socket(), transport.Options{Token: []byte(token), Name: "test"},
		transport.AllocRequest{Count: 1, Fraction: 0.25, Device: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func wantReturn(t *testing.T, what string, got, want Return) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

// TestLibraryAnswersFromTheLease drives the library's logic as nvmlInit
// does, from kerf run's environment, over both paths, while a session of
// the lease (this process) holds memory and runs kernels.
func TestLibraryAnswersFromTheLease(t *testing.T) {
	k := startKerfd(t)
	for _, via := range []string{"unix", "quic"} {
		t.Run(via, func(t *testing.T) {
			tenant := "nora-" + via
			bundle := k.bundle(t, tenant)
			token := readToken(t, bundle)
			l := k.lease(t, token)
			slice := l.Slices[0]
			t.Setenv(kerfenv.Bundle, bundle)
			t.Setenv(kerfenv.Lease, l.ID)
			t.Setenv(kerfenv.Via, via)
			t.Setenv(kerfenv.Server, k.a.QUICAddr())

			lib := &library{open: openFromEnv}
			wantReturn(t, "a query before nvmlInit", second(lib.deviceCount()), gonvml.ERROR_UNINITIALIZED)
			wantReturn(t, "nvmlInit", lib.initialize(), gonvml.SUCCESS)
			wantReturn(t, "a second nvmlInit", lib.initialize(), gonvml.SUCCESS)
			if n, r := lib.deviceCount(); r != gonvml.SUCCESS || n != 1 {
				t.Fatalf("device count %d, %v", n, r)
			}
			d, r := lib.device(0)
			gpu := k.a.Node().GPUs()[slice.Device]
			if r != gonvml.SUCCESS || d.Device != slice.Device || d.Name != gpu.Name || d.PCI.Bus != slice.Device+1 {
				t.Fatalf("device 0: %+v, %v; the lease's slice is on %+v", d, r, gpu)
			}
			if i, r := lib.byUUID(formatUUID(d.UUID)); r != gonvml.SUCCESS || i != 0 {
				t.Fatalf("by UUID: %d, %v", i, r)
			}
			id, legacy := busID(d)
			for _, bus := range []string{id, legacy} {
				if i, r := lib.byPCI(bus); r != gonvml.SUCCESS || i != 0 {
					t.Fatalf("by PCI bus ID %s: %d, %v", bus, i, r)
				}
			}
			if v, r := lib.driverVersionText(); r != gonvml.SUCCESS || v != "12.4" {
				t.Fatalf("driver version %q, %v", v, r)
			}

			// A program of the lease: a session holding 8 MiB and running
			// kernels, as seen by kerfd's worker.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			c, err := transport.DialUnix(ctx, k.socket(), transport.Options{Token: []byte(token), Lease: l.ID, Device: slice.Device, Name: "program"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.MemAlloc(8 << 20); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, "this process and its memory in the process list", func() bool {
				procs, r := lib.processes(0)
				return r == gonvml.SUCCESS && slices.ContainsFunc(procs, func(p gonvml.ProcessInfo) bool {
					return int(p.Pid) == os.Getpid() && p.UsedGpuMemory >= 8<<20
				})
			})
			m, r := lib.memory(0)
			if r != gonvml.SUCCESS || m.Total != slice.Memory || m.Used < 8<<20 || m.Used+m.Free != m.Total || m.Version != memoryV2 {
				t.Fatalf("memory %+v, %v; the slice has %d bytes", m, r, slice.Memory)
			}
			matmul, err := tenantkit.NewMatmul(c, 64)
			if err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, "the slice's utilization to show its kernels", func() bool {
				if err := matmul(); err != nil {
					t.Fatal(err)
				}
				if err := c.Synchronize(); err != nil {
					t.Fatal(err)
				}
				u, r := lib.utilization(0)
				if r != gonvml.SUCCESS || u.Gpu > 100 {
					t.Fatalf("utilization %+v, %v", u, r)
				}
				return u.Gpu > 0
			})

			wantReturn(t, "nvmlShutdown", lib.shutdown(), gonvml.SUCCESS)
			if _, r := lib.memory(0); r != gonvml.SUCCESS {
				t.Fatalf("a query after one of two shutdowns: %v", r)
			}
			wantReturn(t, "the last nvmlShutdown", lib.shutdown(), gonvml.SUCCESS)
			wantReturn(t, "a third nvmlShutdown", lib.shutdown(), gonvml.ERROR_UNINITIALIZED)
			wantReturn(t, "a query after shutdown", second(lib.memory(0)), gonvml.ERROR_UNINITIALIZED)
		})
	}
}

func second[T any](_ T, r Return) Return { return r }

func readToken(t *testing.T, bundle string) string {
	t.Helper()
	b, err := auth.ReadBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return b.Token
}

// TestInitWithoutKerfRun: no bundle, or a lease that is not the tenant's,
// is an nvmlInit error a tool can report.
func TestInitWithoutKerfRun(t *testing.T) {
	k := startKerfd(t)
	t.Setenv(kerfenv.Bundle, "")
	lib := &library{open: openFromEnv}
	wantReturn(t, "nvmlInit without KERF_BUNDLE", lib.initialize(), gonvml.ERROR_DRIVER_NOT_LOADED)

	bundle := k.bundle(t, "oona")
	t.Setenv(kerfenv.Bundle, bundle)
	t.Setenv(kerfenv.Lease, "")
	wantReturn(t, "nvmlInit without KERF_LEASE", lib.initialize(), gonvml.ERROR_DRIVER_NOT_LOADED)

	other := k.lease(t, readToken(t, k.bundle(t, "otto")))
	t.Setenv(kerfenv.Lease, other.ID)
	wantReturn(t, "nvmlInit on another tenant's lease", lib.initialize(), gonvml.ERROR_NO_PERMISSION)
	wantReturn(t, "nvmlShutdown after failed inits", lib.shutdown(), gonvml.ERROR_UNINITIALIZED)
}

// TestQueriesRaceShutdown runs queries on many goroutines while others
// initialise and shut down, under the race detector.
func TestQueriesRaceShutdown(t *testing.T) {
	k := startKerfd(t)
	bundle := k.bundle(t, "pam")
	l := k.lease(t, readToken(t, bundle))
	t.Setenv(kerfenv.Bundle, bundle)
	t.Setenv(kerfenv.Lease, l.ID)
	lib := &library{open: openFromEnv}
	wantReturn(t, "nvmlInit", lib.initialize(), gonvml.SUCCESS)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				switch g % 4 {
				case 0:
					if lib.initialize() == gonvml.SUCCESS {
						lib.shutdown()
					}
				case 1:
					_, r := lib.memory(0)
					checkQuery(t, r)
				case 2:
					_, r := lib.processes(0)
					checkQuery(t, r)
				case 3:
					_, r := lib.utilization(0)
					checkQuery(t, r)
				}
			}
		}()
	}
	wg.Wait()
	wantReturn(t, "nvmlShutdown", lib.shutdown(), gonvml.SUCCESS)
}

func checkQuery(t *testing.T, r Return) {
	if r != gonvml.SUCCESS {
		t.Errorf("query: %v", r)
	}
}

func TestBusIDs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want pciAddress
		ok   bool
	}{
		{"00000000:3b:00.0", pciAddress{0, 0x3b, 0}, true},
		{"0001:3B:1f.0", pciAddress{1, 0x3b, 0x1f}, true},
		{"02:00.0", pciAddress{0, 2, 0}, true},
		{" 0000:02:00.0 ", pciAddress{0, 2, 0}, true},
		{"0000:02:00", pciAddress{}, false},
		{"0000:zz:00.0", pciAddress{}, false},
		{"0:0:0:0.0", pciAddress{}, false},
		{"-1:02:00.0", pciAddress{}, false},
		{"", pciAddress{}, false},
	} {
		got, ok := parseBusID(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("parseBusID(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	if got := formatUUID([16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}); got != "GPU-deadbeef-0102-0304-0506-0708090a0b0c" {
		t.Errorf("formatUUID = %s", got)
	}
}
