package appliance

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/internal/units"
)

// WorkerConfig is how tenant workers are confined (tenants.worker).
type WorkerConfig struct {
	// User runs workers as this user ("name", "uid" or "uid:gid") when
	// kerfd may change user (root, or CAP_SETUID and CAP_SETGID); empty:
	// kerfd's own.
	User string `koanf:"user"`
	// MaxData is each worker's RLIMIT_DATA: bytes, or "auto" (the largest
	// GPU's memory plus workerHeadroom).
	MaxData string `koanf:"max_data"`
	// MaxAddressSpace is each worker's RLIMIT_AS; "0": none.
	MaxAddressSpace string `koanf:"max_address_space"`
	// MaxFiles is each worker's RLIMIT_NOFILE.
	MaxFiles uint64 `koanf:"max_files"`
}

// workerHeadroom is what a worker may hold beyond a GPU's memory under
// max_data: auto: its runtime, buffers, the emulator's code cache, and on
// real GPUs the driver's host-side allocations.
const workerHeadroom = 4 << 30

func (w WorkerConfig) validate() []error {
	var errs []error
	if w.MaxData != "auto" {
		if _, err := units.ParseBytes(w.MaxData); err != nil {
			errs = append(errs, fmt.Errorf("tenants.worker.max_data: %w (or auto)", err))
		}
	}
	if _, err := units.ParseBytes(w.MaxAddressSpace); err != nil {
		errs = append(errs, fmt.Errorf("tenants.worker.max_address_space: %w", err))
	}
	if w.MaxFiles < 16 {
		errs = append(errs, fmt.Errorf("tenants.worker.max_files = %d: want at least 16", w.MaxFiles))
	}
	return errs
}

// workerJail starts worker processes confined: a clean environment, the
// root directory as working directory, only the descriptors worker.go
// lists, another user where configured, and killed when kerfd dies. The
// worker adds what it sets on itself: confineSelf first thing, then the
// resource limits its spec carries (applyLimits).
type workerJail struct {
	cred   *syscall.Credential // nil: kerfd's own user
	limits []workerLimit
}

// workerLimit is one resource limit, sent to the worker in its spec.
type workerLimit struct {
	Name     string
	Resource int
	Value    uint64
}

// newWorkerJail resolves cfg for a node whose largest GPU has gpuMemory
// bytes. A configured user kerfd cannot switch to is an error, at start
// rather than at each session.
func newWorkerJail(cfg WorkerConfig, gpuMemory uint64, log *slog.Logger) (workerJail, error) {
	var j workerJail
	data := gpuMemory + workerHeadroom
	if cfg.MaxData != "auto" {
		data, _ = units.ParseBytes(cfg.MaxData) // validated with the config
	}
	as, _ := units.ParseBytes(cfg.MaxAddressSpace)
	j.limits = []workerLimit{
		{"data", unix.RLIMIT_DATA, data},
		{"files", unix.RLIMIT_NOFILE, cfg.MaxFiles},
		{"core", unix.RLIMIT_CORE, 0},
	}
	if as > 0 {
		j.limits = append(j.limits, workerLimit{"address space", unix.RLIMIT_AS, as})
	}
	if cfg.User == "" {
		if os.Geteuid() == 0 && log != nil {
			log.Warn("tenant workers run as root: set tenants.worker.user to an unprivileged user")
		}
		return j, nil
	}
	uid, gid, err := lookupWorkerUser(cfg.User)
	if err != nil {
		return j, fmt.Errorf("tenants.worker.user: %w", err)
	}
	if uid == 0 {
		return j, fmt.Errorf("tenants.worker.user %q is root", cfg.User)
	}
	if (uid != uint32(os.Geteuid()) || gid != uint32(os.Getegid())) && !canSetUser() {
		return j, fmt.Errorf("tenants.worker.user %q: kerfd runs as uid %d without CAP_SETUID and CAP_SETGID, so it cannot start workers as another user", cfg.User, os.Geteuid())
	}
	j.cred = &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
	return j, nil
}

// lookupWorkerUser resolves "name", "uid" or "uid:gid".
func lookupWorkerUser(s string) (uid, gid uint32, err error) {
	if u, g, ok := strings.Cut(s, ":"); ok {
		uid, err1 := strconv.ParseUint(u, 10, 32)
		gid, err2 := strconv.ParseUint(g, 10, 32)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("%q: want name, uid or uid:gid", s)
		}
		return uint32(uid), uint32(gid), nil
	}
	var u *user.User
	if _, err := strconv.ParseUint(s, 10, 32); err == nil {
		u, err = user.LookupId(s)
		if err != nil {
			return 0, 0, err
		}
	} else if u, err = user.Lookup(s); err != nil {
		return 0, 0, err
	}
	id, err1 := strconv.ParseUint(u.Uid, 10, 32)
	g, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("user %q has uid %q, gid %q", s, u.Uid, u.Gid)
	}
	return uint32(id), uint32(g), nil
}

// canSetUser reports whether this process may set another uid and gid.
func canSetUser() bool {
	if os.Geteuid() == 0 {
		return true
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_SETUID) != 0 && caps&(1<<unix.CAP_SETGID) != 0
		}
	}
	return false
}

// workerEnvironment is what a worker keeps of kerfd's environment: what
// the CUDA driver and the Go runtime read. Tokens, paths into the state
// directory and anything else kerfd was given stay behind.
var workerEnvironment = []string{
	"LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "CUDA_CACHE_DISABLE",
	"GOTRACEBACK", "GORACE", "GOCOVERDIR", "TZ",
}

// environ is a worker's environment, from kerfd's. With the test-only
// kerfenv.TestAllowShimDriver, where the worker's driver is Kerf's own
// shim, the shim's KERF_* settings go along too.
func workerEnviron(parent []string) []string {
	env := []string{workerEnv + "=1"}
	shimDriver := slices.Contains(parent, kerfenv.TestAllowShimDriver+"=1")
	for _, kv := range parent {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(workerEnvironment, k) || shimDriver && strings.HasPrefix(k, "KERF_") && k != workerEnv {
			env = append(env, kv)
		}
	}
	return env
}

// command is a worker's command, files its descriptors from 3 on.
func (j workerJail) command(exe string, files []*os.File) *exec.Cmd {
	cmd := exec.Command(exe)
	cmd.Env = workerEnviron(os.Environ())
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: j.cred}
	return cmd
}

// applyLimits sets this process's resource limits, soft and hard. A
// worker calls it on reading its spec, before it opens the backend or
// reads a byte of its tenant's. (kerfd cannot set them from outside: that
// takes CAP_SYS_RESOURCE once the worker is another user.)
func applyLimits(limits []workerLimit) error {
	var errs []error
	for _, l := range limits {
		r := unix.Rlimit{Cur: l.Value, Max: l.Value}
		if err := unix.Setrlimit(l.Resource, &r); err != nil {
			errs = append(errs, fmt.Errorf("%s limit: %w", l.Name, err))
		}
	}
	return errors.Join(errs...)
}

// confineSelf is what a worker sets on itself before it reads its spec:
// no descriptor beyond those worker.go lists that kerfd leaked (one
// opened without close-on-exec by a C library), no capabilities (kerfd's
// ambient ones would pass exec), no new privileges for it
// or anything it runs (PR_SET_NO_NEW_PRIVS), not dumpable, so that
// another worker of the same user cannot attach to it or read its
// memory, and a filter of system calls it never makes.
func confineSelf() error {
	if err := closeInherited(fdShm + 1); err != nil {
		return err
	}
	if err := dropCapabilities(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("dumpable: %w", err)
	}
	return seccomp.LoadFilter(workerSyscallFilter)
}

// dropCapabilities empties the calling thread's ambient, inheritable,
// permitted and effective capabilities. A kerfd given CAP_SETUID and
// CAP_SETGID as ambient capabilities (the image's unit) passes them
// through exec to a worker that is not root; kept, they would let the
// worker switch back to kerfd's user and read the state directory.
// Capabilities belong to each thread, and the Go runtime has started
// others by now: the syscall filter refuses the set*id and capset calls
// on every thread, which is what keeps the worker's user its own.
func dropCapabilities() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var none [2]unix.CapUserData
	if err := unix.Capset(&hdr, &none[0]); err != nil {
		return fmt.Errorf("dropping capabilities: %w", err)
	}
	return nil
}

// workerSyscallFilter refuses (EPERM), on every thread, the system calls
// a worker never makes and an attacker in one would: reaching into other
// processes (ptrace, process_vm_*), namespaces and mounts, kernel modules,
// kexec and eBPF, keyrings, perf events, userfaultfd, file handles, the
// clock, host name and swap, and changing user or capabilities. Everything else is allowed: the Go
// runtime, the emulator and the CUDA driver need no list of what they
// use.
var workerSyscallFilter = seccomp.Filter{
	NoNewPrivs: true,
	Flag:       seccomp.FilterFlagTSync,
	Policy: seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{{
			Action: seccomp.ActionErrno,
			Names: []string{
				"ptrace", "process_vm_readv", "process_vm_writev",
				"unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
				"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf",
				"keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd",
				"open_by_handle_at", "name_to_handle_at", "acct", "quotactl",
				"settimeofday", "clock_settime", "adjtimex", "sethostname", "setdomainname",
				"reboot", "swapon", "swapoff",
				// Changing user or capabilities: a worker keeps the
				// identity it started with, on every thread.
				"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
				"setfsuid", "setfsgid", "setgroups", "capset",
			},
		}},
	},
}

// closeInherited closes the descriptors from first on that came through
// exec: those without close-on-exec. Every descriptor this process
// opened itself has the flag (Go sets it), so none of them is touched.
func closeInherited(first int) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing descriptors: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
	return nil
}

// largestMemory is the memory of the largest device.
func largestMemory(devices []gpu.DeviceInfo) uint64 {
	var m uint64
	for _, d := range devices {
		m = max(m, d.TotalMem)
	}
	return m
}
