// Command kerf is the tenant and operator command line. It is a thin shell
// over the transport client, the launcher and the operator API's client.
// The benchmarks and the demo are kerf-bench, which kerf runs from beside
// itself (or from $PATH), so that kerf does not link the daemon.
//
//	kerf run [-n GPUS] [-p FRACTION | --memory BYTES] [--server ADDR] [--token FILE] [--timeout D] -- CMD ARGS…
//	kerf info  [--token FILE] [--via unix|quic]
//	kerf bench transport [--json] [--bulk SIZE]
//	kerf bench emu [--json] [--time D]
//	kerf bench ingest [--json] [--time D] [--topics N] [--publishers N] [--inflight N] [--via nats|mqtt] [--rate N] [--oscillate D]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/intercept/launcher"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/profiles/client"
	"github.com/kerf-edge/kerf/transport"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kerf:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  kerf run [-n GPUS] [-p FRACTION | --memory BYTES] [--server ADDR] [--token FILE] [--timeout D] -- CMD ARGS...
                                                  run CMD on slices of the appliance's GPUs
  kerf info [--token FILE] [--via unix|quic]      show the device a token reaches
  kerf bench transport [--json] [--bulk SIZE]     transport against raw baselines
  kerf bench emu [--json] [--time D]              PTX emulator speed
  kerf bench intercept [--json] [--launches N]    launch rate through the shim vs the Go client
  kerf bench runtime [--json] [--launches N] [--copy SIZE] [--rounds N]
                                                  a CUDA-runtime program (nvcc) vs the driver API and a raw Unix stream
  kerf bench slicer [--json] [--tenants N] [--rounds N] [--profiles A,B,...]
                                                  live re-slicing under running tenants
  kerf demo                                       a tour: tenants, then 20 → 10 → mixed slices
  kerf bench shares [--json] [--time D] [--shares 0.3,0.7] [--kernel N] [--backend emulated|cuda]
                                                  compute shares under contention, per 1 s window
  kerf bench ingest [--json] [--time D] [--topics N] [--publishers N] [--inflight N] [--via nats|mqtt] [--rate N] [--oscillate D]
                                                  MQTT devices → embedded broker → decisions
With KERF_CPUPROFILE=FILE, a benchmark also writes a CPU profile of its process to FILE.
Operator commands, through the REST API ($KERF_API, default http://127.0.0.1:7080,
and $KERF_ADMIN_TOKEN):
`+client.CLIUsage)
}

func run(args []string) error {
	if len(args) == 0 {
		usage()
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "info":
		return infoCmd(args[1:])
	case "run":
		return runCmd(args[1:])
	case "demo":
		return execBench(args)
	case "bench":
		if len(args) < 2 {
			usage()
			return fmt.Errorf("bench: name a benchmark")
		}
		return execBench(args[1:])
	case "profiles", "slices", "smi", "tokens", "devices":
		// Operator commands go through the REST API ($KERF_API, $KERF_ADMIN_TOKEN).
		return client.RunCLI(context.Background(), client.New("", ""), args, os.Stdout)
	case "help", "-h", "--help":
		usage()
		return nil
	}
	usage()
	return fmt.Errorf("unknown command %q", args[0])
}

// defaultBundle is where `make run` leaves the first tenant's bundle.
func defaultBundle() string {
	if p := os.Getenv(kerfenv.Token); p != "" {
		return p
	}
	return "state/bundles/default.json"
}

// dial opens a session as a bundle describes: the local socket when it
// exists (a tenant on the appliance), QUIC otherwise.
func dial(ctx context.Context, b auth.Bundle, via string, device int) (*transport.Client, string, error) {
	opts := transport.Options{Token: []byte(b.Token), Device: device, Name: "kerf"}
	if via == "" {
		via = b.DefaultVia(nil)
	}
	if via == "unix" {
		c, err := transport.DialUnix(ctx, b.Socket, opts)
		return c, via, err
	}
	fp, err := transport.ParseFingerprint(b.Fingerprint)
	if err != nil {
		return nil, via, err
	}
	c, err := transport.DialQUIC(ctx, b.QUIC, transport.QUICOptions{Options: opts, Fingerprint: fp})
	return c, via, err
}

func infoCmd(args []string) error {
	fs := flag.NewFlagSet("kerf info", flag.ContinueOnError)
	tokenPath := fs.String("token", defaultBundle(), "token bundle")
	via := fs.String("via", "", "unix or quic (default: unix when the socket is here)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := auth.ReadBundle(*tokenPath)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, path, err := dial(ctx, b, *via, 0)
	if err != nil {
		return err
	}
	defer c.Close()
	t0 := time.Now()
	free, total, err := c.MemGetInfo()
	if err != nil {
		return err
	}
	rtt := time.Since(t0)
	d := c.Device
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "device\t%s\n", d.Name)
	fmt.Fprintf(tw, "emulated\t%v\n", d.Emulated)
	fmt.Fprintf(tw, "compute capability\t%d.%d\n", d.CCMajor, d.CCMinor)
	fmt.Fprintf(tw, "multiprocessors\t%d\n", d.SMs)
	fmt.Fprintf(tw, "slice memory\t%s (%s free)\n", units.FormatBytes(total), units.FormatBytes(free))
	fmt.Fprintf(tw, "path\t%s\n", path)
	fmt.Fprintf(tw, "round trip\t%v\n", rtt.Round(time.Microsecond))
	return tw.Flush()
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("kerf run", flag.ContinueOnError)
	n := fs.Int("n", 1, "slices, each on a distinct GPU")
	p := fs.Float64("p", 0, "fraction of a GPU per slice, in (0, 1]")
	memory := fs.String("memory", "", "memory per slice instead of -p (e.g. 4GiB)")
	server := fs.String("server", "", "appliance QUIC address (default: the token bundle's)")
	token := fs.String("token", defaultBundle(), "token bundle")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to retry while the appliance is full")
	via := fs.String("via", "", "unix or quic (default: unix when the appliance is this machine)")
	model := fs.String("model", "", "only GPUs of this model")
	minMem := fs.String("min-memory", "", "only GPUs with at least this much memory")
	shim := fs.String("shim", launcher.DefaultShimDir(), "directory holding Kerf's libcuda.so.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		usage()
		return fmt.Errorf("run: no command; put it after --")
	}
	o := launcher.Options{GPUs: *n, Fraction: *p, Bundle: *token, Server: *server, Via: *via, Timeout: *timeout,
		Model: *model, ShimDir: *shim, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	var err error
	if *memory != "" {
		if o.Memory, err = units.ParseBytes(*memory); err != nil {
			return err
		}
	}
	if *minMem != "" {
		if o.MinMemory, err = units.ParseBytes(*minMem); err != nil {
			return err
		}
	}
	code, err := launcher.Run(context.Background(), o, fs.Args())
	if err != nil {
		return err
	}
	os.Exit(code)
	return nil
}

// benchBinary is the name of the benchmarks' binary, built next to kerf.
const benchBinary = "kerf-bench"

// execBench replaces this process with kerf-bench ARGS, found beside this
// executable or else on $PATH.
func execBench(args []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	path, err := findBench(filepath.Dir(self))
	if err != nil {
		return err
	}
	return syscall.Exec(path, append([]string{path}, args...), os.Environ())
}

// findBench finds kerf-bench in dir, else on $PATH.
func findBench(dir string) (string, error) {
	p := filepath.Join(dir, benchBinary)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return p, nil
	}
	if p, err := exec.LookPath(benchBinary); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("the benchmarks and the demo are in %s, which is neither beside kerf (in %s) nor on $PATH: build it with make build", benchBinary, dir)
}
