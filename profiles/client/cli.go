package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/internal/cli"
	"github.com/kerf-edge/kerf/profiles/api"
)

// CLIUsage describes the commands RunCLI takes.
const CLIUsage = `  kerf profiles list                          stored slicing profiles
  kerf profiles show NAME                     one profile as JSON
  kerf profiles put FILE                      create or replace a profile from a JSON file
  kerf profiles validate NAME                 check a profile against the node
  kerf profiles apply [--dry-run] [--force] NAME
                                              re-slice the node to a profile (--force: held
                                              slices may shrink below what was granted)
  kerf rules list                             policy rules: the config file's and the API's, with their state
  kerf rules show NAME                        one rule as JSON
  kerf rules put FILE                         create or replace a rule from a YAML or JSON file (- for stdin)
  kerf rules validate FILE                    check a rule file as put would, storing nothing
  kerf rules delete NAME                      delete a rule stored through the API
  kerf jobs list                              triggered jobs, with their state and why
  kerf jobs show NAME                         one job as JSON
  kerf jobs put FILE                          create or replace a job from a YAML or JSON file (- for stdin)
  kerf jobs validate FILE                     check a job file as put would, storing nothing
  kerf jobs delete NAME                       delete a job; its instances are stopped
  kerf jobs runs NAME                         a job's state, running instances and recent runs
  kerf slices                                 live slices
  kerf smi                                    GPUs and their slices at a glance
  kerf tokens issue [--memory SIZE] [--out FILE] TENANT
                                              issue a tenant's token; write its bundle (default ./TENANT.json)
  kerf tokens revoke TENANT                   revoke a tenant's tokens
  kerf tokens list                            issued tokens (never the tokens themselves)
  kerf tenants policy NAME [--gpus N] [--idle D] [--memory SIZE]
                                              show or set a tenant's GPU limit, idle timeout and memory cap
  kerf devices add NAME                       add a broker login for a device (password shown once)
  kerf devices list                           device logins added through the API
  kerf devices remove NAME                    remove a device login; the device is disconnected
  kerf pool status                            the pool's members (up or down), quorum and leases
  kerf pool join HOST:PORT                    dial another member's cluster listener, now and at every start
  kerf pool leave NODE                        remove a member that is down from the pool
  kerf pool place [-n N] [-p FRACTION] [--memory SIZE] [--min-memory SIZE] [--model NAME] TENANT
                                              reserve slices on the first member whose GPUs fit, with room
  (the API is $KERF_API, default http://127.0.0.1:7080; the admin token is $KERF_ADMIN_TOKEN,
  else the file kerfd copies to ~/.config/kerf/admin-token, else state/admin-token; an https:// API
  is pinned by $KERF_API_FINGERPRINT, else the api-fingerprint file kerfd keeps next to the admin token)
`

// subcommand is one operator command: its flags, and what it does with
// the arguments left after them.
type subcommand struct {
	use, summary string
	flags        func(*cli.Command) // declares the flags, if any
	run          func(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error
}

// operatorCommands are RunCLI's commands by name ("tokens issue").
var operatorCommands = map[string]subcommand{
	"profiles list":     {"", "stored slicing profiles", nil, profilesList},
	"profiles show":     {"NAME", "one profile as JSON", nil, profilesShow},
	"profiles put":      {"FILE", "create or replace a profile from a JSON file", nil, profilesPut},
	"profiles validate": {"NAME", "check a profile against the node", nil, profilesValidate},
	"profiles apply": {"[--dry-run] [--force] NAME", "re-slice the node to a profile", func(c *cli.Command) {
		c.Bool("dry-run", false, "only show what would change")
		c.Bool("force", false, "let held slices shrink below what their tenants were granted")
	}, profilesApply},
	"rules list":     {"", "policy rules: the config file's and the API's, with their state", nil, rulesList},
	"rules show":     {"NAME", "one rule as JSON", nil, rulesShow},
	"rules put":      {"FILE", "create or replace a rule from a YAML or JSON file (- for stdin)", nil, rulesPut},
	"rules validate": {"FILE", "check a rule file as put would, storing nothing", nil, rulesValidate},
	"rules delete":   {"NAME", "delete a rule stored through the API", nil, rulesDelete},
	"jobs list":      {"", "triggered jobs, with their state and why", nil, jobsList},
	"jobs show":      {"NAME", "one job as JSON", nil, jobsShow},
	"jobs put":       {"FILE", "create or replace a job from a YAML or JSON file (- for stdin)", nil, jobsPut},
	"jobs validate":  {"FILE", "check a job file as put would, storing nothing", nil, jobsValidate},
	"jobs delete":    {"NAME", "delete a job; its instances are stopped", nil, jobsDelete},
	"jobs runs":      {"NAME", "a job's state, running instances and recent runs", nil, jobsRuns},
	"slices":         {"", "live slices", nil, slicesCmd},
	"smi":            {"", "GPUs and their slices at a glance", nil, smiCmd},
	"tokens issue": {"[--memory SIZE] [--out FILE] TENANT",
		"issue a token for TENANT, replacing (revoking) its earlier ones, and write its bundle", TokenIssueFlags, tokensIssue},
	"tokens revoke": {"TENANT", "revoke every token of TENANT; its sessions end", nil, tokensRevoke},
	"tokens list":   {"", "issued tokens (never the tokens themselves)", nil, tokensList},
	"tenants policy": {"NAME [--gpus N] [--idle D] [--memory SIZE]", "show or set a tenant's GPU limit, idle timeout and memory cap",
		tenantsPolicyFlags, tenantsPolicy},
	"devices add":    {"NAME", "add a broker login for a device; its password is shown once", nil, devicesAdd},
	"devices list":   {"", "device logins added through the API", nil, devicesList},
	"devices remove": {"NAME", "remove a device login; the device is disconnected and refused", nil, devicesRemove},
	"pool status":    {"", "the pool's members (up or down), quorum and leases", nil, poolStatus},
	"pool join":      {"HOST:PORT", "dial another member's cluster listener, now and at every start", nil, poolJoin},
	"pool leave":     {"NODE", "remove a member that is down from the pool (its leases are given back)", nil, poolLeave},
	"pool place":     {"[-n N] [-p FRACTION] [--memory SIZE] [--min-memory SIZE] [--model NAME] TENANT", "reserve slices on the first member whose GPUs fit, with room", poolPlaceFlags, poolPlace},
}

// groups are the commands that only hold subcommands.
var groups = map[string]string{"profiles": "list, show, put, validate or apply", "rules": "list, show, put, validate or delete",
	"jobs":   "list, show, put, validate, delete or runs",
	"tokens": "issue, revoke or list", "tenants": "policy", "devices": "add, list or remove",
	"pool": "status, join, leave or place"}

// RunCLI runs one of the operator commands in CLIUsage (args start with
// the command name: "profiles", "rules", "slices", "smi", "tokens" or
// "devices") and
// writes its output to w. Every command and subcommand takes --help, which
// prints its usage on w and returns cli.ErrHelp without calling the API.
func RunCLI(ctx context.Context, c *Client, args []string, w io.Writer) error {
	if len(args) == 0 {
		return &cli.UsageError{Err: errors.New("no command")}
	}
	name, rest := args[0], args[1:]
	if want, ok := groups[name]; ok {
		if len(rest) == 0 || cli.AskedForHelp(rest) {
			fmt.Fprintf(w, "usage: kerf %s COMMAND\n\ncommands:\n", name)
			for _, k := range sortedCommands(name + " ") {
				fmt.Fprintf(w, "  kerf %-18s %s\n", k, operatorCommands[k].summary)
			}
			if len(rest) == 0 {
				return cli.Usagef("kerf "+name, "want %s", want)
			}
			return cli.ErrHelp
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
	sc, ok := operatorCommands[name]
	if !ok {
		return &cli.UsageError{Err: fmt.Errorf("unknown command %q (see kerf --help)", "kerf "+name)}
	}
	cmd := cli.New("kerf "+name, sc.use, sc.summary)
	cmd.Stdout = w
	if sc.flags != nil {
		sc.flags(cmd)
	}
	if err := cmd.Parse(rest); err != nil {
		return err
	}
	if err := c.ready(); err != nil {
		return err
	}
	return sc.run(ctx, c, cmd, w)
}

func sortedCommands(prefix string) []string {
	var out []string
	for k := range operatorCommands {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// boolFlag is the value of the command's boolean flag name.
func boolFlag(cmd *cli.Command, name string) bool {
	return cmd.Lookup(name).Value.(flag.Getter).Get().(bool)
}

// oneArg is the command's one positional argument.
func oneArg(cmd *cli.Command, what string) (string, error) {
	if cmd.NArg() != 1 {
		return "", cli.Usagef(cmd.Name(), "want one %s", what)
	}
	return cmd.Arg(0), nil
}

// noArgs refuses positional arguments.
func noArgs(cmd *cli.Command) error {
	if cmd.NArg() > 0 {
		return cli.Usagef(cmd.Name(), "unexpected argument %q", cmd.Arg(0))
	}
	return nil
}

func profilesList(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	ps, err := c.Profiles(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tGPUS\tSLICES\tUPDATED\tDESCRIPTION")
	for _, p := range ps {
		n := 0
		for _, g := range p.GPUs {
			n += len(g.Slices)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", p.Name, len(p.GPUs), n, p.Updated.Format(time.RFC3339), p.Description)
	}
	return tw.Flush()
}

func profilesShow(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	name, err := oneArg(cmd, "profile name")
	if err != nil {
		return err
	}
	p, err := c.Profile(ctx, name)
	if err != nil {
		return err
	}
	return writeJSON(w, p)
}

func profilesPut(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	file, err := oneArg(cmd, "file")
	if err != nil {
		return err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var p api.Profile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if p, err = c.PutProfile(ctx, p); err != nil {
		return err
	}
	fmt.Fprintf(w, "stored profile %s\n", p.Name)
	return nil
}

func profilesValidate(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	name, err := oneArg(cmd, "profile name")
	if err != nil {
		return err
	}
	if err := c.ValidateProfile(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(w, "profile %s fits this node\n", name)
	return nil
}

func profilesApply(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	name, err := oneArg(cmd, "profile name")
	if err != nil {
		return err
	}
	force := boolFlag(cmd, "force")
	var plan api.Plan
	if boolFlag(cmd, "dry-run") {
		plan, err = c.PlanProfile(ctx, name, api.PlanProfileParams{Force: force})
	} else {
		plan, err = c.ApplyProfile(ctx, name, api.ApplyProfileParams{Force: force})
	}
	if err != nil {
		return err
	}
	return writePlan(w, plan)
}

func slicesCmd(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	ss, err := c.Slices(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GPU\tTENANT\tMEMORY USED\tLIMIT\tSHARE TARGET\tACHIEVED\t")
	for _, s := range ss {
		pending := ""
		if s.Pending {
			pending = "re-slicing"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.0f%%\t%.0f%%\t%s\n", s.GPU, s.Tenant, human(s.MemoryUsedBytes), human(s.MemoryLimitBytes),
			100*s.ShareTarget, 100*s.ShareAchieved, pending)
	}
	return tw.Flush()
}

func smiCmd(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	gs, err := c.GPUs(ctx)
	if err != nil {
		return err
	}
	ss, err := c.Slices(ctx)
	if err != nil {
		return err
	}
	for _, g := range gs {
		var used, limit uint64
		var mine []api.Slice
		for _, s := range ss {
			if s.GPU == g.Index {
				used, limit = used+s.MemoryUsedBytes, limit+s.MemoryLimitBytes
				mine = append(mine, s)
			}
		}
		fmt.Fprintf(w, "GPU %d  %-28s  %9s / %9s used, %9s sliced, %d slice(s)\n", g.Index, g.Name, human(used), human(g.MemoryBytes), human(limit), len(mine))
		for _, s := range mine {
			fmt.Fprintf(w, "  %-20s %s %9s / %9s  %s\n", s.Tenant, bar(s.MemoryUsedBytes, s.MemoryLimitBytes, 20),
				human(s.MemoryUsedBytes), human(s.MemoryLimitBytes), shareText(s.ShareAchieved, s.ShareTarget))
		}
	}
	st, err := c.Pool(ctx)
	var p *api.Problem
	if errors.As(err, &p) && p.Status == http.StatusConflict {
		return nil // not in a pool
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	return smiPool(w, st)
}

// shareText is a slice's compute share as smi shows it: what it got of
// what it was granted, and the part above its grant as idle GPU time it
// borrowed, which other tenants take back as they get busy.
func shareText(achieved, granted float64) string {
	a, g := math.Round(100*achieved), math.Round(100*granted)
	if a <= g {
		return fmt.Sprintf("share %3.0f%% of %.0f%% granted", a, g)
	}
	return fmt.Sprintf("share %3.0f%%: %.0f%% granted + %.0f%% borrowed idle time", a, g, a-g)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func writePlan(w io.Writer, p api.Plan) error {
	verb := "would change"
	if p.Applied {
		verb = "changed"
	}
	fmt.Fprintf(w, "profile %s %s %d slice(s)", p.Profile, verb, len(p.Steps))
	if p.Disruptive {
		fmt.Fprint(w, " (disruptive)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GPU\tTENANT\tACTION\tMEMORY\tSHARE\tNOTE")
	for _, s := range p.Steps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s → %s\t%.0f%% → %.0f%%\t%s\n", s.GPU, s.Tenant, s.Action,
			human(s.FromMemoryBytes), human(s.ToMemoryBytes), 100*s.FromShare, 100*s.ToShare, s.Note)
	}
	return tw.Flush()
}

func human(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGT"[i-1])
}

func bar(used, limit uint64, width int) string {
	n := 0
	if limit > 0 {
		n = int(float64(width) * float64(min(used, limit)) / float64(limit))
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
