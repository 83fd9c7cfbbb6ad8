package client

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

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

// tenantsCLI runs `kerf tenants policy NAME [--gpus N] [--idle D]
// [--memory BYTES]`: without flags it shows the policy, with some it
// changes those and keeps the rest.
func tenantsCLI(ctx context.Context, c *Client, args []string, w io.Writer) error {
	if len(args) == 0 || args[0] != "policy" {
		return fmt.Errorf("tenants: want policy")
	}
	fs := flag.NewFlagSet("tenants policy", flag.ContinueOnError)
	gpus := fs.Float64("gpus", -1, "the most GPUs the tenant holds at once, fractions counted (0: no limit)")
	idle := fs.Duration("idle", -1, "reclaim a lease unused this long (0: never)")
	memory := fs.String("memory", "", "device memory its sessions use at once, e.g. 8GiB (0: no cap)")
	// The tenant's name may come before or after the flags.
	var name string
	rest := args[1:]
	if len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() != 0 || name == "" {
		return fmt.Errorf("tenants policy: want one tenant name")
	}
	p, err := c.TenantPolicy(ctx, name)
	if err != nil {
		return err
	}
	changed := false
	fs.Visit(func(f *flag.Flag) { changed = true })
	if changed {
		if *gpus >= 0 {
			p.MaxGPUs = *gpus
		}
		if *idle >= 0 {
			p.IdleTimeoutSeconds = idle.Seconds()
		}
		if *memory != "" {
			if p.MaxMemoryBytes, err = units.ParseBytes(*memory); err != nil {
				return fmt.Errorf("--memory: %w", err)
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
