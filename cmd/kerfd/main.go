// Command kerfd is the Kerf appliance daemon. It is a thin shell around
// package appliance.
//
//	kerfd [--config FILE]                      serve
//	kerfd --version                            print the version
//	kerfd init                                 create identity and first token
//	kerfd tokens issue [--memory SIZE] [--out FILE] TENANT
//	kerfd tokens revoke TENANT
//	kerfd tokens list
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kerf-edge/kerf/appliance"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/buildinfo"
	"github.com/kerf-edge/kerf/internal/cli"
	"github.com/kerf-edge/kerf/profiles/client"
)

func main() {
	if appliance.IsWorker() {
		os.Exit(appliance.RunWorker())
	}
	cli.Exit("kerfd", run(os.Args[1:], os.Stdout))
}

const usage = `usage:
  kerfd [--config FILE]                                  run the appliance
  kerfd --version                                        print kerfd's version
  kerfd init                                             create the state: identity, first token
  kerfd tokens issue [--memory SIZE] [--out FILE] TENANT issue a tenant's token, replacing its earlier ones; write its bundle
  kerfd tokens revoke TENANT                             revoke a tenant's tokens
  kerfd tokens list                                      list tokens
Every form takes --config FILE; KERF_* variables override the config.
The tokens commands are kerf's (kerf tokens …), on the state directory
instead of through the operator API. kerfd writes the default tenant's
bundle and the admin token to its state directory, and copies them to
$XDG_CONFIG_HOME/kerf (default ~/.config/kerf), where kerf looks.
`

// run runs kerfd with args; the tokens and init forms write what the
// operator reads to out.
func run(args []string, out io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "tokens", "token":
			return tokensCmd(args[1:], out)
		case "init":
			return initCmd(args[1:], out)
		case "version":
			fmt.Fprintln(out, "kerfd", buildinfo.Version())
			return nil
		}
	}
	cmd := cli.New("kerfd", "[--config FILE] | --version | init | tokens ...", "")
	cmd.Stdout = out
	cfgPath := cmd.String("config", "", "configuration file (YAML)")
	version := cmd.Bool("version", false, "print kerfd's version and exit")
	if cli.AskedForHelp(args) {
		fmt.Fprint(out, usage)
		return cli.ErrHelp
	}
	if err := cmd.Parse(args); err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(out, "kerfd", buildinfo.Version())
		return nil
	}
	if cmd.NArg() > 0 {
		return cli.Usagef("kerfd", "unexpected argument %q", cmd.Arg(0))
	}
	cfg, err := loadConfig(*cfgPath)
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

// loadConfig is kerfd's configuration, with the user's directory where
// kerf looks for the default bundle and the admin token.
func loadConfig(path string) (appliance.Config, error) {
	cfg, err := appliance.LoadConfig(path, os.Environ())
	cfg.UserDir = auth.UserDir()
	return cfg, err
}

// tokenCommands are kerfd's tokens subcommands; their names, flags and
// messages are kerf tokens'.
var tokenCommands = map[string]struct {
	use, summary string
	run          func(cfg appliance.Config, cmd *cli.Command, out io.Writer) error
}{
	"issue":  {"[--config FILE] [--memory SIZE] [--out FILE] TENANT", "issue a token for TENANT, replacing (revoking) its earlier ones, and write its bundle", issueCmd},
	"revoke": {"[--config FILE] TENANT", "revoke every token of TENANT; a running kerfd ends its sessions", revokeCmd},
	"list":   {"[--config FILE]", "list issued tokens (never the tokens themselves)", listCmd},
}

func tokensCmd(args []string, out io.Writer) error {
	if len(args) == 0 || cli.AskedForHelp(args) {
		fmt.Fprint(out, usage)
		if len(args) == 0 {
			return cli.Usagef("kerfd tokens", "want issue, revoke or list")
		}
		return cli.ErrHelp
	}
	tc, ok := tokenCommands[args[0]]
	if !ok {
		return cli.Usagef("kerfd tokens", "unknown command %q: want issue, revoke or list", args[0])
	}
	cmd := cli.New("kerfd tokens "+args[0], tc.use, tc.summary)
	cmd.Stdout = out
	cfgPath := cmd.String("config", "", "configuration file (YAML)")
	if args[0] == "issue" {
		client.TokenIssueFlags(cmd)
	}
	if err := cmd.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	return tc.run(cfg, cmd, out)
}

func issueCmd(cfg appliance.Config, cmd *cli.Command, out io.Writer) error {
	tenant, memory, path, err := client.IssueArgs(cmd)
	if err != nil {
		return err
	}
	path, replaced, err := appliance.IssueOffline(cfg, tenant, memory, path)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, client.IssuedLine(tenant, path, replaced))
	if tenant == "default" {
		// kerf's copy of the default bundle follows the new token.
		if _, err := appliance.PublishUserCopies(cfg); err != nil {
			return fmt.Errorf("the copy of the default bundle for kerf: %w", err)
		}
	}
	return nil
}

func revokeCmd(cfg appliance.Config, cmd *cli.Command, out io.Writer) error {
	if cmd.NArg() != 1 {
		return cli.Usagef(cmd.Name(), "want one TENANT")
	}
	n, err := appliance.RevokeOffline(cfg, cmd.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintln(out, client.RevokedLine(cmd.Arg(0), n))
	return nil
}

func listCmd(cfg appliance.Config, cmd *cli.Command, out io.Writer) error {
	if cmd.NArg() > 0 {
		return cli.Usagef(cmd.Name(), "unexpected argument %q", cmd.Arg(0))
	}
	recs, err := appliance.ListTokens(cfg)
	if err != nil {
		return err
	}
	return client.WriteTokenTable(out, recs)
}

// initCmd prepares the state directory and tells the operator what to
// keep: the certificate fingerprint, the admin token (shown once, on out
// only: the image's first-boot unit sends it to the console, never the
// journal) and where the first tenant's bundle is. Tenant tokens are
// never printed; they stay in their bundle files.
func initCmd(args []string, out io.Writer) error {
	cmd := cli.New("kerfd init", "[--config FILE]", "create the state directory: TLS identity, the first tenant's bundle, the admin token")
	cmd.Stdout = out
	cfgPath := cmd.String("config", "", "configuration file (YAML)")
	if err := cmd.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	path, fp, err := appliance.Init(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "kerfd certificate fingerprint: %s\n", fp)
	if bfp, ok, err := cfg.BrokerFingerprint(); err != nil {
		return err
	} else if ok {
		fmt.Fprintf(out, "broker certificate fingerprint: %s\n", bfp)
	}
	if _, afp, ok, err := cfg.HTTPCert(); err != nil {
		return err
	} else if ok {
		fmt.Fprintf(out, "operator API certificate fingerprint: %s (https; kept in %s for kerf)\n", afp, cfg.APIFingerprintPath())
	}
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
	if wrote, err := appliance.PublishUserCopies(cfg); err != nil {
		return fmt.Errorf("copies for kerf: %w", err)
	} else if len(wrote) > 0 {
		fmt.Fprintf(out, "copies for kerf, for this user: %v\n", wrote)
	}
	return nil
}
