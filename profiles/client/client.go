package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/profiles/api"
)

// Client calls the operator API.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:7080
	Token   string // the admin token
	HTTP    *http.Client
}

// New returns a client for base with the admin token. Empty
// arguments come from $KERF_API (default http://127.0.0.1:7080) and
// $KERF_ADMIN_TOKEN.
func New(base, token string) *Client {
	if base == "" {
		if base = os.Getenv(kerfenv.API); base == "" {
			base = "http://127.0.0.1:7080"
		}
	}
	if token == "" {
		token = os.Getenv(kerfenv.AdminToken)
	}
	return &Client{BaseURL: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 60 * time.Second}}
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
func (c *Client) PlanProfile(ctx context.Context, name string) (out api.Plan, err error) {
	return out, c.Do(ctx, "POST", "/v1/profiles/"+url.PathEscape(name)+"/plan", nil, &out)
}

// ApplyProfile applies a stored profile.
func (c *Client) ApplyProfile(ctx context.Context, name string) (out api.Plan, err error) {
	return out, c.Do(ctx, "POST", "/v1/profiles/"+url.PathEscape(name)+"/apply", nil, &out)
}

// IssueToken issues a tenant token; memLimit 0 is no limit.
func (c *Client) IssueToken(ctx context.Context, tenant string, memLimit uint64) (out api.IssuedToken, err error) {
	return out, c.Do(ctx, "POST", "/v1/tokens", api.TokenRequest{Tenant: tenant, MemoryLimitBytes: memLimit}, &out)
}

// RevokeTokens revokes every token of tenant and returns how many.
func (c *Client) RevokeTokens(ctx context.Context, tenant string) (int, error) {
	var out api.Revoked
	return out.Revoked, c.Do(ctx, "DELETE", "/v1/tokens/"+url.PathEscape(tenant), nil, &out)
}

// Devices lists the device logins issued through the API.
func (c *Client) Devices(ctx context.Context) (out []api.Device, err error) {
	return out, c.Do(ctx, "GET", "/v1/devices", nil, &out)
}

// AddDevice adds a device login to the broker and returns its password,
// which is shown only this once.
func (c *Client) AddDevice(ctx context.Context, name string) (out api.IssuedDevice, err error) {
	return out, c.Do(ctx, "POST", "/v1/devices", api.DeviceRequest{Name: name}, &out)
}

// RemoveDevice removes a device login; its connections are closed.
func (c *Client) RemoveDevice(ctx context.Context, name string) error {
	return c.Do(ctx, "DELETE", "/v1/devices/"+url.PathEscape(name), nil, nil)
}
