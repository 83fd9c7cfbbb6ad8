package kerfdbench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu/emu/kernels"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/internal/tenantkit"
	"github.com/kerf-edge/kerf/transport"
)

// InterceptOptions size `kerf bench intercept`.
type InterceptOptions struct {
	Launches int    // kernels per run (default 100,000)
	Source   string // the Kerf source tree, for the C program (default ".")
	ShimDir  string // directory holding libcuda.so.1
	Progress io.Writer
}

// InterceptResult is one path's launch rate through the shim and
// through the Go transport client, measured in the same run against the
// same kerfd.
type InterceptResult struct {
	Path         string  `json:"path"`
	Launches     int     `json:"launches"`
	ShimPerSec   float64 `json:"shim_launches_per_s"`
	RawPerSec    float64 `json:"raw_client_launches_per_s"`
	Ratio        float64 `json:"ratio"`
	ShimSubmitUs float64 `json:"shim_submit_us_per_launch"`
}

// RunIntercept starts a kerfd on the emulated GPU and, over the local
// path and over QUIC, times a C program launching small kernels through
// the shim against the same calls made with the transport client.
func RunIntercept(ctx context.Context, o InterceptOptions) ([]InterceptResult, error) {
	if o.Launches == 0 {
		o.Launches = 100000
	}
	if o.Source == "" {
		o.Source = "."
	}
	src := filepath.Join(o.Source, "intercept", "bench", "launches.c")
	if _, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("run from the Kerf source tree (or pass --src): %w", err)
	}
	if _, err := os.Stat(filepath.Join(o.ShimDir, "libcuda.so.1")); err != nil {
		return nil, fmt.Errorf("no shim in %s: run make build: %w", o.ShimDir, err)
	}
	dir, err := os.MkdirTemp("", "kerf-bench-intercept")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	prog := filepath.Join(dir, "launches")
	gcc := exec.CommandContext(ctx, "gcc", "-O2", "-I"+filepath.Join(o.Source, "abi", "include"),
		"-I"+filepath.Join(o.Source, "intercept", "testdata"), "-o", prog, src, "-L"+o.ShimDir, "-l:libcuda.so.1")
	if out, err := gcc.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the benchmark program: %v\n%s", err, out)
	}
	ptx := filepath.Join(dir, "vadd.ptx")
	if err := os.WriteFile(ptx, kernels.PTX("vadd"), 0o644); err != nil {
		return nil, err
	}

	stop, bundlePath, err := startWithBundle(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer stop()
	b, err := auth.ReadBundle(bundlePath)
	if err != nil {
		return nil, err
	}

	var out []InterceptResult
	for _, via := range []string{"unix", "quic"} {
		r := InterceptResult{Path: via, Launches: o.Launches}
		cmd := exec.CommandContext(ctx, prog, ptx, fmt.Sprint(o.Launches))
		cmd.Env = append(os.Environ(), kerfenv.Bundle+"="+bundlePath, kerfenv.Via+"="+via, "LD_LIBRARY_PATH="+o.ShimDir)
		res, err := cmd.CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("%s: the benchmark program failed: %v\n%s", via, err, res)
		}
		var n int
		var submit, total float64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(res)), "launches %d submit_s %f total_s %f", &n, &submit, &total); err != nil {
			return out, fmt.Errorf("%s: unexpected output %q", via, res)
		}
		r.ShimPerSec, r.ShimSubmitUs = float64(n)/total, submit/float64(n)*1e6
		if r.RawPerSec, err = rawLaunches(ctx, b, via, o.Launches); err != nil {
			return out, fmt.Errorf("%s: raw client: %w", via, err)
		}
		r.Ratio = r.ShimPerSec / r.RawPerSec
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "%s: shim %.0f launches/s, raw client %.0f/s (%.2f×)\n", via, r.ShimPerSec, r.RawPerSec, r.Ratio)
		}
		out = append(out, r)
	}
	return out, nil
}

// rawLaunches makes the benchmark program's calls with the transport
// client: the baseline without the shim.
func rawLaunches(ctx context.Context, b auth.Bundle, via string, n int) (float64, error) {
	opts := transport.Options{Token: []byte(b.Token), Name: "bench raw"}
	var c *transport.Client
	var err error
	if via == "unix" {
		c, err = transport.DialUnix(ctx, b.Socket, opts)
	} else {
		fp, ferr := transport.ParseFingerprint(b.Fingerprint)
		if ferr != nil {
			return 0, ferr
		}
		c, err = transport.DialQUIC(ctx, b.QUIC, transport.QUICOptions{Options: opts, Fingerprint: fp})
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	fn, layout, err := tenantkit.LoadKernel(c, "vadd")
	if err != nil {
		return 0, err
	}
	buf, err := c.MemAlloc(256)
	if err != nil {
		return 0, err
	}
	params := make([]byte, layout[3].Offset+layout[3].Size)
	for i := range 3 {
		binary.LittleEndian.PutUint64(params[layout[i].Offset:], buf)
	}
	cfg := abi.LaunchConfig{Grid: abi.Dim3{X: 1, Y: 1, Z: 1}, Block: abi.Dim3{X: 32, Y: 1, Z: 1}}
	if err := c.LaunchKernel(fn, cfg, 0, params); err != nil {
		return 0, err
	}
	if err := c.Synchronize(); err != nil {
		return 0, err
	}
	t0 := time.Now()
	for range n {
		if err := c.LaunchKernel(fn, cfg, 0, params); err != nil {
			return 0, err
		}
	}
	if err := c.Synchronize(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}
