package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kerf-edge/kerf/internal/atomicfile"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/transport"
)

// A lease that outlives one command (`kerf request`, Bitfusion's
// request_gpus) is held by a small process of its own, the holder: it
// keeps the lease stream open, writes a lease file that later `kerf run
// --lease` calls read, and lets go when `kerf release` stops it, or when
// kerfd ends the lease (idle timeout, revocation). Every run in the lease
// shares its slices, and their memory.

// LeaseFile describes a held lease: what a run in it needs.
type LeaseFile struct {
	Lease   string   `json:"lease"`
	Devices []int    `json:"devices"`
	Memory  []uint64 `json:"memory"` // each slice's, by device
	Bundle  string   `json:"bundle"` // absolute path
	Via     string   `json:"via"`
	Server  string   `json:"server,omitempty"`
	Holder  int      `json:"holder"` // the holding process
}

// environ is what a program running in the lease needs to find it.
func (lf LeaseFile) environ() []string {
	devs := make([]string, len(lf.Devices))
	for i, d := range lf.Devices {
		devs[i] = strconv.Itoa(d)
	}
	env := []string{kerfenv.Bundle + "=" + lf.Bundle, kerfenv.Lease + "=" + lf.Lease, kerfenv.Devices + "=" + strings.Join(devs, ","), kerfenv.Via + "=" + lf.Via}
	if lf.Server != "" {
		env = append(env, kerfenv.Server+"="+lf.Server)
	}
	return env
}

// LeaseDir is where lease files live: $KERF_LEASE_DIR, else
// $XDG_RUNTIME_DIR/kerf/leases, else ~/.kerf/leases.
func LeaseDir() string {
	if d := os.Getenv(kerfenv.LeaseDir); d != "" {
		return d
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "kerf", "leases")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), fmt.Sprintf("kerf-%d", os.Getuid()), "leases")
	}
	return filepath.Join(home, ".kerf", "leases")
}

// leasePath is the file of lease id, or ref itself when it names a file.
func leasePath(ref string) (string, error) {
	if strings.ContainsRune(ref, filepath.Separator) || strings.HasSuffix(ref, ".json") {
		return ref, nil
	}
	if ref == "" || strings.ContainsAny(ref, "\x00.") {
		return "", fmt.Errorf("%q is neither a lease ID nor a lease file", ref)
	}
	return filepath.Join(LeaseDir(), ref+".json"), nil
}

// ReadLease reads the lease file of ref (a lease ID, or a file's path)
// and checks that its holder still runs.
func ReadLease(ref string) (LeaseFile, error) {
	var lf LeaseFile
	path, err := leasePath(ref)
	if err != nil {
		return lf, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return lf, fmt.Errorf("no lease %s here (%s): it was released, reclaimed after idling, or never requested", ref, path)
	}
	if err != nil {
		return lf, err
	}
	if err := json.Unmarshal(b, &lf); err != nil {
		return lf, fmt.Errorf("%s: %w", path, err)
	}
	if lf.Lease == "" || len(lf.Devices) == 0 || lf.Holder <= 0 {
		return lf, fmt.Errorf("%s: not a lease file", path)
	}
	if !alive(lf.Holder) {
		os.Remove(path)
		return lf, fmt.Errorf("lease %s has ended: its holder (process %d) is gone", lf.Lease, lf.Holder)
	}
	return lf, nil
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// Hold reserves the slices opts asks for and keeps them until ctx ends or
// kerfd ends the lease, with a lease file in LeaseDir meanwhile. ready is
// called once the file is written; its error ends the hold. Hold returns
// nil when ctx ended it, and an error saying why otherwise.
func Hold(ctx context.Context, opts Options, ready func(LeaseFile, string) error) error {
	lease, lf, err := Open(ctx, opts, "kerf request")
	if err != nil {
		return err
	}
	defer lease.Close()
	path, err := leasePath(lf.Lease)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(lf, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	defer os.Remove(path)
	if err := ready(lf, path); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case <-lease.Done():
		return fmt.Errorf("lease %s ended by the appliance (idle timeout, revocation or eviction)", lf.Lease)
	}
}

// RunIn runs argv in the held lease ref (see ReadLease), as Run does in a
// lease of its own; the lease outlives the program.
func RunIn(opts Options, ref string, argv []string) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("no command to run")
	}
	lf, err := ReadLease(ref)
	if err != nil {
		return 0, err
	}
	env := lf.environ()
	if opts.Memory != 0 {
		env = append(env, kerfenv.Memory+"="+strconv.FormatUint(opts.Memory, 10))
	}
	return runChild(command(opts, argv, env))
}

// releaseWait bounds how long Release waits for the holder to let go.
const releaseWait = 10 * time.Second

// Release ends the held lease ref: its holder closes the lease, and kerfd
// ends the sessions still running in it before its slices are free.
func Release(ref string) (LeaseFile, error) {
	lf, err := ReadLease(ref)
	if err != nil {
		return lf, err
	}
	if err := syscall.Kill(lf.Holder, syscall.SIGTERM); err != nil {
		return lf, fmt.Errorf("stopping the holder of lease %s (process %d): %w", lf.Lease, lf.Holder, err)
	}
	deadline := time.Now().Add(releaseWait)
	for alive(lf.Holder) {
		if time.Now().After(deadline) {
			return lf, fmt.Errorf("the holder of lease %s (process %d) is still there after %v", lf.Lease, lf.Holder, releaseWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return lf, nil
}

// Leases lists the lease files in LeaseDir whose holders run.
func Leases() ([]LeaseFile, error) {
	names, err := filepath.Glob(filepath.Join(LeaseDir(), "*.json"))
	if err != nil {
		return nil, err
	}
	var out []LeaseFile
	for _, n := range names {
		if lf, err := ReadLease(n); err == nil {
			out = append(out, lf)
		}
	}
	return out, nil
}

// ListGPUs asks the appliance which GPUs the bundle's tenant may use and
// what is free on them.
func ListGPUs(ctx context.Context, opts Options) (transport.Capacity, error) {
	d, err := resolve(opts)
	if err != nil {
		return transport.Capacity{}, err
	}
	o := transport.Options{Token: []byte(d.bundle.Token), Name: "kerf list-gpus"}
	if d.via == "unix" {
		return transport.ListGPUsUnix(ctx, d.bundle.Socket, o)
	}
	fp, err := transport.ParseFingerprint(d.targets[0].fp)
	if err != nil {
		return transport.Capacity{}, err
	}
	return transport.ListGPUsQUIC(ctx, d.quicAddr, transport.QUICOptions{Options: o, Fingerprint: fp})
}
