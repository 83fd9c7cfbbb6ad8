package client

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/internal/cli"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/profiles/api"
)

// Pool is the pool as the node the client speaks to sees it.
func (c *Client) Pool(ctx context.Context) (out api.PoolStatus, err error) {
	return out, c.Do(ctx, "GET", "/v1/pool", nil, &out)
}

// JoinPool has the node dial another member's cluster listener.
func (c *Client) JoinPool(ctx context.Context, address string) error {
	return c.Do(ctx, "POST", "/v1/pool/peers", api.PoolJoinRequest{Address: address}, nil)
}

// LeavePool removes a member that is down from the pool.
func (c *Client) LeavePool(ctx context.Context, node string) error {
	return c.Do(ctx, "DELETE", "/v1/pool/members/"+url.PathEscape(node), nil, nil)
}

// PlaceInPool reserves slices on the first member with room.
func (c *Client) PlaceInPool(ctx context.Context, r api.PoolPlacementRequest) (out api.PoolLease, err error) {
	return out, c.Do(ctx, "POST", "/v1/pool/leases", r, &out)
}

func poolStatus(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	st, err := c.Pool(ctx)
	if err != nil {
		return err
	}
	quorum := "quorum"
	if !st.Quorum {
		quorum = "NO QUORUM"
	}
	fmt.Fprintf(w, "pool %s, seen from %s: %d of %d members live (%s), %s; leader %s; state in %d replicas\n",
		st.Pool, st.Node, len(st.Live), st.Size, strings.Join(st.Live, ", "), quorum, orNone(st.Leader), st.Replicas)
	if st.Problem != "" {
		fmt.Fprintf(w, "problem: %s\n", st.Problem)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tGPUS\tSLICES\tLEASED\tLEASES\tTENANTS AT")
	for _, m := range st.Members {
		state := "up"
		if !m.Live {
			state = "DOWN"
		}
		if m.Self {
			state += " (this node)"
		}
		slices := 0
		for _, g := range m.GPUs {
			slices += len(g.Slices)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f GPU\t%d\t%s\n", m.Name, state, len(m.GPUs), slices, m.HeldGPUs, m.Leases, orNone(m.Quic))
	}
	if err := tw.Flush(); err != nil || len(st.Leases) == 0 {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LEASE\tTENANT\tON\tGPUS\tCHARGE\tRESERVED UNTIL")
	for _, l := range st.Leases {
		until := "(granted by its node)"
		if !l.Expires.IsZero() {
			until = l.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%.2f\t%s\n", l.ID, l.Tenant, l.Node, l.GPUs, l.Charge, until)
	}
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func poolJoin(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	addr, err := oneArg(cmd, "HOST:PORT")
	if err != nil {
		return err
	}
	if err := c.JoinPool(ctx, addr); err != nil {
		return err
	}
	fmt.Fprintf(w, "the node dials %s now and at every start; kerf pool status shows when it is live\n", addr)
	return nil
}

func poolLeave(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	node, err := oneArg(cmd, "NODE")
	if err != nil {
		return err
	}
	if err := c.LeavePool(ctx, node); err != nil {
		return err
	}
	fmt.Fprintf(w, "removed %s from the pool: its leases are given back, and the quorum is counted without it\n", node)
	return nil
}

func poolPlaceFlags(c *cli.Command) {
	c.Int("n", 1, "slices, each on a GPU of its own, all on one node")
	c.Float64("p", 0, "the part of a GPU of each slice (default 0.1 without --memory)")
	c.String("memory", "", "memory of each slice, with a unit (512MiB), a part of the usable memory of its GPU")
	c.String("min-memory", "", "only GPUs with at least this much memory, with a unit")
	c.String("model", "", "only GPUs whose model contains this")
}

func poolPlace(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	tenant, err := oneArg(cmd, "TENANT")
	if err != nil {
		return err
	}
	get := func(name string) any { return cmd.Lookup(name).Value.(flag.Getter).Get() }
	r := api.PoolPlacementRequest{Tenant: tenant, Count: get("n").(int), Fraction: get("p").(float64), Model: get("model").(string)}
	for _, f := range []struct {
		name string
		to   *uint64
	}{{"memory", &r.MemoryBytes}, {"min-memory", &r.MinMemoryBytes}} {
		if s := get(f.name).(string); s != "" {
			if *f.to, err = units.ParseBytes(s); err != nil {
				return cli.Usagef(cmd.Name(), "--%s: %v", f.name, err)
			}
		}
	}
	if r.Fraction == 0 && r.MemoryBytes == 0 {
		r.Fraction = 0.1
	}
	l, err := c.PlaceInPool(ctx, r)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "reserved %s for %s on %s, GPUs %v, until %s\n", l.ID, l.Tenant, l.Node, l.GPUs, l.Expires.Format(time.RFC3339))
	return nil
}

// smiPool is kerf smi's view of the pool: every member, up or down, with
// its GPUs and their slices as it last published them, and what the
// ledger holds on it.
func smiPool(w io.Writer, st api.PoolStatus) error {
	quorum := "quorum"
	if !st.Quorum {
		quorum = "NO QUORUM"
	}
	fmt.Fprintf(w, "pool %s: %d of %d members live, %s\n", st.Pool, len(st.Live), len(st.Members), quorum)
	if st.Problem != "" {
		fmt.Fprintf(w, "problem: %s\n", st.Problem)
	}
	for _, m := range st.Members {
		state := "up"
		if !m.Live {
			state = "DOWN"
			if !m.LastSeen.IsZero() {
				state += ", last seen " + m.LastSeen.Format(time.RFC3339)
			}
		}
		if m.Self {
			state += ", this node"
		}
		site := ""
		if m.Site != "" {
			site = ", site " + m.Site
		}
		fmt.Fprintf(w, "%s (%s): %d GPU(s), %.2f GPU leased in %d lease(s)%s\n", m.Name, state, len(m.GPUs), m.HeldGPUs, m.Leases, site)
		for _, g := range m.GPUs {
			var sliced uint64
			held := 0
			for _, s := range g.Slices {
				sliced += s.MemoryBytes
				if s.Tenant != "" {
					held++
				}
			}
			fmt.Fprintf(w, "  GPU %d  %-28s  %9s, %9s sliced, %d slice(s), %d held\n", g.Index, g.Name, human(g.MemoryBytes), human(sliced), len(g.Slices), held)
			for _, s := range g.Slices {
				fmt.Fprintf(w, "    %-20s %9s  share %3.0f%%\n", orFree(s.Tenant), human(s.MemoryBytes), 100*s.Share)
			}
		}
	}
	return nil
}

// orFree names a slice's holder, or says it is free.
func orFree(tenant string) string {
	if tenant == "" {
		return "(free)"
	}
	return tenant
}
