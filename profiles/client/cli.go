package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/profiles/api"
)

// CLIUsage describes the commands RunCLI takes.
const CLIUsage = `  kerf profiles list                          stored slicing profiles
  kerf profiles show NAME                     one profile as JSON
  kerf profiles put FILE                      create or replace a profile from a JSON file
  kerf profiles validate NAME                 check a profile against the node
  kerf profiles apply [--dry-run] NAME        re-slice the node to a profile
  kerf slices                                 live slices
  kerf smi                                    GPUs and their slices at a glance
  kerf tokens issue [--memory BYTES] TENANT   issue a tenant token (shown once)
  kerf tokens revoke TENANT                   revoke a tenant's tokens
  kerf devices add NAME                       add a broker login for a device (password shown once)
  kerf devices list                           device logins added here
  kerf devices remove NAME                    remove a device login; the device is disconnected
  (the API is $KERF_API, default http://127.0.0.1:7080; the admin token is $KERF_ADMIN_TOKEN)
`

// RunCLI runs one of the operator commands in CLIUsage (args start with
// the command name: "profiles", "slices", "smi", "tokens" or "devices") and writes
// its output to w.
func RunCLI(ctx context.Context, c *Client, args []string, w io.Writer) error {
	if len(args) == 0 {
		return errors.New("no command")
	}
	sub := func() (string, []string) {
		if len(args) < 2 {
			return "", nil
		}
		return args[1], args[2:]
	}
	one := func(rest []string, what string) (string, error) {
		if len(rest) != 1 {
			return "", fmt.Errorf("want one %s", what)
		}
		return rest[0], nil
	}
	switch args[0] {
	case "profiles":
		cmd, rest := sub()
		switch cmd {
		case "list":
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
		case "show":
			name, err := one(rest, "profile name")
			if err != nil {
				return err
			}
			p, err := c.Profile(ctx, name)
			if err != nil {
				return err
			}
			return writeJSON(w, p)
		case "put":
			file, err := one(rest, "file")
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
		case "validate":
			name, err := one(rest, "profile name")
			if err != nil {
				return err
			}
			if err := c.ValidateProfile(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(w, "profile %s fits this node\n", name)
			return nil
		case "apply":
			fs := flag.NewFlagSet("profiles apply", flag.ContinueOnError)
			dry := fs.Bool("dry-run", false, "only show what would change")
			if err := fs.Parse(rest); err != nil {
				return err
			}
			name, err := one(fs.Args(), "profile name")
			if err != nil {
				return err
			}
			var plan api.Plan
			if *dry {
				plan, err = c.PlanProfile(ctx, name)
			} else {
				plan, err = c.ApplyProfile(ctx, name)
			}
			if err != nil {
				return err
			}
			return writePlan(w, plan)
		}
		return fmt.Errorf("profiles: want list, show, put, validate or apply")
	case "slices":
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
	case "smi":
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
				fmt.Fprintf(w, "  %-20s %s %9s / %9s  share %3.0f%% of %3.0f%%\n", s.Tenant, bar(s.MemoryUsedBytes, s.MemoryLimitBytes, 20),
					human(s.MemoryUsedBytes), human(s.MemoryLimitBytes), 100*s.ShareAchieved, 100*s.ShareTarget)
			}
		}
		return nil
	case "tokens":
		cmd, rest := sub()
		switch cmd {
		case "issue":
			fs := flag.NewFlagSet("tokens issue", flag.ContinueOnError)
			mem := fs.Uint64("memory", 0, "memory limit in bytes (0: none)")
			if err := fs.Parse(rest); err != nil {
				return err
			}
			tenant, err := one(fs.Args(), "tenant")
			if err != nil {
				return err
			}
			it, err := c.IssueToken(ctx, tenant, *mem)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, it.Token)
			return nil
		case "revoke":
			tenant, err := one(rest, "tenant")
			if err != nil {
				return err
			}
			n, err := c.RevokeTokens(ctx, tenant)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "revoked %d token(s) of %s\n", n, tenant)
			return nil
		}
		return fmt.Errorf("tokens: want issue or revoke")
	case "devices":
		return runDevices(ctx, c, args[1:], w)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// runDevices runs kerf devices add|list|remove.
func runDevices(ctx context.Context, c *Client, args []string, w io.Writer) error {
	if len(args) == 0 {
		return errors.New("devices: want add, list or remove")
	}
	name := ""
	if args[0] != "list" {
		if len(args) != 2 {
			return fmt.Errorf("devices %s: want one device name", args[0])
		}
		name = args[1]
	}
	switch args[0] {
	case "add":
		d, err := c.AddDevice(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "device %s\npassword %s\n(shown once; the device logs in with it over MQTT or NATS and publishes under edge/v1/+/+/load/%s)\n", d.Name, d.Password, d.Name)
		return nil
	case "list":
		ds, err := c.Devices(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEVICE\tADDED")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\n", d.Name, d.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	case "remove":
		if err := c.RemoveDevice(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(w, "removed device %s\n", name)
		return nil
	}
	return fmt.Errorf("devices: want add, list or remove, not %q", args[0])
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
