// Package profiles is kerfd's operator surface: the REST API (spec-first,
// openapi.yaml, served at /openapi.json), Prometheus metrics at /metrics,
// and the live web page at /.
//
// The API's types are package api, generated from openapi.yaml; requests
// are checked against the same document (validate.go). The client and the
// kerf CLI's operator commands are package client, which must not import
// this one.
//
// It owns a bbolt store under the state directory holding slicing profiles,
// policy rule documents, the event log and the admin token's hash. What it
// reads or drives elsewhere — the node's GPUs and slices (Node), tenant
// tokens (Tokens), rule checks and the config file's rules (RuleValidator) and ingest counters
// (IngestStats) — comes in through small interfaces that the appliance
// adapts the slicer, transport and ingest packages to.
//
// Mounting:
//
//	srv, err := profiles.New(profiles.Config{StateDir: dir}, profiles.Deps{Node: n, Tokens: toks})
//	tok, err := srv.Bootstrap() // non-empty only on the very first start: log it once
//	http.Handle("/", srv)       // srv is an http.Handler
//	defer srv.Close()
//
// Every /v1 endpoint needs the admin bearer token; tenant tokens (kerf_…)
// get 403. Errors are RFC 7807 application/problem+json documents with
// field-level messages; every write is recorded in the event log.
package profiles
