package client

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/kerf-edge/kerf/internal/cli"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/profiles/api"
)

// TenantPolicy gets a tenant's policy (the default one, Own false, when
// it has none of its own).
func (c *Client) TenantPolicy(ctx context.Context, tenant string) (out api.TenantPolicy, err error) {
	return out, c.Do(ctx, "GET", "/v1/tenants/"+url.PathEscape(tenant)+"/policy", nil, &out)
}

// PutTenantPolicy sets a tenant's policy.
func (c *Client) PutTenantPolicy(ctx context.Context, tenant string, p api.TenantPolicy) (out api.TenantPolicy, err error) {
	p.Own = false // read-only
	return out, c.Do(ctx, "PUT", "/v1/tenants/"+url.PathEscape(tenant)+"/policy", p, &out)
}

// tenantsPolicyFlags declares the flags of kerf tenants policy.
func tenantsPolicyFlags(c *cli.Command) {
	c.Float64("gpus", -1, "the most GPUs the tenant holds at once, fractions counted (0: no limit)")
	c.Duration("idle", -1, "reclaim a lease unused this long (0: never)")
	c.String("memory", "", "device memory its sessions use at once, with a unit, e.g. 8GiB (0: no cap)")
}

// tenantsPolicy runs `kerf tenants policy NAME [--gpus N] [--idle D]
// [--memory SIZE]`: without flags it shows the policy, with some it
// changes those and keeps the rest. The name may come before or after
// the flags.
func tenantsPolicy(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	var name string
	if cmd.NArg() > 1 {
		name = cmd.Arg(0)
		if err := cmd.Parse(cmd.Args()[1:]); err != nil {
			return err
		}
		if cmd.NArg() > 0 {
			return cli.Usagef(cmd.Name(), "want one tenant name")
		}
	} else {
		var err error
		if name, err = oneArg(cmd, "tenant name"); err != nil {
			return err
		}
	}
	p, err := c.TenantPolicy(ctx, name)
	if err != nil {
		return err
	}
	changed := false
	cmd.Visit(func(*flag.Flag) { changed = true })
	if changed {
		get := func(n string) any { return cmd.Lookup(n).Value.(flag.Getter).Get() }
		if gpus := get("gpus").(float64); gpus >= 0 {
			p.MaxGPUs = gpus
		}
		if idle := get("idle").(time.Duration); idle >= 0 {
			p.IdleTimeoutSeconds = idle.Seconds()
		}
		if memory := get("memory").(string); memory != "" {
			if p.MaxMemoryBytes, err = units.ParseBytes(memory); err != nil {
				return cli.Usagef(cmd.Name(), "--memory: %v", err)
			}
		}
		if p, err = c.PutTenantPolicy(ctx, name, p); err != nil {
			return err
		}
	}
	return writePolicy(w, name, p)
}

func writePolicy(w io.Writer, tenant string, p api.TenantPolicy) error {
	whose := "its own"
	if !p.Own {
		whose = "the default"
	}
	limit, idle, mem := "none", "never", "none"
	if p.MaxGPUs > 0 {
		limit = fmt.Sprintf("%g GPUs", p.MaxGPUs)
	}
	if p.IdleTimeoutSeconds > 0 {
		idle = (time.Duration(p.IdleTimeoutSeconds * float64(time.Second))).String()
	}
	if p.MaxMemoryBytes > 0 {
		mem = human(p.MaxMemoryBytes)
	}
	_, err := fmt.Fprintf(w, "tenant %s (%s policy)\n  GPU limit     %s\n  idle timeout  %s\n  memory cap    %s\n", tenant, whose, limit, idle, mem)
	return err
}
