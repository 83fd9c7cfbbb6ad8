package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/profiles/api"
)

// Client calls the operator API.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:7080
	Token   string // the admin token
	HTTP    *http.Client
	// missing is why New found no admin token.
	missing error
}

// New returns a client for base with the admin token. Empty
// arguments come from $KERF_API (default http://127.0.0.1:7080) and
// FindAdminToken.
func New(base, token string) *Client {
	if base == "" {
		if base = os.Getenv(kerfenv.API); base == "" {
			base = "http://127.0.0.1:7080"
		}
	}
	var missing error
	if token == "" {
		token, missing = FindAdminToken()
	}
	c := &Client{BaseURL: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 60 * time.Second}, missing: missing}
	if strings.HasPrefix(c.BaseURL, "https://") {
		fp, err := FindAPIFingerprint()
		if err != nil {
			c.missing = err
		} else if !fp.IsZero() {
			c.HTTP.Transport = PinnedTransport(fp)
		}
	}
	return c
}

// APIFingerprint is the SHA-256 of the operator API certificate's DER
// encoding, written sha256:<64 hex digits> as kerfd prints it.
type APIFingerprint [32]byte

func (f APIFingerprint) String() string { return "sha256:" + hex.EncodeToString(f[:]) }

// IsZero reports whether f is unset.
func (f APIFingerprint) IsZero() bool { return f == APIFingerprint{} }

// ParseAPIFingerprint parses "sha256:<64 hex digits>" (the prefix is optional).
func ParseAPIFingerprint(s string) (APIFingerprint, error) {
	var f APIFingerprint
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "sha256:"))
	if err != nil || len(b) != len(f) {
		return f, fmt.Errorf("bad certificate fingerprint %q: want sha256:<64 hex digits>", s)
	}
	copy(f[:], b)
	return f, nil
}

// FindAPIFingerprint is the operator API certificate's fingerprint to pin
// for an https:// API: $KERF_API_FINGERPRINT, else the first api-fingerprint
// file kerfd keeps next to an admin token (AdminTokenPaths' directories).
// Zero when there is none: the certificate must then chain to a root the
// system trusts.
func FindAPIFingerprint() (APIFingerprint, error) {
	if s := os.Getenv(kerfenv.APIFingerprint); s != "" {
		fp, err := ParseAPIFingerprint(s)
		if err != nil {
			return fp, fmt.Errorf("$%s: %w", kerfenv.APIFingerprint, err)
		}
		return fp, nil
	}
	for _, p := range AdminTokenPaths() {
		p = filepath.Join(filepath.Dir(p), "api-fingerprint")
		if b, err := os.ReadFile(p); err == nil {
			fp, err := ParseAPIFingerprint(string(b))
			if err != nil {
				return fp, fmt.Errorf("%s: %w", p, err)
			}
			return fp, nil
		}
	}
	return APIFingerprint{}, nil
}

// PinnedTransport trusts the one certificate whose fingerprint is fp,
// whatever name the API is dialled by (a self-signed certificate names no
// address).
func PinnedTransport(fp APIFingerprint) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // the fingerprint below is the check
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || APIFingerprint(sha256.Sum256(raw[0])) != fp {
				return fmt.Errorf("the operator API's certificate is not %s ($%s)", fp, kerfenv.APIFingerprint)
			}
			return nil
		},
	}
	return t
}

// AdminTokenPaths are the files FindAdminToken reads, in order: kerfd's
// copy for the user who runs it (auth.UserDir), the state directory of
// kerfd's embedded defaults (./state), and the appliance image's.
func AdminTokenPaths() []string {
	var paths []string
	if d := auth.UserDir(); d != "" {
		paths = append(paths, filepath.Join(d, "admin-token"))
	}
	return append(paths, filepath.Join("state", "admin-token"), "/var/lib/kerf/admin-token")
}

// FindAdminToken is the operator's admin token: $KERF_ADMIN_TOKEN, else
// the first of AdminTokenPaths that can be read. Without one, the error
// says where it looked.
func FindAdminToken() (string, error) {
	if t := os.Getenv(kerfenv.AdminToken); t != "" {
		return t, nil
	}
	paths := AdminTokenPaths()
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return string(bytes.TrimSpace(b)), nil
		}
	}
	return "", fmt.Errorf("no admin token: $%s is not set and none of %s can be read; kerfd writes one to its state directory at first start (and a copy to the first, for the user running it)",
		kerfenv.AdminToken, strings.Join(paths, ", "))
}

// ready reports a client that has no admin token, and why.
func (c *Client) ready() error {
	if c.Token == "" && c.missing != nil {
		return c.missing
	}
	return nil
}

// Do sends in (if not nil) as JSON and decodes the answer into out (if
// not nil). An error answer is returned as an *api.Problem.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		p := &api.Problem{}
		if json.Unmarshal(data, p) != nil || p.Status == 0 {
			p = &api.Problem{Type: "about:blank", Title: http.StatusText(resp.StatusCode), Status: resp.StatusCode, Detail: strings.TrimSpace(string(data))}
		}
		return p
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.Unmarshal(data, out)
}

// GPUs lists the node's GPUs.
func (c *Client) GPUs(ctx context.Context) (out []api.GPU, err error) {
	return out, c.Do(ctx, "GET", "/v1/gpus", nil, &out)
}

// Slices lists the live slices.
func (c *Client) Slices(ctx context.Context) (out []api.Slice, err error) {
	return out, c.Do(ctx, "GET", "/v1/slices", nil, &out)
}

// Profiles lists the stored profiles.
func (c *Client) Profiles(ctx context.Context) (out []api.Profile, err error) {
	return out, c.Do(ctx, "GET", "/v1/profiles", nil, &out)
}

// Profile gets one profile.
func (c *Client) Profile(ctx context.Context, name string) (out api.Profile, err error) {
	return out, c.Do(ctx, "GET", "/v1/profiles/"+url.PathEscape(name), nil, &out)
}

// PutProfile creates or replaces a profile.
func (c *Client) PutProfile(ctx context.Context, p api.Profile) (out api.Profile, err error) {
	return out, c.Do(ctx, "PUT", "/v1/profiles/"+url.PathEscape(p.Name), p, &out)
}

// ValidateProfile checks a stored profile against the node.
func (c *Client) ValidateProfile(ctx context.Context, name string) error {
	return c.Do(ctx, "POST", "/v1/profiles/"+url.PathEscape(name)+"/validate", nil, nil)
}

// PlanProfile is a dry run of ApplyProfile.
func (c *Client) PlanProfile(ctx context.Context, name string, params api.PlanProfileParams) (out api.Plan, err error) {
	return out, c.Do(ctx, "POST", "/v1/profiles/"+url.PathEscape(name)+"/plan"+forceQuery(params.Force), nil, &out)
}

// ApplyProfile applies a stored profile.
func (c *Client) ApplyProfile(ctx context.Context, name string, params api.ApplyProfileParams) (out api.Plan, err error) {
	return out, c.Do(ctx, "POST", "/v1/profiles/"+url.PathEscape(name)+"/apply"+forceQuery(params.Force), nil, &out)
}

func forceQuery(force bool) string {
	if force {
		return "?force=true"
	}
	return ""
}

// IssueToken issues a tenant token; memLimit 0 is no limit.
func (c *Client) IssueToken(ctx context.Context, tenant string, memLimit uint64) (out api.IssuedToken, err error) {
	return out, c.Do(ctx, "POST", "/v1/tokens", api.TokenRequest{Tenant: tenant, MemoryLimitBytes: memLimit}, &out)
}

// Tokens lists the issued tokens' records.
func (c *Client) Tokens(ctx context.Context) (out []api.TokenRecord, err error) {
	return out, c.Do(ctx, "GET", "/v1/tokens", nil, &out)
}

// RevokeTokens revokes every token of tenant and returns how many.
func (c *Client) RevokeTokens(ctx context.Context, tenant string) (int, error) {
	var out api.Revoked
	return out.Revoked, c.Do(ctx, "DELETE", "/v1/tokens/"+url.PathEscape(tenant), nil, &out)
}

// Rules lists the policy rules, the config file's included.
func (c *Client) Rules(ctx context.Context) (out []api.Rule, err error) {
	return out, c.Do(ctx, "GET", "/v1/rules", nil, &out)
}

// Rule gets one policy rule.
func (c *Client) Rule(ctx context.Context, name string) (out api.Rule, err error) {
	return out, c.Do(ctx, "GET", "/v1/rules/"+url.PathEscape(name), nil, &out)
}

// PutRule creates or replaces a policy rule.
func (c *Client) PutRule(ctx context.Context, r api.Rule) (out api.Rule, err error) {
	return out, c.Do(ctx, "PUT", "/v1/rules/"+url.PathEscape(r.Name), r, &out)
}

// ValidateRule checks a rule as PutRule would, storing nothing.
func (c *Client) ValidateRule(ctx context.Context, r api.Rule) error {
	return c.Do(ctx, "POST", "/v1/rules/"+url.PathEscape(r.Name)+"/validate", r, nil)
}

// DeleteRule deletes a stored policy rule.
func (c *Client) DeleteRule(ctx context.Context, name string) error {
	return c.Do(ctx, "DELETE", "/v1/rules/"+url.PathEscape(name), nil, nil)
}

// Jobs lists the triggered jobs with their state.
func (c *Client) Jobs(ctx context.Context) (out []api.Job, err error) {
	return out, c.Do(ctx, "GET", "/v1/jobs", nil, &out)
}

// Job gets one triggered job.
func (c *Client) Job(ctx context.Context, name string) (out api.Job, err error) {
	return out, c.Do(ctx, "GET", "/v1/jobs/"+url.PathEscape(name), nil, &out)
}

// PutJob creates or replaces a triggered job.
func (c *Client) PutJob(ctx context.Context, j api.Job) (out api.Job, err error) {
	return out, c.Do(ctx, "PUT", "/v1/jobs/"+url.PathEscape(j.Name), j, &out)
}

// ValidateJob checks a job as PutJob would, storing nothing.
func (c *Client) ValidateJob(ctx context.Context, j api.Job) error {
	return c.Do(ctx, "POST", "/v1/jobs/"+url.PathEscape(j.Name)+"/validate", j, nil)
}

// DeleteJob deletes a triggered job; its instances are stopped.
func (c *Client) DeleteJob(ctx context.Context, name string) error {
	return c.Do(ctx, "DELETE", "/v1/jobs/"+url.PathEscape(name), nil, nil)
}

// JobRuns gets a job's state, running instances and recent runs.
func (c *Client) JobRuns(ctx context.Context, name string) (out api.JobRuns, err error) {
	return out, c.Do(ctx, "GET", "/v1/jobs/"+url.PathEscape(name)+"/runs", nil, &out)
}
