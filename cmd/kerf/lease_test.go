package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// These tests run what a tenant and an operator run: bin/kerf and
// bin/kerfd (built here), C programs linked against the shim, on the
// emulated GPU.

var (
	leasememOnce sync.Once
	leasememErr  error
)

// leaseBinaries is binaries (kerf, kerfd, the shim) with the C program
// leasemem built beside them, once per test binary.
func leaseBinaries(t *testing.T) string {
	t.Helper()
	dir := binaries(t)
	leasememOnce.Do(func() {
		cmd := exec.Command("gcc", "-O1", "-Wall", "-Werror", "-I../../abi/include", "-I../../intercept/testdata", "-o", filepath.Join(dir, "leasemem"),
			"../../intercept/testdata/leasemem.c", "-L"+dir, "-l:libcuda.so.1")
		if out, err := cmd.CombinedOutput(); err != nil {
			leasememErr = fmt.Errorf("%v: %v\n%s", cmd.Args, err, out)
		}
	})
	if leasememErr != nil {
		t.Fatal(leasememErr)
	}
	return dir
}

// daemon is a running bin/kerfd and what a tenant and operator need to
// reach it.
type daemon struct {
	bin, home, state, leases string
	api, admin               string
	cmd                      *exec.Cmd
	exited                   chan struct{}
	log                      *testkit.SyncBuffer
}

// startDaemon runs kerfd on state (a new directory if ""), with devices
// emulated 1 GiB GPUs cut by profile and the config overrides in extra.
func startDaemon(t *testing.T, state string, devices int, profile string, extra ...string) *daemon {
	t.Helper()
	bin := leaseBinaries(t)
	if state == "" {
		state = t.TempDir()
	}
	k := &daemon{bin: bin, home: t.TempDir(), state: state, leases: filepath.Join(state, "leases"), api: "http://" + testkit.FreePort(t), log: &testkit.SyncBuffer{}}
	k.cmd = exec.Command(filepath.Join(bin, "kerfd"))
	k.cmd.Env = append(k.env(), "KERF_STATE_DIR="+state, "KERF_LISTEN__QUIC=127.0.0.1:0", "KERF_LISTEN__HTTP="+strings.TrimPrefix(k.api, "http://"),
		"KERF_GPU__BACKEND=emulated", "KERF_GPU__EMULATED__MEMORY=1GiB", fmt.Sprintf("KERF_GPU__EMULATED__DEVICES=%d", devices),
		"KERF_SLICER__PROFILE="+profile, "KERF_SLICER__MAX_FRACTION_PER_TENANT=0", "KERF_INGEST__ENABLED=false", "KERF_TENANTS__STOP_GRACE=200ms")
	k.cmd.Env = append(k.cmd.Env, extra...)
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	k.exited = exited
	go func() { k.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			k.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("kerfd's log:\n%s", k.log.String())
		}
	})
	testkit.WaitForWithin(t, 30*time.Second, "kerfd to be ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("kerfd exited:\n%s", k.log.String())
		default:
		}
		r, err := http.Get(k.api + "/healthz")
		if err == nil {
			r.Body.Close()
		}
		return err == nil && fileExists(filepath.Join(state, "kerf.sock")) && fileExists(k.bundle("default"))
	})
	admin, err := os.ReadFile(filepath.Join(state, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	k.admin = strings.TrimSpace(string(admin))
	return k
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// env is this process's environment without Kerf's variables, with a
// home of the daemon's own: kerfd copies bundles into it, and kerf looks
// there.
func (k *daemon) env() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KERF_") && !strings.HasPrefix(e, "LD_LIBRARY_PATH=") &&
			!strings.HasPrefix(e, "HOME=") && !strings.HasPrefix(e, "XDG_CONFIG_HOME=") {
			env = append(env, e)
		}
	}
	return append(env, "HOME="+k.home, "XDG_CONFIG_HOME="+filepath.Join(k.home, ".config"))
}

func (k *daemon) bundle(tenant string) string {
	return filepath.Join(k.state, "bundles", tenant+".json")
}

// tenant issues a token for name through the API and writes its bundle.
func (k *daemon) tenant(t *testing.T, name string) string {
	t.Helper()
	k.mustKerf(t, "default", "tokens", "issue", "--out", k.bundle(name), name)
	if _, err := auth.ReadBundle(k.bundle(name)); err != nil {
		t.Fatal(err)
	}
	return name
}

// command is bin/kerf args as tenant, with the operator's API and token.
func (k *daemon) command(tenant string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(k.bin, "kerf"), args...)
	cmd.Env = append(k.env(), "KERF_BUNDLE="+k.bundle(tenant), "KERF_LEASE_DIR="+k.leases, "KERF_API="+k.api, "KERF_ADMIN_TOKEN="+k.admin)
	return cmd
}

func (k *daemon) kerf(tenant string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	cmd := k.command(tenant, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (k *daemon) mustKerf(t *testing.T, tenant string, args ...string) (string, string) {
	t.Helper()
	out, errs, err := k.kerf(tenant, args...)
	if err != nil {
		t.Fatalf("kerf %s: %v\n%s%s", strings.Join(args, " "), err, out, errs)
	}
	return out, errs
}

// program is a bin/kerf running in the background, its output kept.
type program struct {
	cmd  *exec.Cmd
	out  *testkit.SyncBuffer
	done chan error
}

func (k *daemon) startKerf(t *testing.T, tenant string, args ...string) *program {
	t.Helper()
	p := &program{cmd: k.command(tenant, args...), out: &testkit.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	})
	return p
}

func (p *program) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("%v: %v\n%s", p.cmd.Args, err, p.out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%v still running:\n%s", p.cmd.Args, p.out.String())
	}
}

var resultLine = regexp.MustCompile(`(?m)^(alloc|after) pid (\d+) result (\d+)$`)

// results counts leasemem's lines of kind (alloc or after) by CUDA result.
func results(out, kind string) map[string]int {
	n := map[string]int{}
	for _, m := range resultLine.FindAllStringSubmatch(out, -1) {
		if m[1] == kind {
			n[m[3]]++
		}
	}
	return n
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// leasemem is the command line of the C program: allocate bytes, hold
// them until go exists.
func (k *daemon) leasemem(bytes int, goFile string) []string {
	return []string{filepath.Join(k.bin, "leasemem"), fmt.Sprint(bytes), goFile}
}

const (
	mib = 1 << 20
	// cudaOutOfMemory and cudaDeviceUnavailable as leasemem prints them.
	cudaOutOfMemory       = "2"
	cudaDeviceUnavailable = "46"
)

// Three processes under one `kerf run` share its slice: 20 MiB each in a
// 51 MiB slice, so exactly one of them is refused.
func TestOneQuotaPerLease(t *testing.T) {
	k := startDaemon(t, "", 1, "uniform-20")
	goFile := filepath.Join(t.TempDir(), "go")
	script := fmt.Sprintf("for i in 1 2 3; do %s & done; wait", strings.Join(k.leasemem(20*mib, goFile), " "))
	p := k.startKerf(t, "default", "run", "-p", "0.05", "--", "sh", "-c", script)
	testkit.WaitForWithin(t, 60*time.Second, "three processes to allocate", func() bool { return sum(results(p.out.String(), "alloc")) == 3 })
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	if got := results(p.out.String(), "alloc"); got["0"] != 2 || got[cudaOutOfMemory] != 1 {
		t.Fatalf("allocations by result %v, want 2 granted and 1 CUDA_ERROR_OUT_OF_MEMORY:\n%s", got, p.out.String())
	}
}

// A tenant's memory cap holds across its leases, whatever its slices.
func TestTenantMemoryCap(t *testing.T) {
	k := startDaemon(t, "", 1, "uniform-20")
	k.mustKerf(t, "default", "tenants", "policy", "default", "--memory", "16MiB")
	goFile := filepath.Join(t.TempDir(), "go")
	os.WriteFile(goFile, nil, 0o600)
	out, _ := k.mustKerf(t, "default", append([]string{"run", "-p", "0.05", "--"}, k.leasemem(20*mib, goFile)...)...)
	if got := results(out, "alloc"); got[cudaOutOfMemory] != 1 {
		t.Fatalf("20 MiB under a 16 MiB cap: %v\n%s", got, out)
	}
	out, _ = k.mustKerf(t, "default", append([]string{"run", "-p", "0.05", "--"}, k.leasemem(8*mib, goFile)...)...)
	if got := results(out, "alloc"); got["0"] != 1 {
		t.Fatalf("8 MiB under a 16 MiB cap: %v\n%s", got, out)
	}
}

// When `kerf run` dies by SIGKILL, its lease ends: the program's next
// call fails with CUDA_ERROR_DEVICE_UNAVAILABLE, and the whole GPU goes to
// the next tenant only once the program no longer runs on it.
func TestLeaseEndsWithItsLauncher(t *testing.T) {
	for _, isolation := range []string{"process", "inprocess"} {
		t.Run(isolation, func(t *testing.T) {
			k := startDaemon(t, "", 1, "whole", "KERF_TENANTS__ISOLATION="+isolation)
			bob := k.tenant(t, "bob")
			goFile := filepath.Join(t.TempDir(), "go")
			p := k.startKerf(t, "default", append([]string{"run", "-p", "1", "--"}, k.leasemem(8*mib, goFile)...)...)
			testkit.WaitForWithin(t, 60*time.Second, "the program to allocate", func() bool { return results(p.out.String(), "alloc")["0"] == 1 })
			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			out, _ := k.mustKerf(t, bob, "run", "-p", "1", "--timeout", "30s", "--", "sh", "-c", "echo bob runs")
			if !strings.Contains(out, "bob runs") {
				t.Fatalf("bob's run: %s", out)
			}
			os.WriteFile(goFile, nil, 0o600)
			testkit.WaitForWithin(t, 30*time.Second, "the orphaned program's next call", func() bool { return sum(results(p.out.String(), "after")) == 1 })
			if got := results(p.out.String(), "after"); got[cudaDeviceUnavailable] != 1 {
				t.Fatalf("the program's call after its lease ended: %v, want CUDA_ERROR_DEVICE_UNAVAILABLE\n%s", got, p.out.String())
			}
		})
	}
}

// Revoking a tenant frees its slices at once, though its `kerf run` and
// program still run.
func TestRevokeFreesSlices(t *testing.T) {
	k := startDaemon(t, "", 1, "whole")
	bob := k.tenant(t, "bob")
	goFile := filepath.Join(t.TempDir(), "go")
	p := k.startKerf(t, bob, append([]string{"run", "-p", "1", "--"}, k.leasemem(8*mib, goFile)...)...)
	testkit.WaitForWithin(t, 60*time.Second, "bob's program to allocate", func() bool { return results(p.out.String(), "alloc")["0"] == 1 })
	k.mustKerf(t, "default", "tokens", "revoke", bob)
	testkit.WaitForWithin(t, 10*time.Second, "bob's GPU to be free", func() bool {
		out, _, err := k.kerf("default", "list-gpus")
		return err == nil && strings.Contains(out, "holding 0.00 GPUs") && strings.Contains(out, "100%")
	})
	out, _ := k.mustKerf(t, "default", "list-gpus")
	if !regexp.MustCompile(`(?m)^0 .* 1 +1 +100%`).MatchString(out) {
		t.Fatalf("after revoking bob:\n%s", out)
	}
	os.WriteFile(goFile, nil, 0o600)
	testkit.WaitForWithin(t, 30*time.Second, "bob's program's next call", func() bool { return sum(results(p.out.String(), "after")) == 1 })
	if got := results(p.out.String(), "after"); got[cudaDeviceUnavailable] != 1 {
		t.Fatalf("bob's call after revocation: %v\n%s", got, p.out.String())
	}
}

// exportedLease is the lease ID in kerf request's export line.
func exportedLease(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^export KERF_LEASE=(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("kerf request printed no export line:\n%s", out)
	}
	return m[1]
}

// `kerf request` holds a lease across commands: runs in it, in parallel
// and in turn, share its quota, and `kerf release` ends it.
func TestRequestedLeaseAcrossRuns(t *testing.T) {
	k := startDaemon(t, "", 1, "uniform-20")
	out, _ := k.mustKerf(t, "default", "request", "-n", "1", "-p", "0.05")
	lease := exportedLease(t, out)
	if out, _ := k.mustKerf(t, "default", "list-gpus"); !strings.Contains(out, "holding 0.05 GPUs") {
		t.Fatalf("list-gpus while the lease is held:\n%s", out)
	}
	goFile := filepath.Join(t.TempDir(), "go")
	run := append([]string{"run", "--lease", lease, "--"}, k.leasemem(30*mib, goFile)...)
	a, b := k.startKerf(t, "default", run...), k.startKerf(t, "default", run...)
	testkit.WaitForWithin(t, 60*time.Second, "both runs to allocate", func() bool {
		return sum(results(a.out.String(), "alloc"))+sum(results(b.out.String(), "alloc")) == 2
	})
	os.WriteFile(goFile, nil, 0o600)
	a.wait(t)
	b.wait(t)
	both := a.out.String() + b.out.String()
	if got := results(both, "alloc"); got["0"] != 1 || got[cudaOutOfMemory] != 1 {
		t.Fatalf("two runs of 30 MiB in one 51 MiB lease: %v\n%s", got, both)
	}
	for range 2 { // in turn, each has the whole slice
		out, _ := k.mustKerf(t, "default", run...)
		if got := results(out, "alloc"); got["0"] != 1 {
			t.Fatalf("a later run in the lease: %v\n%s", got, out)
		}
	}
	if _, errs := k.mustKerf(t, "default", "release", lease); !strings.Contains(errs, "released lease "+lease) {
		t.Fatalf("release said %q", errs)
	}
	if _, _, err := k.kerf("default", run...); err == nil {
		t.Fatal("a run in a released lease started")
	}
	testkit.WaitForWithin(t, 10*time.Second, "the released slice to be free", func() bool {
		out, _, err := k.kerf("default", "list-gpus")
		return err == nil && strings.Contains(out, "holding 0.00 GPUs")
	})
}

// A requested lease that no session uses for the tenant's idle timeout is
// reclaimed: its holder learns it and its file goes.
func TestIdleRequestedLeaseIsReclaimed(t *testing.T) {
	k := startDaemon(t, "", 1, "uniform-20")
	k.mustKerf(t, "default", "tenants", "policy", "default", "--idle", "2s")
	out, _ := k.mustKerf(t, "default", "request", "-p", "0.05")
	lease := exportedLease(t, out)
	file := filepath.Join(k.leases, lease+".json")
	if !fileExists(file) {
		t.Fatalf("no lease file %s", file)
	}
	testkit.WaitForWithin(t, 30*time.Second, "the idle lease to be reclaimed", func() bool { return !fileExists(file) })
	if _, _, err := k.kerf("default", "run", "--lease", lease, "--", "true"); err == nil {
		t.Fatal("a run in a reclaimed lease started")
	}
	if out, _ := k.mustKerf(t, "default", "list-gpus"); !strings.Contains(out, "holding 0.00 GPUs") {
		t.Fatalf("after the reclaim:\n%s", out)
	}
}

// The FAQ's example: a client limited to 2.5 GPUs runs jobs of 1, 0.75
// and 0.75 of a GPU, and a fourth request fails. The policy survives a
// restart.
func TestTenantGPULimit(t *testing.T) {
	state := t.TempDir()
	k := startDaemon(t, state, 4, "whole")
	profile := `{"name": "faq", "gpus": [
		{"gpu": 0, "slices": [{"memoryFraction": 1, "computeShare": 1}]},
		{"gpu": 1, "slices": [{"memoryFraction": 0.75, "computeShare": 0.75}, {"memoryFraction": 0.25, "computeShare": 0.25}]},
		{"gpu": 2, "slices": [{"memoryFraction": 0.75, "computeShare": 0.75}, {"memoryFraction": 0.25, "computeShare": 0.25}]},
		{"gpu": 3, "slices": [{"memoryFraction": 0.75, "computeShare": 0.75}, {"memoryFraction": 0.25, "computeShare": 0.25}]}]}`
	pf := filepath.Join(t.TempDir(), "faq.json")
	os.WriteFile(pf, []byte(profile), 0o600)
	k.mustKerf(t, "default", "profiles", "put", pf)
	k.mustKerf(t, "default", "profiles", "apply", "faq")
	out, _ := k.mustKerf(t, "default", "tenants", "policy", "default", "--gpus", "2.5", "--idle", "10m", "--memory", "8GiB")
	for _, want := range []string{"its own policy", "2.5 GPUs", "10m0s", "8.0 GiB"} {
		if !strings.Contains(out, want) {
			t.Fatalf("tenants policy printed %q, without %q", out, want)
		}
	}
	for _, p := range []string{"1", "0.75", "0.75"} {
		k.mustKerf(t, "default", "request", "-p", p)
	}
	_, errs, err := k.kerf("default", "request", "-p", "0.25", "--timeout", "2s")
	if err == nil || !strings.Contains(errs, "limit") {
		t.Fatalf("a fourth request past 2.5 GPUs: %v\n%s", err, errs)
	}
	if out, _ := k.mustKerf(t, "default", "list-gpus"); !strings.Contains(out, "holding 2.50 GPUs, a limit of 2.5 GPUs") {
		t.Fatalf("list-gpus:\n%s", out)
	}
	k.mustKerf(t, "default", "release", "--all")

	// A restart keeps the policy.
	k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("kerfd did not stop")
	}
	k = startDaemon(t, state, 4, "whole")
	out, _ = k.mustKerf(t, "default", "tenants", "policy", "default")
	for _, want := range []string{"its own policy", "2.5 GPUs", "10m0s", "8.0 GiB"} {
		if !strings.Contains(out, want) {
			t.Fatalf("after a restart, tenants policy printed %q, without %q", out, want)
		}
	}
}

// A tenant token lists its GPUs through the tenant transport, on either
// path, and is refused by the operator API.
func TestTenantSeesCapacityNotAdminViews(t *testing.T) {
	k := startDaemon(t, "", 2, "uniform-10")
	for _, via := range []string{"unix", "quic"} {
		out, _ := k.mustKerf(t, "default", "list-gpus", "--via", via)
		if n := len(regexp.MustCompile(`(?m)^[01] +Kerf Emulated GPU`).FindAllString(out, -1)); n != 2 {
			t.Fatalf("list-gpus over %s:\n%s", via, out)
		}
	}
	b, err := auth.ReadBundle(k.bundle("default"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/gpus", "/v1/tenants", "/v1/slices", "/v1/tenants/default/policy", "/v1/state"} {
		for _, tc := range []struct {
			token string
			want  int
		}{{"", http.StatusUnauthorized}, {b.Token, http.StatusForbidden}} {
			req, _ := http.NewRequest("GET", k.api+path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != tc.want {
				t.Errorf("GET %s with a token %v: %d, want %d", path, tc.token != "", r.StatusCode, tc.want)
			}
		}
	}
	// The policy endpoint speaks JSON the spec describes.
	req, _ := http.NewRequest("GET", k.api+"/v1/tenants/default/policy", nil)
	req.Header.Set("Authorization", "Bearer "+k.admin)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var pol map[string]any
	if err := json.NewDecoder(bufio.NewReader(r.Body)).Decode(&pol); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("GET policy as admin: %d, %v, %v", r.StatusCode, pol, err)
	}
}
