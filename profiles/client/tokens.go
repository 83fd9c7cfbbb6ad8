package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/cli"
	"github.com/kerf-edge/kerf/internal/units"
)

// TokenIssueFlags declares the flags of `kerf tokens issue` and of
// `kerfd tokens issue`, so that both say the same.
func TokenIssueFlags(c *cli.Command) {
	c.String("memory", "", "memory limit per session, with a unit (512MiB, 4GiB); default: the whole slice")
	c.String("out", "", "where to write the bundle (kerf: ./TENANT.json; kerfd: <state>/bundles/TENANT.json)")
}

// IssueArgs reads what TokenIssueFlags declared: the tenant, the memory
// limit in bytes (0: none) and the bundle's path ("" when not given).
func IssueArgs(c *cli.Command) (tenant string, memory uint64, out string, err error) {
	if tenant, err = oneArg(c, "TENANT"); err != nil {
		return "", 0, "", err
	}
	if err := auth.CheckTenantName(tenant); err != nil {
		return "", 0, "", cli.Usagef(c.Name(), "%v", err)
	}
	if m := c.Lookup("memory").Value.String(); m != "" {
		if memory, err = units.ParseBytes(m); err != nil {
			return "", 0, "", cli.Usagef(c.Name(), "--memory: %v", err)
		}
	}
	return tenant, memory, c.Lookup("out").Value.String(), nil
}

// IssuedLine is what `kerf tokens issue` and `kerfd tokens issue` say
// once the bundle is written; replaced is how many earlier tokens of the
// tenant the new one revoked.
func IssuedLine(tenant, bundle string, replaced int) string {
	if replaced > 0 {
		return fmt.Sprintf("replaced the token of tenant %s (%d earlier token(s) revoked; sessions on them end); bundle written to %s (the token is not stored elsewhere)", tenant, replaced, bundle)
	}
	return fmt.Sprintf("issued a token for tenant %s; bundle written to %s (the token is not stored elsewhere)", tenant, bundle)
}

// RevokedLine is what both command lines say after a revocation.
func RevokedLine(tenant string, n int) string {
	return fmt.Sprintf("revoked %d token(s) of tenant %s", n, auth.PrintableName(tenant))
}

// WriteTokenTable lists token records, as both command lines do.
func WriteTokenTable(w io.Writer, recs []auth.TokenRecord) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tMEMORY LIMIT\tISSUED\tREVOKED")
	for _, r := range recs {
		limit, revoked := "slice", "-"
		if r.MemLimit > 0 {
			limit = units.FormatBytes(r.MemLimit)
		}
		if !r.Revoked.IsZero() {
			revoked = r.Revoked.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", auth.PrintableName(r.Tenant), limit, r.Issued.Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

func tokensIssue(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	tenant, memory, out, err := IssueArgs(cmd)
	if err != nil {
		return err
	}
	if out == "" {
		out = tenant + ".json"
	}
	it, err := c.IssueToken(ctx, tenant, memory)
	if err != nil {
		return err
	}
	b := auth.Bundle{Tenant: it.Tenant, Token: it.Token, QUIC: c.quicFor(it.Quic), Socket: it.Socket, Fingerprint: it.Fingerprint}
	for _, m := range it.Pool {
		addr := m.Quic
		if addr == it.Quic {
			addr = b.QUIC // the member that answered, reached as the API is
		}
		b.Pool = append(b.Pool, auth.PoolMember{Node: m.Node, QUIC: addr, Fingerprint: m.Fingerprint})
	}
	if err := auth.WriteBundle(out, b); err != nil {
		return fmt.Errorf("the token was issued, but its bundle could not be written (issue it again to replace it): %w", err)
	}
	fmt.Fprintln(w, IssuedLine(tenant, out, it.Replaced))
	return nil
}

// quicFor is the QUIC address a bundle should name: kerfd's answer, with
// a loopback host replaced by the API's host when the API is remote (the
// operator reaches the appliance by that name).
func (c *Client) quicFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !isLoopback(host) {
		return addr
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.Hostname() == "" || isLoopback(u.Hostname()) {
		return addr
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

func tokensRevoke(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	tenant, err := oneArg(cmd, "TENANT")
	if err != nil {
		return err
	}
	n, err := c.RevokeTokens(ctx, tenant)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, RevokedLine(tenant, n))
	return nil
}

func tokensList(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	recs, err := c.Tokens(ctx)
	if err != nil {
		return err
	}
	out := make([]auth.TokenRecord, len(recs))
	for i, r := range recs {
		out[i] = auth.TokenRecord{Tenant: r.Tenant, MemLimit: r.MemoryLimitBytes, Issued: r.Issued, Revoked: r.Revoked}
	}
	return WriteTokenTable(w, out)
}
