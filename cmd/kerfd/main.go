// Command kerfd is the Kerf appliance daemon. It is a thin shell around
// package appliance.
//
//	kerfd [--config FILE]                      serve
//	kerfd init                                 create identity and first token
//	kerfd token issue NAME [--memory SIZE] [--out FILE]
//	kerfd token revoke NAME
//	kerfd token list
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/appliance"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/units"
)

func main() {
	if appliance.IsWorker() {
		os.Exit(appliance.RunWorker())
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kerfd:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  kerfd [--config FILE]                                  run the appliance
  kerfd init                                             create the state: identity, first token
  kerfd token issue NAME [--memory SIZE] [--out FILE]    issue a tenant token bundle
  kerfd token revoke NAME                                revoke a tenant's tokens
  kerfd token list                                       list tokens
Every form takes --config FILE; KERF_* variables override the config.
`)
}

// run runs kerfd with args; the token and init forms write what the
// operator reads to out.
func run(args []string, out io.Writer) error {
	if len(args) > 0 && args[0] == "token" {
		return tokenCmd(args[1:], out)
	}
	if len(args) > 0 && args[0] == "init" {
		return initCmd(args[1:], out)
	}
	fs := flag.NewFlagSet("kerfd", flag.ContinueOnError)
	fs.Usage = usage
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := appliance.LoadConfig(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	log := cfg.Logger()
	appliance.ApplyRuntime(cfg.Runtime, log)
	a, err := appliance.New(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.Run(ctx)
}

func tokenCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		usage()
		return fmt.Errorf("token: want issue, revoke or list")
	}
	fs := flag.NewFlagSet("kerfd token "+args[0], flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	memory := fs.String("memory", "", "memory limit per session (e.g. 4GiB); default: the whole slice")
	out := fs.String("out", "", "bundle path (default <state>/bundles/NAME.json)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := appliance.LoadConfig(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	switch args[0] {
	case "issue", "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("token %s: want one tenant NAME", args[0])
		}
	}
	if args[0] == "issue" {
		if err := auth.CheckTenantName(fs.Arg(0)); err != nil {
			return fmt.Errorf("token issue: %w", err)
		}
	}
	switch args[0] {
	case "issue":
		var limit uint64
		if *memory != "" {
			if limit, err = units.ParseBytes(*memory); err != nil {
				return err
			}
		}
		path, err := appliance.IssueOffline(cfg, fs.Arg(0), limit, *out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "issued a token for %s; bundle written to %s (the token is not stored elsewhere)\n", fs.Arg(0), path)
		return nil
	case "revoke":
		n, err := appliance.RevokeOffline(cfg, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %d token(s) of %s\n", n, printable(fs.Arg(0)))
		return nil
	case "list":
		recs, err := appliance.ListTokens(cfg)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TENANT\tMEMORY LIMIT\tISSUED\tREVOKED")
		for _, r := range recs {
			limit, revoked := "slice", "-"
			if r.MemLimit > 0 {
				limit = units.FormatBytes(r.MemLimit)
			}
			if !r.Revoked.IsZero() {
				revoked = r.Revoked.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(r.Tenant), limit, r.Issued.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	}
	usage()
	return fmt.Errorf("token: unknown command %q", args[0])
}

// printable is a tenant name as the terminal should show it: as is when it
// follows auth's rule, quoted with escapes otherwise (a name written into
// the token file by hand or before the rule).
func printable(name string) string {
	if auth.CheckTenantName(name) == nil {
		return name
	}
	return strconv.Quote(name)
}

// initCmd prepares the state directory and tells the operator what to
// keep: the certificate fingerprint, the admin token (shown once, on out
// only: the image's first-boot unit sends it to the console, never the
// journal) and where the first tenant's bundle is. Tenant tokens are
// never printed; they stay in their bundle files.
func initCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("kerfd init", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := appliance.LoadConfig(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	path, fp, err := appliance.Init(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "kerfd certificate fingerprint: %s\n", fp)
	if path == "" {
		fmt.Fprintln(out, "already initialised; no new token issued")
		return nil
	}
	admin, err := appliance.InitAdmin(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "operator API admin token, shown once: %s (a copy is in %s, mode 0600)\n", admin, cfg.AdminTokenPath())
	fmt.Fprintf(out, "first tenant bundle (tenant default): %s (mode 0600; its token is not shown or stored elsewhere)\n", path)
	return nil
}
