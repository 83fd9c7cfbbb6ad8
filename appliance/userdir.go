package appliance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/atomicfile"
)

// AdminTokenName is the admin token's file, in the state directory and in
// Config.UserDir.
const AdminTokenName = "admin-token"

// lockName is the state directory's lock file: the kerfd serving the
// directory holds an exclusive flock on it, and writes its pid in it.
const lockName = "kerfd.lock"

// lockState takes the state directory's lock, before anything in the
// directory changes: a second kerfd on the same directory refuses here.
// The lock lasts until the returned file is closed (or kerfd exits).
func lockState(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					holder = fmt.Sprintf("kerfd pid %d", pid)
				}
			}
			return nil, fmt.Errorf("state directory %s is in use by %s (it holds %s); stop it first, or give this kerfd another state_dir", dir, holder, path)
		}
		return nil, fmt.Errorf("state directory lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// PublishUserCopies copies the default tenant's bundle and the admin
// token from the state directory to cfg.UserDir (auth.UserBundleName and
// AdminTokenName there, mode 0600), where the command line looks for them,
// unless they are there already. It returns the files it wrote.
func PublishUserCopies(cfg Config) ([]string, error) {
	if cfg.UserDir == "" {
		return nil, nil
	}
	var wrote []string
	bundle := filepath.Join(cfg.UserDir, auth.UserBundleName)
	ok, err := auth.CopyBundle(filepath.Join(cfg.BundleDir(), "default.json"), bundle)
	if err != nil {
		return wrote, err
	}
	if ok {
		wrote = append(wrote, bundle)
	}
	tok, err := os.ReadFile(cfg.AdminTokenPath())
	if errors.Is(err, os.ErrNotExist) {
		return wrote, nil
	}
	if err != nil {
		return wrote, err
	}
	admin := filepath.Join(cfg.UserDir, AdminTokenName)
	if old, err := os.ReadFile(admin); err == nil && bytes.Equal(old, tok) {
		return wrote, nil
	}
	if err := os.MkdirAll(cfg.UserDir, 0o700); err != nil {
		return wrote, err
	}
	if err := atomicfile.Write(admin, tok, 0o600); err != nil {
		return wrote, err
	}
	return append(wrote, admin), nil
}

// adminTokenFiles are the files kerfd keeps the admin token in: the state
// directory's and, when set, the user directory's copy.
func adminTokenFiles(cfg Config) []string {
	files := []string{cfg.AdminTokenPath()}
	if cfg.UserDir != "" {
		files = append(files, filepath.Join(cfg.UserDir, AdminTokenName))
	}
	return files
}
