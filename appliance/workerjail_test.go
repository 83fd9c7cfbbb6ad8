package appliance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/transport"
)

// probeEnv makes the test binary a probe that reads the file it names
// and exits 0 when it could, 3 when it could not (TestMain).
const probeEnv = "APPLIANCE_TEST_READ_PROBE"

// syscallProbeEnv makes the test binary confine itself as a worker does
// and then try calls the filter refuses; it exits 0 when each was
// refused with EPERM (TestMain).
const syscallProbeEnv = "APPLIANCE_TEST_SYSCALL_PROBE"

func runSyscallProbe() int {
	if err := confineSelf(); err != nil {
		fmt.Fprintln(os.Stderr, "confine:", err)
		return 5
	}
	status := 0
	for name, call := range map[string]func() error{
		"ptrace(TRACEME)": func() error {
			_, _, e := syscall.RawSyscall(syscall.SYS_PTRACE, syscall.PTRACE_TRACEME, 0, 0)
			if e != 0 {
				return e
			}
			return nil
		},
		"unshare(CLONE_NEWUSER)": func() error { return syscall.Unshare(syscall.CLONE_NEWUSER) },
		"keyctl":                 func() error { _, _, e := syscall.RawSyscall(unix.SYS_KEYCTL, 0, 0, 0); return errnoErr(e) },
	} {
		if err := call(); !errors.Is(err, syscall.EPERM) {
			fmt.Fprintf(os.Stderr, "%s: %v, want EPERM\n", name, err)
			status = 4
		}
	}
	return status
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func runReadProbe(path string) int {
	if _, err := os.ReadFile(path); err != nil {
		return 3
	}
	return 0
}

// A worker starts confined: its limits set, no new privileges, / as its
// working directory, a clean environment, no descriptor into the state
// directory even where kerfd leaked one, and, when kerfd runs as root,
// another user, which cannot read the state directory.
func TestWorkerIsConfined(t *testing.T) {
	dir := t.TempDir()
	env := []string{
		"KERF_STATE_DIR=" + dir, "KERF_LISTEN__QUIC=127.0.0.1:0", "KERF_LISTEN__HTTP=127.0.0.1:0",
		"KERF_GPU__BACKEND=emulated", "KERF_GPU__EMULATED__MEMORY=1GiB", "KERF_INGEST__ENABLED=false",
		"KERF_TENANTS__WORKER__MAX_FILES=100",
	}
	asRoot := os.Geteuid() == 0
	if asRoot {
		env = append(env, "KERF_TENANTS__WORKER__USER=65534:65534")
		openToOthers(t, os.Args[0])
	}
	cfg, err := LoadConfig("", env)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KERF_ADMIN_TOKEN", "kerfadm_secret")
	a := start(t, cfg)

	// A descriptor into the state directory without close-on-exec, as a
	// C library might leave one.
	leaked, err := syscall.Open(cfg.TokensPath(), syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(leaked)

	path, err := a.IssueBundle("jailed", 0, filepath.Join(t.TempDir(), "jailed.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := auth.ReadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := transport.DialUnix(ctx, b.Socket, transport.Options{Token: []byte(b.Token)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.MemAlloc(1 << 20); err != nil {
		t.Fatalf("a call in the confined worker: %v", err)
	}
	pid := workerOf(t, a, "jailed")
	proc := func(name string) string {
		t.Helper()
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	limits := proc("limits")
	for _, want := range [][]string{
		{"Max data size", strconv.Itoa(1<<30 + workerHeadroom)},
		{"Max open files", "100"},
		{"Max core file size", "0"},
	} {
		if !limitIs(limits, want[0], want[1]) {
			t.Errorf("%s: want %s soft and hard in\n%s", want[0], want[1], limits)
		}
	}
	status := proc("status")
	if !strings.Contains(status, "NoNewPrivs:\t1") || !strings.Contains(status, "Seccomp:\t2") {
		t.Errorf("no_new_privs or the syscall filter not set:\n%s", status)
	}
	if asRoot && !strings.Contains(status, "Uid:\t65534\t65534\t65534\t65534") {
		t.Errorf("worker not running as 65534:\n%s", status)
	}
	if !asRoot {
		// A worker is not dumpable: only a process that may trace it
		// (root) reads its directory, descriptors and environment.
		t.Log("not root: the worker's directory, descriptors, environment and user are not checked")
		return
	}
	if cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err != nil || cwd != "/" {
		t.Errorf("working directory %q, %v", cwd, err)
	}
	for _, kv := range strings.Split(proc("environ"), "\x00") {
		if strings.HasPrefix(kv, "KERF_") && kv != workerEnv+"=1" {
			t.Errorf("worker environment holds %s", kv)
		}
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name())
		if strings.HasPrefix(target, dir) {
			t.Errorf("worker descriptor %s is %s, in the state directory", fd.Name(), target)
		}
	}

	jail, err := newWorkerJail(cfg.Tenants.Worker, 1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{cfg.TokensPath(), cfg.AdminTokenPath()} {
		cmd := jail.command(os.Args[0], nil)
		cmd.Env = []string{probeEnv + "=" + file}
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Errorf("a process started as a worker reading %s: %v (want exit status 3)", file, err)
		}
	}
}

// limitIs reports whether /proc/PID/limits gives the limit name value as
// both its soft and hard limit.
func limitIs(limits, name, value string) bool {
	for line := range strings.Lines(limits) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			return len(f) >= 2 && f[0] == value && f[1] == value
		}
	}
	return false
}

// openToOthers lets other users reach and run the executable at path
// until the test ends, as an installed kerfd is: the test binary lies in
// directories only its owner may enter.
func openToOthers(t *testing.T, path string) {
	t.Helper()
	path, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	for p := path; p != "/"; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		mode := fi.Mode().Perm()
		if mode&0o001 != 0 {
			continue
		}
		if err := os.Chmod(p, mode|0o001|map[bool]fs.FileMode{true: 0o004}[p == path]); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(p, mode) })
	}
}

// A worker's syscall filter refuses what no worker needs, with EPERM: in
// a process confined as a worker is, ptrace(PTRACE_TRACEME), unshare and
// keyctl, which succeed or fail otherwise without the filter, fail so.
func TestWorkerSyscallFilter(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{syscallProbeEnv + "=1"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
}

// capProbeEnv makes the test binary check that it holds CAP_SETUID,
// confine itself as a worker does, and then try to become root; it exits
// 0 when the capabilities were gone and setuid refused (TestMain).
const capProbeEnv = "APPLIANCE_TEST_CAP_PROBE"

func runCapProbe() int {
	if !canSetUser() {
		fmt.Fprintln(os.Stderr, "the probe started without CAP_SETUID and CAP_SETGID")
		return 6
	}
	if err := confineSelf(); err != nil {
		fmt.Fprintln(os.Stderr, "confine:", err)
		return 5
	}
	// Capabilities are per thread: try on several, each its own.
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			// The raw call, on this thread alone: the C library aborts the
			// process when a set*id call fails on some threads.
			_, _, e := syscall.RawSyscall(syscall.SYS_SETUID, 0, 0, 0)
			errs <- errnoErr(e)
		}()
	}
	for range cap(errs) {
		if err := <-errs; !errors.Is(err, syscall.EPERM) {
			fmt.Fprintf(os.Stderr, "setuid(0): %v, want EPERM\n", err)
			return 4
		}
	}
	return 0
}

// A kerfd that may change user through ambient CAP_SETUID and CAP_SETGID
// (the image's unit) passes them through exec to its workers, which are
// not root; a worker drops them before it reads its spec, so it cannot
// switch back to kerfd's user. Needs root, to start the probe so.
func TestWorkerDropsCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process with ambient capabilities")
	}
	openToOthers(t, os.Args[0])
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{capProbeEnv + "=1"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}},
		AmbientCaps: []uintptr{unix.CAP_SETUID, unix.CAP_SETGID},
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("a worker with ambient CAP_SETUID and CAP_SETGID: %v\n%s", err, out)
	}
}
