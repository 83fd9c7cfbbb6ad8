package appliance

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/transport"
)

// dialTenant issues a token and opens a session over via.
func dialTenant(t *testing.T, a *Appliance, name, via string) *transport.Client {
	t.Helper()
	path, err := a.IssueBundle(name, 0, filepath.Join(t.TempDir(), name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := auth.ReadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := transport.Options{Token: []byte(b.Token), Name: name}
	var c *transport.Client
	if via == "unix" {
		c, err = transport.DialUnix(ctx, b.Socket, opts)
	} else {
		fp, _ := transport.ParseFingerprint(b.Fingerprint)
		c, err = transport.DialQUIC(ctx, b.QUIC, transport.QUICOptions{Options: opts, Fingerprint: fp})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func workerOf(t *testing.T, a *Appliance, tenant string) int {
	t.Helper()
	for _, s := range a.Sessions() {
		if s.Tenant == tenant {
			return s.Worker
		}
	}
	t.Fatalf("no session of %s", tenant)
	return 0
}

var waitUntil = testkit.WaitFor

func TestEachSessionHasItsOwnWorker(t *testing.T) {
	a := start(t, testConfig(t, t.TempDir()))
	seen := map[int]bool{os.Getpid(): true}
	for _, name := range []string{"a", "b"} {
		for _, via := range []string{"unix", "quic"} {
			dialTenant(t, a, name+via, via)
			pid := workerOf(t, a, name+via)
			if seen[pid] {
				t.Fatalf("session %s%s shares process %d", name, via, pid)
			}
			seen[pid] = true
		}
	}
}

func TestKilledWorkerEndsOnlyItsTenant(t *testing.T) {
	for _, via := range []string{"unix", "quic"} {
		t.Run(via, func(t *testing.T) {
			a := start(t, testConfig(t, t.TempDir()))
			victim := dialTenant(t, a, "victim", via)
			neighbour := dialTenant(t, a, "neighbour", via)
			if _, err := victim.MemAlloc(1 << 20); err != nil {
				t.Fatal(err)
			}
			pid := workerOf(t, a, "victim")
			// The worker dies abruptly, as on a backend fault.
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "victim's session to end", func() bool {
				_, _, err := victim.MemGetInfo()
				return err != nil
			})
			if _, _, err := victim.MemGetInfo(); abi.ResultOf(err) != abi.ErrDeviceUnavailable {
				t.Fatalf("victim's call after its worker died: %v", err)
			}
			runVadd(t, neighbour, 4096+1)
			waitUntil(t, "the dead worker to leave the session list", func() bool { return len(a.Sessions()) == 1 })
			// kerfd itself still admits tenants.
			runVadd(t, dialTenant(t, a, "newcomer", via), 100)
		})
	}
}

func TestIllegalAddressStaysInItsContext(t *testing.T) {
	a := start(t, testConfig(t, t.TempDir()))
	bad := dialTenant(t, a, "bad", "unix")
	good := dialTenant(t, a, "good", "quic")
	mod, err := bad.ModuleLoad(kernels.PTX("oob"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, n := range []string{"oob", "oob_write", "write_far"} {
		if _, err := bad.ModuleGetFunction(mod, n); err == nil {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		t.Fatal("no kernel found in oob.ptx")
	}
	fn, _ := bad.ModuleGetFunction(mod, names[0])
	layout, err := bad.FuncParams(fn)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := bad.MemAlloc(256)
	params := make([]byte, 64)
	for _, l := range layout {
		if l.Size == 8 {
			binary.LittleEndian.PutUint64(params[l.Offset:], p)
		} else {
			binary.LittleEndian.PutUint32(params[l.Offset:], 1<<20)
		}
	}
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: 4, Y: 1, Z: 1}, Block: abi.Dim3{X: 64, Y: 1, Z: 1}}
	if err := bad.LaunchKernel(fn, cfg, 0, params[:layout[len(layout)-1].Offset+layout[len(layout)-1].Size]); err != nil {
		t.Fatal(err)
	}
	if err := bad.Synchronize(); abi.ResultOf(err) != abi.ErrIllegalAddress {
		t.Fatalf("out-of-bounds kernel: %v, want CUDA_ERROR_ILLEGAL_ADDRESS", err)
	}
	// Sticky for the faulting context, as on CUDA.
	if _, err := bad.MemAlloc(64); abi.ResultOf(err) != abi.ErrIllegalAddress {
		t.Fatalf("after the fault: %v", err)
	}
	runVadd(t, good, 2048+3)
}

func TestWorkerExitsWhenTenantLeaves(t *testing.T) {
	a := start(t, testConfig(t, t.TempDir()))
	c := dialTenant(t, a, "leaver", "unix")
	if _, err := c.MemAlloc(8 << 20); err != nil {
		t.Fatal(err)
	}
	pid := workerOf(t, a, "leaver")
	waitUntil(t, "the worker to report its usage", func() bool {
		for _, s := range a.Sessions() {
			if s.MemUsed == 8<<20 {
				return true
			}
		}
		return false
	})
	c.Close() // exits without freeing
	waitUntil(t, "the worker to exit", func() bool { return syscall.Kill(pid, 0) != nil && len(a.Sessions()) == 0 })
}
