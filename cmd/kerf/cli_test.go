package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// The tests in this file run the built binaries, as a user would: kerf,
// kerfd and the shim, built once into a temporary directory.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds kerf, kerfd and libcuda.so.1 (once) and returns their
// directory.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "kerf-cli-test")
		if buildErr != nil {
			return
		}
		for _, args := range [][]string{
			{"build", "-ldflags", "-X github.com/kerf-edge/kerf/internal/buildinfo.version=v9.8.7-test", "-o", binDir + "/", "github.com/kerf-edge/kerf/cmd/kerf", "github.com/kerf-edge/kerf/cmd/kerfd"},
			{"build", "-buildmode=c-shared", "-o", filepath.Join(binDir, "libcuda.so.1"), "github.com/kerf-edge/kerf/intercept"},
		} {
			if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go %v: %v\n%s", args, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// result is what a binary did.
type result struct {
	code           int
	stdout, stderr string
}

// env is a user's environment: a home of its own, so that nothing is
// read from or written to the real one, and a working directory.
type env struct {
	home, dir string
	vars      []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{home: t.TempDir(), dir: t.TempDir()}
	e.vars = []string{"HOME=" + e.home, "XDG_CONFIG_HOME=" + filepath.Join(e.home, ".config"), "PATH=" + os.Getenv("PATH")}
	return e
}

func (e *env) with(vars ...string) *env {
	c := *e
	c.vars = append(append([]string(nil), e.vars...), vars...)
	return &c
}

// run runs bin (kerf or kerfd) with args in e.
func (e *env) run(t *testing.T, bin string, args ...string) result {
	t.Helper()
	dir := binaries(t) // before the deadline: the first call builds
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, bin), args...)
	cmd.Dir, cmd.Env = e.dir, e.vars
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if x, ok := err.(*exec.ExitError); ok {
		r.code = x.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return r
}

// repeatedPrefix finds a prefix an error line says twice: "kerf: kerf:",
// "CUDA_ERROR_X: CUDA_ERROR_X:", "no capacity: no capacity now"; "" when
// none. Prefixes are the parts of the line between ": ".
func repeatedPrefix(line string) string {
	parts := strings.Split(line, ": ")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if len(p) < 3 {
			continue
		}
		for _, q := range parts[i+1 : min(i+3, len(parts))] {
			q = strings.TrimSpace(q)
			if q == p || strings.HasPrefix(q, p+" ") {
				return p
			}
		}
	}
	return ""
}

func checkOnePrefix(t *testing.T, what, text string) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if p := repeatedPrefix(line); p != "" {
			t.Errorf("%s: %q said twice in %q", what, p, line)
		}
		for _, code := range regexp.MustCompile(`CUDA_ERROR_[A-Z_]+`).FindAllString(line, -1) {
			if strings.Count(line, code) > 1 {
				t.Errorf("%s: %s said twice in %q", what, code, line)
			}
		}
	}
}

func TestRepeatedPrefixIsCaught(t *testing.T) {
	for _, bad := range []string{"kerf: kerf: connecting to x", "CUDA_ERROR_INVALID_VALUE: CUDA_ERROR_INVALID_VALUE: bad",
		"NVIDIA driver too old: NVIDIA driver too old: 12.2", "kerf: CUDA_ERROR_OUT_OF_MEMORY: no capacity: no capacity now: 0 of 1"} {
		if repeatedPrefix(bad) == "" {
			t.Errorf("%q: not caught", bad)
		}
	}
	if p := repeatedPrefix("kerf: kerfd is not running at /x (socket missing); start it"); p != "" {
		t.Errorf("a good line caught: %q", p)
	}
}

// Every command and subcommand prints its own usage for --help and exits
// 0, without doing anything: kerf tokens revoke --help sends no request.
func TestHelp(t *testing.T) {
	var requests []string
	var mu sync.Mutex
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path)
		mu.Unlock()
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer api.Close()
	e := newEnv(t).with("KERF_API="+api.URL, "KERF_ADMIN_TOKEN=kerfadm_x", "KERF_STATE_DIR="+t.TempDir())
	for _, tc := range []struct {
		bin  string
		args []string
		want string
	}{
		{"kerf", []string{"--help"}, "usage: kerf COMMAND"},
		{"kerf", []string{"help"}, "usage: kerf COMMAND"},
		{"kerf", []string{"-h"}, "usage: kerf COMMAND"},
		{"kerf", []string{"run", "--help"}, "usage: kerf run "},
		{"kerf", []string{"info", "--help"}, "usage: kerf info "},
		{"kerf", []string{"version", "--help"}, "usage: kerf version"},
		{"kerf", []string{"bench", "--help"}, "usage: kerf bench NAME"},
		{"kerf", []string{"demo", "--help"}, "usage: kerf demo"},
		{"kerf", []string{"profiles", "--help"}, "usage: kerf profiles COMMAND"},
		{"kerf", []string{"profiles", "list", "--help"}, "usage: kerf profiles list"},
		{"kerf", []string{"profiles", "show", "--help"}, "usage: kerf profiles show NAME"},
		{"kerf", []string{"profiles", "put", "--help"}, "usage: kerf profiles put FILE"},
		{"kerf", []string{"profiles", "validate", "--help"}, "usage: kerf profiles validate NAME"},
		{"kerf", []string{"profiles", "apply", "--help"}, "-dry-run"},
		{"kerf", []string{"slices", "--help"}, "usage: kerf slices"},
		{"kerf", []string{"smi", "--help"}, "usage: kerf smi"},
		{"kerf", []string{"tokens", "--help"}, "usage: kerf tokens COMMAND"},
		{"kerf", []string{"tokens", "issue", "--help"}, "-memory"},
		{"kerf", []string{"tokens", "revoke", "--help"}, "usage: kerf tokens revoke TENANT"},
		{"kerf", []string{"tokens", "list", "--help"}, "usage: kerf tokens list"},
		{"kerfd", []string{"--help"}, "kerfd tokens issue"},
		{"kerfd", []string{"-h"}, "kerfd tokens issue"},
		{"kerfd", []string{"init", "--help"}, "usage: kerfd init"},
		{"kerfd", []string{"tokens", "--help"}, "kerfd tokens revoke"},
		{"kerfd", []string{"tokens", "issue", "--help"}, "-memory"},
		{"kerfd", []string{"tokens", "revoke", "--help"}, "usage: kerfd tokens revoke"},
		{"kerfd", []string{"tokens", "list", "--help"}, "usage: kerfd tokens list"},
	} {
		t.Run(tc.bin+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			r := e.run(t, tc.bin, tc.args...)
			if r.code != 0 || !strings.Contains(r.stdout, tc.want) || r.stderr != "" {
				t.Fatalf("exit %d; want 0 with %q on stdout and nothing on stderr\nstdout:\n%s\nstderr:\n%s", r.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
	if len(requests) > 0 {
		t.Fatalf("--help sent requests to the API: %v", requests)
	}
	// A bad flag is a usage error: exit 2, on stderr, pointing at --help.
	r := e.run(t, "kerf", "run", "--no-such-flag")
	if r.code != 2 || !strings.Contains(r.stderr, "kerf run --help") {
		t.Fatalf("bad flag: exit %d, stderr %q", r.code, r.stderr)
	}
}

// kerf version and kerfd --version print the version set at link time.
func TestVersion(t *testing.T) {
	e := newEnv(t)
	for _, tc := range [][]string{{"kerf", "version"}, {"kerfd", "--version"}, {"kerfd", "version"}} {
		r := e.run(t, tc[0], tc[1:]...)
		if want := tc[0] + " v9.8.7-test\n"; r.code != 0 || r.stdout != want {
			t.Errorf("%v: exit %d, stdout %q; want %q", tc, r.code, r.stdout, want)
		}
	}
}

// Without kerfd, kerf run and kerf info say so: a bundle of this machine
// whose socket is missing says kerfd is not running; a QUIC address that
// refuses says nothing listens there.
func TestKerfdNotRunning(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(t.TempDir(), "kerf.sock")
	bundle := filepath.Join(t.TempDir(), "b.json")
	if err := auth.WriteBundle(bundle, auth.Bundle{Tenant: "default", Token: auth.TokenPrefix + "x", QUIC: testkit.FreePort(t), Socket: sock,
		Fingerprint: "sha256:" + strings.Repeat("ab", 32)}); err != nil {
		t.Fatal(err)
	}
	want := "kerfd is not running at " + sock + " (socket missing); start it with `kerfd` or `make run`"
	for _, args := range [][]string{{"info"}, {"run", "-p", "0.25", "--", "true"}} {
		r := e.with("KERF_BUNDLE="+bundle).run(t, "kerf", args...)
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("kerf %v: exit %d, stderr %q; want %q", args, r.code, r.stderr, want)
		}
		checkOnePrefix(t, "kerf "+strings.Join(args, " "), r.stderr)
	}
	r := e.run(t, "kerf", "info", "--token", bundle, "--via", "quic")
	if r.code != 1 || !strings.Contains(r.stderr, "nothing listens on") {
		t.Errorf("kerf info over QUIC to a closed port: exit %d, stderr %q", r.code, r.stderr)
	}
	checkOnePrefix(t, "kerf info --via quic", r.stderr)
	// No bundle anywhere: the error lists where kerf looked.
	r = e.run(t, "kerf", "info")
	if r.code != 1 || !strings.Contains(r.stderr, filepath.Join(e.home, ".config", "kerf", "bundle.json")) || !strings.Contains(r.stderr, "KERF_BUNDLE") {
		t.Errorf("no bundle: exit %d, stderr %q", r.code, r.stderr)
	}
}

// kerfd is a kerfd started from its binary in e, with its state in a
// directory of its own; its log is in the returned buffer.
type kerfd struct {
	state, api string
	log        *testkit.SyncBuffer
}

// waitFor polls cond until it holds, or fails the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func startKerfd(t *testing.T, e *env) *kerfd {
	t.Helper()
	k := &kerfd{state: filepath.Join(t.TempDir(), "state"), log: &testkit.SyncBuffer{}}
	http := testkit.FreePort(t)
	k.api = "http://" + http
	cmd := exec.Command(filepath.Join(binaries(t), "kerfd"))
	cmd.Dir = e.dir
	cmd.Env = append(e.vars, "KERF_STATE_DIR="+k.state, "KERF_LISTEN__QUIC="+testkit.FreePort(t), "KERF_LISTEN__HTTP="+http, "KERF_INGEST__ENABLED=false")
	cmd.Stdout, cmd.Stderr = k.log, k.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	waitFor(t, "kerfd ready", func() bool { return strings.Contains(k.log.String(), "kerfd ready") })
	return k
}

// A tenant and an operator use kerfd from any directory: the default
// bundle and the admin token are found where kerfd copied them, bundles
// from kerf tokens issue work, re-issuing says so, and a second kerfd on
// the same state directory refuses before it changes anything.
func TestWithKerfd(t *testing.T) {
	e := newEnv(t)
	k := startKerfd(t, e)
	userDir := filepath.Join(e.home, ".config", "kerf")
	waitFor(t, "kerfd's copy of the default bundle", func() bool {
		_, err := os.Stat(filepath.Join(userDir, "bundle.json"))
		return err == nil
	})
	elsewhere := e.with()
	elsewhere.dir = t.TempDir()
	api := elsewhere.with("KERF_API=" + k.api)

	// First, while no tenant changes the slicer's state.
	t.Run("second kerfd refuses", func(t *testing.T) {
		slicer := filepath.Join(k.state, "slicer.json")
		old, err := os.ReadFile(slicer)
		if err != nil {
			t.Fatal(err)
		}
		r := elsewhere.with("KERF_STATE_DIR="+k.state, "KERF_LISTEN__QUIC="+testkit.FreePort(t), "KERF_LISTEN__HTTP="+testkit.FreePort(t), "KERF_INGEST__ENABLED=false").run(t, "kerfd")
		if r.code != 1 || !strings.Contains(r.stderr, "is in use by kerfd pid") {
			t.Fatalf("second kerfd: exit %d\n%s", r.code, r.stderr)
		}
		if now, _ := os.ReadFile(slicer); !bytes.Equal(now, old) {
			t.Errorf("the second kerfd rewrote slicer.json")
		}
		if strings.Contains(r.stderr, "sessions ended") {
			t.Errorf("the second kerfd says sessions ended:\n%s", r.stderr)
		}
	})
	t.Run("info finds the default bundle", func(t *testing.T) {
		r := elsewhere.run(t, "kerf", "info")
		if r.code != 0 || !strings.Contains(r.stdout, "path                unix") {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("KERF_BUNDLE is honoured", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "none.json")
		for _, args := range [][]string{{"info"}, {"run", "--", "true"}} {
			r := elsewhere.with("KERF_BUNDLE="+missing).run(t, "kerf", args...)
			if r.code != 1 || !strings.Contains(r.stderr, missing) {
				t.Errorf("kerf %v: exit %d, stderr %q; want the error to name %s", args, r.code, r.stderr, missing)
			}
		}
	})
	t.Run("smi finds the admin token", func(t *testing.T) {
		r := api.run(t, "kerf", "smi")
		if r.code != 0 || !strings.Contains(r.stdout, "GPU 0") {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		bare := newEnv(t).with("KERF_API=" + k.api)
		r = bare.run(t, "kerf", "smi")
		if r.code != 1 || !strings.Contains(r.stderr, filepath.Join(bare.home, ".config", "kerf", "admin-token")) || !strings.Contains(r.stderr, "KERF_ADMIN_TOKEN") {
			t.Fatalf("no admin token: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("tokens issue writes a bundle", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "bob.json")
		r := api.run(t, "kerf", "tokens", "issue", "--memory", "1GiB", "--out", out, "bob")
		if r.code != 0 || !strings.Contains(r.stdout, "issued a token for tenant bob; bundle written to "+out) {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if r := elsewhere.run(t, "kerf", "info", "--token", out); r.code != 0 || !strings.Contains(r.stdout, "1.0 GiB") {
			t.Fatalf("kerf info with the issued bundle: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		r = api.run(t, "kerf", "tokens", "issue", "--memory", "1GiB", "--out", out, "bob")
		if r.code != 0 || !strings.Contains(r.stdout, "replaced the token of tenant bob (1 earlier token(s) revoked") {
			t.Fatalf("re-issue: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		offline := elsewhere.with("KERF_STATE_DIR=" + k.state)
		for i, want := range []string{"issued a token for tenant carol", "replaced the token of tenant carol"} {
			r := offline.run(t, "kerfd", "tokens", "issue", "--memory", "512MiB", "carol")
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Fatalf("kerfd tokens issue #%d: exit %d\n%s\n%s", i+1, r.code, r.stdout, r.stderr)
			}
		}
		if r := offline.run(t, "kerfd", "tokens", "issue", "--memory", "12", "dave"); r.code != 0 {
			t.Fatalf("--memory in bytes: exit %d %s", r.code, r.stderr)
		}
		if r := offline.run(t, "kerfd", "tokens", "issue", "--memory", "lots", "dave"); r.code != 2 || !strings.Contains(r.stderr, "--memory") {
			t.Fatalf("--memory lots: exit %d %s", r.code, r.stderr)
		}
	})
	t.Run("a long program path", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100), "ünïcödé-"+strings.Repeat("é", 20))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		prog := filepath.Join(dir, "vadd")
		src := "../../intercept/testdata"
		if out, err := exec.Command("gcc", "-I../../abi/include", "-I"+src, "-o", prog, src+"/vadd.c", "-L"+binaries(t), "-l:libcuda.so.1").CombinedOutput(); err != nil {
			t.Skipf("gcc: %v\n%s", err, out)
		}
		ptx, _ := filepath.Abs("../../gpu/emu/kernels/vadd.ptx")
		r := elsewhere.run(t, "kerf", "run", "-p", "0.1", "--shim", binaries(t), "--", prog, ptx)
		if r.code != 0 || !strings.Contains(r.stdout, "vadd ok") {
			t.Fatalf("a %d-byte path: exit %d\n%s\n%s", len(prog), r.code, r.stdout, r.stderr)
		}
	})
	t.Run("node full", func(t *testing.T) {
		// The default tenant and carol take half the GPU each (a
		// tenant may hold at most half); bob then waits for a quarter.
		carol := filepath.Join(t.TempDir(), "carol.json")
		if r := api.run(t, "kerf", "tokens", "issue", "--out", carol, "carol"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		var holders []*exec.Cmd
		for _, bundle := range []string{"", carol} {
			args := []string{"run", "-p", "0.5", "--", "sleep", "60"}
			if bundle != "" {
				args = append([]string{"run", "--token", bundle}, args[1:]...)
			}
			h := exec.Command(filepath.Join(binaries(t), "kerf"), args...)
			h.Dir, h.Env = elsewhere.dir, elsewhere.vars
			if err := h.Start(); err != nil {
				t.Fatal(err)
			}
			holders = append(holders, h)
		}
		defer func() {
			for _, h := range holders {
				h.Process.Kill()
				h.Wait()
			}
		}()
		waitFor(t, "two leases", func() bool { return strings.Count(k.log.String(), "lease granted") >= 2 })
		bob := filepath.Join(t.TempDir(), "bob.json")
		if r := api.run(t, "kerf", "tokens", "issue", "--out", bob, "bob"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		before := strings.Count(k.log.String(), "WARN")
		r := elsewhere.run(t, "kerf", "run", "--token", bob, "-p", "0.25", "--timeout", "3s", "--", "true")
		if r.code != 1 || !strings.Contains(r.stderr, "other tenants hold 100%") {
			t.Fatalf("exit %d, stderr:\n%s\nkerfd:\n%s", r.code, r.stderr, k.log.String())
		}
		if n := strings.Count(r.stderr, "\n"); n > 3 {
			t.Errorf("%d lines while waiting 3s (stderr is not a terminal):\n%s", n, r.stderr)
		}
		checkOnePrefix(t, "kerf run on a full node", r.stderr)
		if after := strings.Count(k.log.String(), "WARN"); after != before {
			t.Errorf("kerfd logged %d warnings for one waiting tenant:\n%s", after-before, k.log.String())
		}
	})
}
