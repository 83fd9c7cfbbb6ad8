package appliance

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/profiles/client"
)

// TestProfilesThroughRESTAcrossRestart: built-in profiles cannot be
// replaced or deleted through the API, nor the active one deleted; a
// deleted profile stays deleted after a restart, and only the built-in
// ones are labelled so.
func TestProfilesThroughRESTAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func() (*Appliance, *client.Client) {
		t.Helper()
		a, err := New(testConfig(t, dir), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := a.api.RotateAdminToken()
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(a.api)
		t.Cleanup(ts.Close)
		return a, client.New(ts.URL, tok)
	}
	status := func(err error) int {
		var p *api.Problem
		if errors.As(err, &p) {
			return p.Status
		}
		return 0
	}
	a, c := open()
	whole, err := c.Profile(ctx, "whole")
	if err != nil || !whole.BuiltIn {
		t.Fatalf("built-in profile: %+v, %v", whole, err)
	}
	if err := c.Do(ctx, "DELETE", "/v1/profiles/uniform-20", nil, nil); status(err) != 409 || !strings.Contains(err.Error(), "built in") {
		t.Fatalf("deleting a built-in profile: %v", err)
	}
	whole.Description = "mine now"
	if _, err := c.PutProfile(ctx, whole); status(err) != 409 || !strings.Contains(err.Error(), "cannot be replaced") {
		t.Fatalf("replacing a built-in profile: %v", err)
	}
	halves := api.Profile{Name: "halves", GPUs: []api.GPUProfile{{GPU: 0, Slices: []api.SliceSpec{
		{MemoryFraction: 0.5, ComputeShare: 0.5}, {MemoryFraction: 0.5, ComputeShare: 0.5}}}}}
	for _, p := range []api.Profile{halves, {Name: "thirds", GPUs: []api.GPUProfile{{GPU: 0, Slices: []api.SliceSpec{
		{MemoryFraction: 0.3, ComputeShare: 0.3}, {MemoryFraction: 0.3, ComputeShare: 0.3}, {MemoryFraction: 0.3, ComputeShare: 0.3}}}}}} {
		if _, err := c.PutProfile(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ApplyProfile(ctx, "thirds", api.ApplyProfileParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyProfile(ctx, "halves", api.ApplyProfileParams{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "DELETE", "/v1/profiles/halves", nil, nil); status(err) != 409 || !strings.Contains(err.Error(), "apply another first") {
		t.Fatalf("deleting the active profile: %v", err)
	}
	if err := c.Do(ctx, "DELETE", "/v1/profiles/thirds", nil, nil); err != nil {
		t.Fatal(err)
	}
	// A policy re-slices one GPU: a profile derived from the active one.
	derived, err := a.policy.withGPU(0, "whole")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()

	_, c = open()
	if _, err := c.Profile(ctx, "thirds"); status(err) != 404 {
		t.Fatalf("deleted profile after a restart: %v", err)
	}
	ps, err := c.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var builtIn []string
	for _, p := range ps {
		if p.BuiltIn || p.Description == builtinDescription {
			builtIn = append(builtIn, p.Name)
		}
		if p.Name == derived {
			t.Errorf("derived profile %s listed", p.Name)
		}
	}
	if got := strings.Join(builtIn, " "); got != "mixed-2x25-5x10 uniform-10 uniform-20 whole" {
		t.Fatalf("built in after a restart: %s", got)
	}
}
