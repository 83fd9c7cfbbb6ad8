// Package endpoint is how a tenant's process reaches kerfd: the token
// bundle KERF_BUNDLE names, the path (KERF_VIA), a QUIC address that
// overrides the bundle's (KERF_SERVER; a pool member the bundle names is
// pinned to its own certificate) and the lease `kerf run` holds
// (KERF_LEASE). The CUDA shim and the NVML library read these the same
// way through it.
//
// It reads the environment and dials; it keeps no state and holds no
// connection.
package endpoint

import (
	"context"
	"errors"
	"fmt"

	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/transport"
)

// Endpoint is where and how to reach kerfd.
type Endpoint struct {
	Bundle auth.Bundle
	Via    string // "unix" or "quic"
	Lease  string // the lease kerf run holds; "" when the program runs without it
}

// FromEnv reads the KERF_* variables through getenv. exists reports
// whether a path exists (the bundle's socket decides the default path).
func FromEnv(getenv func(string) string, exists func(string) bool) (Endpoint, error) {
	var e Endpoint
	path := getenv(kerfenv.Bundle)
	if path == "" {
		return e, errors.New("KERF_BUNDLE is not set: run the program with `kerf run`, or point KERF_BUNDLE at a token bundle")
	}
	b, err := auth.ReadBundle(path)
	if err != nil {
		return e, fmt.Errorf("KERF_BUNDLE: %w", err)
	}
	e.Bundle = b
	if addr := getenv(kerfenv.Server); addr != "" {
		// A pool member the bundle names is pinned to its own
		// certificate; another address, to the bundle's.
		if fp := b.FingerprintOf(addr); fp != "" {
			e.Bundle.Fingerprint = fp
		}
		e.Bundle.QUIC = addr
	}
	e.Lease = getenv(kerfenv.Lease)
	switch via := getenv(kerfenv.Via); via {
	case "":
		e.Via = b.DefaultVia(exists)
	case "unix", "quic":
		e.Via = via
	default:
		return e, fmt.Errorf("KERF_VIA=%q: want unix or quic", via)
	}
	if e.Via == "unix" && b.Socket == "" {
		return e, fmt.Errorf("KERF_VIA=unix but bundle %s names no socket", path)
	}
	if e.Via == "quic" && (b.QUIC == "" || b.Fingerprint == "") {
		return e, fmt.Errorf("bundle %s has no QUIC address and fingerprint, and its socket %q is not here", path, b.Socket)
	}
	return e, nil
}

// Dial opens a device session; opts' token and lease are e's.
func (e Endpoint) Dial(ctx context.Context, opts transport.Options) (*transport.Client, error) {
	return dial(ctx, e, opts, transport.DialUnix, transport.DialQUIC)
}

// OpenStatus opens a status stream on e's lease.
func (e Endpoint) OpenStatus(ctx context.Context, opts transport.Options) (*transport.StatusClient, error) {
	if e.Lease == "" {
		return nil, errors.New("KERF_LEASE is not set: run the program with `kerf run`")
	}
	return dial(ctx, e, opts, transport.OpenStatusUnix, transport.OpenStatusQUIC)
}

func dial[T any](ctx context.Context, e Endpoint, opts transport.Options,
	unix func(context.Context, string, transport.Options) (T, error),
	quic func(context.Context, string, transport.QUICOptions) (T, error)) (T, error) {
	opts.Token, opts.Lease = []byte(e.Bundle.Token), e.Lease
	if e.Via == "unix" {
		return unix(ctx, e.Bundle.Socket, opts)
	}
	fp, err := transport.ParseFingerprint(e.Bundle.Fingerprint)
	if err != nil {
		var zero T
		return zero, err
	}
	return quic(ctx, e.Bundle.QUIC, transport.QUICOptions{Options: opts, Fingerprint: fp})
}
