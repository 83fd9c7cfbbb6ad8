package appliance

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
	"github.com/kerf-edge/kerf/transport"
)

// testTenantEnv makes the test binary a tenant program:
// "via:action:bundle", action "copy" (copies both ways for ever) or
// "kernel" (waits on a grid of empty blocks that would run for hours).
// It prints "busy" once it is in the middle of its work.
const testTenantEnv = "APPLIANCE_TEST_TENANT"

// workerExitTriesEnv sets how many times TestWorkerEndsWithTenant kills
// a tenant per case (default 3); scripts/worker-exit.sh sets 100.
const workerExitTriesEnv = "WORKER_EXIT_TRIES"

// stopDeadline is how soon after its tenant was killed, and after kerfd
// learns of it, a worker must be gone (the product's figure is 1 s; CI
// machines are slow). A killed QUIC tenant sends nothing more: kerfd
// learns of it from the "port unreachable" its next packet, a keep-alive
// at the latest, gets back; the idle timeout (15 s) would be too late.
const stopDeadline = 3 * time.Second

func runTestTenant(spec string) int {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad tenant spec", spec)
		return 2
	}
	via, action, bundle := parts[0], parts[1], parts[2]
	if err := testTenant(via, action, bundle); err != nil {
		fmt.Fprintln(os.Stderr, "tenant:", err)
		return 1
	}
	return 0
}

func testTenant(via, action, bundle string) error {
	b, err := auth.ReadBundle(bundle)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := transport.Options{Token: []byte(b.Token), Name: "killed", Lease: os.Getenv("APPLIANCE_TEST_LEASE")}
	var c *transport.Client
	if via == "unix" {
		c, err = transport.DialUnix(ctx, b.Socket, opts)
	} else {
		fp, _ := transport.ParseFingerprint(b.Fingerprint)
		c, err = transport.DialQUIC(ctx, b.QUIC, transport.QUICOptions{Options: opts, Fingerprint: fp})
	}
	if err != nil {
		return err
	}
	switch action {
	case "copy":
		buf := make([]byte, 32<<20)
		p, err := c.MemAlloc(uint64(len(buf)))
		if err != nil {
			return err
		}
		for i := 0; ; i++ {
			if err := c.MemcpyHtoD(p, buf); err != nil {
				return err
			}
			if err := c.MemcpyDtoH(buf, p); err != nil {
				return err
			}
			if i == 0 {
				fmt.Println("busy")
			}
		}
	case "kernel":
		mod, err := c.ModuleLoad(kernels.PTX("vadd"))
		if err != nil {
			return err
		}
		fn, err := c.ModuleGetFunction(mod, "vadd")
		if err != nil {
			return err
		}
		layout, err := c.FuncParams(fn)
		if err != nil {
			return err
		}
		last := layout[len(layout)-1]
		params := make([]byte, last.Offset+last.Size) // n = 0: every block returns at once
		cfg := abi.LaunchConfig{Grid: abi.Dim3{X: 1<<31 - 1, Y: 65535, Z: 1}, Block: abi.Dim3{X: 32, Y: 1, Z: 1}}
		if err := c.LaunchKernel(fn, cfg, 0, params); err != nil {
			return err
		}
		if _, _, err := c.MemGetInfo(); err != nil { // the launch is on its way
			return err
		}
		fmt.Println("busy")
		return c.Synchronize()
	}
	return fmt.Errorf("unknown action %q", action)
}

// tenantProc is a tenant program the test can kill.
type tenantProc struct {
	cmd  *exec.Cmd
	busy chan struct{}
}

// startTenant runs the test binary as a tenant of a, named name, and
// waits until it is busy.
func startTenant(t *testing.T, a *Appliance, name, via, action string, env ...string) *tenantProc {
	t.Helper()
	bundle, err := a.IssueBundle(name, 0, filepath.Join(t.TempDir(), name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), testTenantEnv+"="+via+":"+action+":"+bundle), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &tenantProc{cmd: cmd, busy: make(chan struct{})}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "busy" {
				close(p.busy)
			}
		}
	}()
	select {
	case <-p.busy:
	case <-time.After(30 * time.Second):
		t.Fatalf("tenant %s never got busy", name)
	}
	return p
}

// workerGone reports whether pid has exited and kerfd has let go of it.
func workerGone(a *Appliance, pid int) bool {
	for _, s := range a.Sessions() {
		if s.Worker == pid {
			return false
		}
	}
	return syscall.Kill(pid, 0) != nil
}

// checkViewsAgree fails t unless the API's slices and tenants tell the
// same story: a tenant with sessions holds a slice, and a held slice's
// tenant is listed.
func checkViewsAgree(t *testing.T, a *Appliance) {
	t.Helper()
	// A killed tenant's session and its lease end as two events (the
	// worker's connection, the launcher's); the views agree once both land.
	var diffs []string
	deadline := time.Now().Add(5 * time.Second)
	for diffs = viewDisagreements(a); len(diffs) > 0 && time.Now().Before(deadline); diffs = viewDisagreements(a) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range diffs {
		t.Error(d)
	}
}

// viewDisagreements lists where /v1/slices and /v1/tenants disagree.
func viewDisagreements(a *Appliance) []string {
	n := a.Node()
	holds := map[string]bool{}
	for _, s := range n.Slices() {
		if s.Tenant != "" {
			holds[s.Tenant] = true
		}
	}
	var diffs []string
	listed := map[string]bool{}
	for _, tn := range n.Tenants() {
		listed[tn.Name] = true
		if tn.Sessions > 0 && !holds[tn.Name] {
			diffs = append(diffs, fmt.Sprintf("/v1/tenants shows %d sessions of %s, /v1/slices no slice of it", tn.Sessions, tn.Name))
		}
		if tn.Sessions == 0 && tn.MemoryLimitBytes == 0 && holds[tn.Name] {
			diffs = append(diffs, fmt.Sprintf("/v1/slices shows a slice of %s, /v1/tenants neither a session nor a limit", tn.Name))
		}
	}
	for name := range holds {
		if !listed[name] {
			diffs = append(diffs, fmt.Sprintf("/v1/slices shows a slice of %s, /v1/tenants does not list it", name))
		}
	}
	return diffs
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

// liveWorker is kerfd's record of worker pid.
func liveWorker(t *testing.T, a *Appliance, pid int) *worker {
	t.Helper()
	a.workers.mu.Lock()
	defer a.workers.mu.Unlock()
	w := a.workers.workers[pid]
	if w == nil {
		t.Fatalf("no worker %d", pid)
	}
	return w
}

func workerExitTries(t *testing.T) int {
	if v := os.Getenv(workerExitTriesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q", workerExitTriesEnv, v)
		}
		return n
	}
	return 3
}

// A tenant killed mid-copy or mid-kernel leaves no worker behind, on
// either path. kerfd learns of a killed local tenant at once (its socket
// hangs up); of a killed QUIC tenant when its next packet to it, a
// keep-alive at the latest, gets "port unreachable" back.
func TestWorkerEndsWithTenant(t *testing.T) {
	tries := workerExitTries(t)
	a := start(t, testConfig(t, t.TempDir()))
	for _, via := range []string{"unix", "quic"} {
		for _, action := range []string{"copy", "kernel"} {
			t.Run(via+"/"+action, func(t *testing.T) {
				deadline := stopDeadline
				var fromKill, fromStop []time.Duration
				for i := range tries {
					name := fmt.Sprintf("%s-%s-%d", via, action, i)
					p := startTenant(t, a, name, via, action)
					pid := workerOf(t, a, name)
					w := liveWorker(t, a, pid)
					if err := p.cmd.Process.Kill(); err != nil {
						t.Fatal(err)
					}
					killed := time.Now()
					for !workerGone(a, pid) {
						if time.Since(killed) > deadline {
							t.Fatalf("try %d: worker %d still there %v after its tenant was killed", i, pid, deadline)
						}
						time.Sleep(5 * time.Millisecond)
					}
					gone := time.Now()
					if !w.stopping() {
						t.Fatalf("try %d: worker %d ended without being told to stop", i, pid)
					}
					if d := gone.Sub(w.stopAt()); d > stopDeadline {
						t.Fatalf("try %d: worker %d gone %v after kerfd told it to stop", i, pid, d)
					}
					fromKill = append(fromKill, gone.Sub(killed))
					fromStop = append(fromStop, gone.Sub(w.stopAt()))
					checkViewsAgree(t, a)
				}
				t.Logf("%s %s: %d tries; worker gone after the kill: median %v, max %v; after kerfd saw the tenant go: median %v, max %v",
					via, action, tries, median(fromKill), slices.Max(fromKill).Round(time.Millisecond),
					median(fromStop), slices.Max(fromStop).Round(time.Millisecond))
			})
		}
	}
}

// Releasing a lease ends the sessions running in it, and its slice is
// free only once their workers are gone.
func TestLeaseReleaseEndsItsWorkers(t *testing.T) {
	a := start(t, testConfig(t, t.TempDir()))
	bundle, err := a.IssueBundle("leaser", 0, filepath.Join(t.TempDir(), "leaser.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := auth.ReadBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lease, err := transport.OpenLeaseUnix(ctx, b.Socket, transport.Options{Token: []byte(b.Token)}, transport.AllocRequest{Count: 1, Fraction: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Close()
	p := startTenant(t, a, "leaser", "unix", "kernel", "APPLIANCE_TEST_LEASE="+lease.ID)
	pid := workerOf(t, a, "leaser")
	held := func() bool {
		for _, s := range a.Node().Slices() {
			if s.Tenant == "leaser" {
				return true
			}
		}
		return false
	}
	if !held() {
		t.Fatal("the lease holds no slice")
	}
	lease.Close()
	released := time.Now()
	for !workerGone(a, pid) || held() {
		if !held() && !workerGone(a, pid) {
			t.Fatalf("the lease's slice is free while its worker %d runs", pid)
		}
		if time.Since(released) > 3*time.Second {
			t.Fatalf("3s after the lease was released: worker gone %v, slice held %v", workerGone(a, pid), held())
		}
		time.Sleep(5 * time.Millisecond)
	}
	checkViewsAgree(t, a)
	if err := p.cmd.Wait(); err == nil {
		t.Fatal("the tenant's Synchronize succeeded on a released lease")
	}
}
