package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/profiles/api"
)

func TestNewReadsTheEnvironment(t *testing.T) {
	t.Setenv(kerfenv.API, "http://kerf.example:7080/")
	t.Setenv(kerfenv.AdminToken, "kerfadm_env")
	c := New("", "")
	if c.BaseURL != "http://kerf.example:7080" || c.Token != "kerfadm_env" {
		t.Fatalf("from the environment: %q %q", c.BaseURL, c.Token)
	}
	c = New("http://other:1", "kerfadm_arg")
	if c.BaseURL != "http://other:1" || c.Token != "kerfadm_arg" {
		t.Fatalf("from the arguments: %q %q", c.BaseURL, c.Token)
	}
	t.Setenv(kerfenv.API, "")
	if c := New("", ""); c.BaseURL != "http://127.0.0.1:7080" {
		t.Fatalf("default: %q", c.BaseURL)
	}
}

// TestErrorAnswers: a problem document comes back as it is, anything else
// as a problem with the status and the text.
func TestErrorAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer kerfadm_x" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/v1/profiles/missing":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"type":"about:blank","title":"Not Found","status":404,"detail":"profile \"missing\": not found"}`)
		case "/v1/slices":
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "upstream down\n")
		case "/v1/tokens":
			var b strings.Builder
			io.Copy(&b, r.Body)
			if r.Header.Get("Content-Type") != "application/json" || b.String() != `{"memoryLimitBytes":1024,"tenant":"carol"}` {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			io.WriteString(w, `{"tenant":"carol","token":"kerf_t","memoryLimitBytes":1024}`)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "kerfadm_x")
	ctx := context.Background()

	var p *api.Problem
	if _, err := c.Profile(ctx, "missing"); !errors.As(err, &p) || p.Status != 404 || !strings.Contains(p.Detail, "not found") {
		t.Errorf("problem document: %v", err)
	}
	if _, err := c.Slices(ctx); !errors.As(err, &p) || p.Status != 502 || p.Detail != "upstream down" {
		t.Errorf("plain text error: %v", err)
	}
	if it, err := c.IssueToken(ctx, "carol", 1024); err != nil || it.Token != "kerf_t" || it.MemoryLimitBytes != 1024 {
		t.Errorf("issue: %+v %v", it, err)
	}
	c.Token = "wrong"
	if _, err := c.GPUs(ctx); !errors.As(err, &p) || p.Status != 401 {
		t.Errorf("empty error answer: %v", err)
	}
}

// The kerf CLI links this package: it must stay free of the server's
// dependencies.
func TestLinksNoServerDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps: %q", out)
	}
	server := []string{"github.com/kerf-edge/kerf/profiles/internal/", "github.com/labstack/echo/", "go.etcd.io/bbolt",
		"github.com/prometheus/", "github.com/quic-go/", "github.com/getkin/"}
	for _, d := range deps {
		if d == "github.com/kerf-edge/kerf/profiles" || slices.ContainsFunc(server, func(p string) bool { return strings.HasPrefix(d, p) }) {
			t.Errorf("links %s", d)
		}
	}
}

// An https:// API is pinned by its certificate's fingerprint, from
// $KERF_API_FINGERPRINT or the api-fingerprint file kerfd keeps next to
// the admin token: the right one is let through, a wrong one refused
// before the admin token is sent.
func TestHTTPSPinsTheFingerprint(t *testing.T) {
	var sawToken bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawToken = sawToken || r.Header.Get("Authorization") != ""
		io.WriteString(w, `[{"name":"whole","slices":[]}]`)
	}))
	defer srv.Close()
	right := APIFingerprint(sha256.Sum256(srv.Certificate().Raw)).String()
	wrong := APIFingerprint(sha256.Sum256([]byte("another certificate"))).String()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Chdir(t.TempDir())
	ctx := context.Background()

	t.Setenv(kerfenv.APIFingerprint, wrong)
	if _, err := New(srv.URL, "kerfadm_x").Profiles(ctx); err == nil || !strings.Contains(err.Error(), "certificate is not "+wrong) {
		t.Fatalf("a wrong fingerprint: %v", err)
	}
	if sawToken {
		t.Fatal("the admin token went to a server with the wrong certificate")
	}
	t.Setenv(kerfenv.APIFingerprint, right)
	if p, err := New(srv.URL, "kerfadm_x").Profiles(ctx); err != nil || len(p) != 1 || p[0].Name != "whole" {
		t.Fatalf("the right fingerprint: %v, %v", p, err)
	}

	// From the file in ./state, where kerfd's defaults keep it.
	t.Setenv(kerfenv.APIFingerprint, "")
	if err := os.MkdirAll("state", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fp string
		ok bool
	}{{wrong, false}, {right, true}} {
		if err := os.WriteFile(filepath.Join("state", "api-fingerprint"), []byte(c.fp+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := New(srv.URL, "kerfadm_x").Profiles(ctx); (err == nil) != c.ok {
			t.Errorf("api-fingerprint %s: err %v, want ok %v", c.fp, err, c.ok)
		}
	}

	// With no fingerprint anywhere the system's roots decide: the test
	// server's certificate is not among them.
	os.Remove(filepath.Join("state", "api-fingerprint"))
	if _, err := New(srv.URL, "kerfadm_x").Profiles(ctx); err == nil {
		t.Fatal("an unpinned self-signed certificate was trusted")
	}
}
