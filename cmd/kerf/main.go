// Command kerf is the tenant and operator command line. It is a thin shell
// over the transport client, the launcher and the operator API's client.
// The benchmarks and the demo are kerf-bench, which kerf runs from beside
// itself (or from $PATH), so that kerf does not link the daemon.
//
//	kerf run [-n GPUS] [-p FRACTION | --memory SIZE] [--server ADDR] [--token FILE] [--timeout D] -- CMD ARGS…
//	kerf info [--token FILE] [--via unix|quic] [--server ADDR]
//	kerf version
//	kerf bench NAME [FLAGS], kerf demo
//	kerf profiles|slices|smi|tokens|devices|pool …   (operator, through the REST API)
//
// The dispatch is the commands table: a command is one line there.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/intercept/launcher"
	"github.com/kerf-edge/kerf/internal/buildinfo"
	"github.com/kerf-edge/kerf/internal/cli"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/profiles/client"
	"github.com/kerf-edge/kerf/transport"
)

func main() {
	cli.Exit("kerf", run(os.Args[1:]))
}

// command is one of kerf's commands. A command with flags prints its own
// usage for --help; the operator commands' usage is client.CLIUsage.
type command struct {
	name    string
	use     string // the arguments, after "kerf NAME"
	summary string
	run     func(args []string) error
}

// commands are kerf's commands, in the order the usage lists them. A new
// command is one line in init's list.
var commands []command

func init() {
	commands = []command{
		{"run", "[-n GPUS] [-p FRACTION | --memory SIZE] [--server ADDR] [--token FILE] [--timeout D] [--lease ID] -- CMD ARGS...",
			"run CMD on slices of the appliance's GPUs (in a new lease, or one kerf request holds)", runCmd},
		{"request", "[-n GPUS] [-p FRACTION | --memory SIZE] [--server ADDR] [--token FILE] [--timeout D]",
			"hold slices for several runs; prints export KERF_LEASE=ID", requestCmd},
		{"release", "[ID | --all]", "end a lease kerf request holds (default $KERF_LEASE)", releaseCmd},
		{"list-gpus", "[--token FILE] [--via unix|quic] [--server ADDR]", "the GPUs this token may use and what is free on them", listGPUsCmd},
		{"info", "[--token FILE] [--via unix|quic] [--server ADDR]", "show the device a token reaches, and a round trip", infoCmd},
		{"version", "", "print kerf's version", versionCmd},
		{"bench", "NAME [FLAGS]", "benchmarks (kerf-bench; see kerf bench --help)", benchCmd},
		{"demo", "", "a tour: tenants, then 20 → 10 → mixed slices", demoCmd},
		{"profiles", "COMMAND", "slicing profiles (operator)", operatorCmd("profiles")},
		{"slices", "", "live slices (operator)", operatorCmd("slices")},
		{"rules", "COMMAND", "policy rules over load signals (operator)", operatorCmd("rules")},
		{"jobs", "COMMAND", "triggered jobs: programs started on a slice by load signals (operator)", operatorCmd("jobs")},
		{"smi", "", "GPUs and their slices at a glance (operator)", operatorCmd("smi")},
		{"tokens", "COMMAND", "tenant tokens and their bundles (operator)", operatorCmd("tokens")},
		{"devices", "COMMAND", "device logins of the embedded broker (operator)", operatorCmd("devices")},
		{"tenants", "COMMAND", "tenants' policies: GPU limit, idle timeout, memory cap (operator)", operatorCmd("tenants")},
		{"pool", "COMMAND", "several appliances as one pool: status, join, leave (operator)", operatorCmd("pool")},
		{holdCmd, "[FLAGS]", "(internal) the process holding a lease for kerf request", leaseHoldCmd},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kerf COMMAND [ARGS]  (kerf COMMAND --help for each)")
	fmt.Fprintln(w, "\ntenant commands:")
	for _, c := range commands {
		if !strings.Contains(c.summary, "(operator)") && c.name != holdCmd {
			fmt.Fprintf(w, "  kerf %-9s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, `
The tenant's token bundle is --token FILE, else $%s, else the first of
%s that exists
(kerfd writes the default tenant's bundle to the first at every start).
With KERF_CPUPROFILE=FILE, a benchmark also writes a CPU profile of its process to FILE.

Operator commands, through the REST API:
%s`, kerfenv.Bundle, bundlePlaces(), client.CLIUsage)
}

// bundlePlaces lists where a bundle is looked for when none is named.
func bundlePlaces() string {
	if p := auth.UserBundlePath(); p != "" {
		return p + " and " + auth.LocalBundle
	}
	return auth.LocalBundle
}

func run(args []string) error {
	if len(args) == 0 {
		usage(os.Stderr)
		return &cli.UsageError{Err: errors.New("no command")}
	}
	if cli.AskedForHelp(args) {
		usage(os.Stdout)
		return cli.ErrHelp
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:])
		}
	}
	return &cli.UsageError{Err: fmt.Errorf("unknown command %q (see kerf --help)", args[0])}
}

// newCommand is the flag set of kerf's command name, from the table.
func newCommand(name string) *cli.Command {
	for _, c := range commands {
		if c.name == name {
			return cli.New("kerf "+name, c.use, c.summary)
		}
	}
	panic("kerf: no command " + name)
}

func versionCmd(args []string) error {
	if err := newCommand("version").Parse(args); err != nil {
		return err
	}
	fmt.Println("kerf", buildinfo.Version())
	return nil
}

// operatorCmd runs an operator command through the REST API ($KERF_API,
// the admin token client.FindAdminToken finds).
func operatorCmd(name string) func([]string) error {
	return func(args []string) error {
		return client.RunCLI(context.Background(), client.New("", ""), append([]string{name}, args...), os.Stdout)
	}
}

func demoCmd(args []string) error {
	if err := newCommand("demo").Parse(args); err != nil {
		return err
	}
	return execBench(append([]string{"demo"}, args...))
}

func benchCmd(args []string) error {
	if len(args) == 0 || cli.AskedForHelp(args) {
		fmt.Print(benchUsage)
		if len(args) == 0 {
			return cli.Usagef("kerf bench", "name a benchmark")
		}
		return cli.ErrHelp
	}
	return execBench(args)
}

const benchUsage = `usage: kerf bench NAME [FLAGS]   (run by kerf-bench, from beside kerf or $PATH)
  kerf bench transport [--json] [--bulk SIZE]     transport against raw baselines
  kerf bench emu [--json] [--time D]              PTX emulator speed
  kerf bench intercept [--json] [--launches N]    launch rate through the shim vs the Go client
  kerf bench runtime [--json] [--launches N] [--copy SIZE] [--rounds N]
                                                  a CUDA-runtime program (nvcc) vs the driver API and a raw Unix stream
  kerf bench slicer [--json] [--tenants N] [--rounds N] [--profiles A,B,...]
                                                  live re-slicing under running tenants
  kerf bench shares [--json] [--time D] [--shares 0.3,0.7] [--kernel N] [--backend emulated|cuda] [--time-slicing]
                                                  compute shares under contention, per 1 s window
  kerf bench ingest [--json] [--time D] [--topics N] [--publishers N] [--inflight N] [--via nats|mqtt] [--rate N] [--oscillate D]
                                                  MQTT devices → embedded broker → decisions
  kerf bench pool [--json] [--placements N] [--placers N] [--time D] [--kerfd PATH]
                                                  a pool of 3 kerfd on loopback: placement vs a node alone, failover
`

// readBundle finds and reads the tenant's bundle (--token, $KERF_BUNDLE,
// or kerfd's copies).
func readBundle(named string) (auth.Bundle, string, error) {
	path, err := auth.FindBundle(named)
	if err != nil {
		return auth.Bundle{}, "", err
	}
	b, err := auth.ReadBundle(path)
	return b, path, err
}

// dial opens a session as a bundle describes: the local socket when it
// exists (a tenant on the appliance), QUIC otherwise (launcher.Route).
func dial(ctx context.Context, b auth.Bundle, server, via string, device int) (*transport.Client, string, error) {
	opts := transport.Options{Token: []byte(b.Token), Device: device, Name: "kerf info"}
	via, err := launcher.Route(b, server, via)
	if err != nil {
		return nil, via, err
	}
	if via == "unix" {
		c, err := transport.DialUnix(ctx, b.Socket, opts)
		return c, via, err
	}
	fp, err := transport.ParseFingerprint(b.Fingerprint)
	if err != nil {
		return nil, via, err
	}
	addr := b.QUIC
	if server != "" {
		addr = server
	}
	c, err := transport.DialQUIC(ctx, addr, transport.QUICOptions{Options: opts, Fingerprint: fp})
	return c, via, err
}

// endpointFlags declares the flags that say how a command reaches kerfd:
// --token, --via and --server.
func endpointFlags(fs *cli.Command) (token, via, server *string) {
	token = fs.String("token", "", "token bundle (default: $"+kerfenv.Bundle+", else "+bundlePlaces()+")")
	via = fs.String("via", "", "unix or quic (default: unix when the socket is here)")
	server = fs.String("server", "", "appliance QUIC address (default: the token bundle's)")
	return token, via, server
}

func infoCmd(args []string) error {
	fs := newCommand("info")
	tokenPath, via, server := endpointFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef(fs.Name(), "unexpected argument %q", fs.Arg(0))
	}
	b, _, err := readBundle(*tokenPath)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, path, err := dial(ctx, b, *server, *via, 0)
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
	fs := newCommand("run")
	options := leaseFlags(fs)
	shim := fs.String("shim", launcher.DefaultShimDir(), "directory holding Kerf's libcuda.so.1 and libnvidia-ml.so.1")
	lease := fs.String("lease", "", "run in a lease kerf request holds (its ID or file) instead of a new one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return cli.Usagef(fs.Name(), "no command; put it after --")
	}
	o, err := options()
	if err != nil {
		return err
	}
	o.ShimDir, o.Stdin, o.Stdout, o.Stderr = *shim, os.Stdin, os.Stdout, os.Stderr
	var code int
	if *lease != "" {
		code, err = launcher.RunIn(o, *lease, fs.Args())
	} else {
		code, err = launcher.Run(context.Background(), o, fs.Args())
	}
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
