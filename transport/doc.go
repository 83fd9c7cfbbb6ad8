// Package transport forwards CUDA driver-API calls from tenants to kerfd.
//
// It owns the session protocol that runs over any ordered byte stream
// (a QUIC stream, or a Unix socket with a shared-memory side channel):
// the handshake with version negotiation and bearer tokens, validation of
// every call against the catalogue in package abi, per-session handle and
// pointer ownership, latched asynchronous errors, and bulk transfers. The
// Server executes validated calls through a gpu.Backend; the Client is
// what the intercept shim sits on.
//
// It must not know about slices, layouts or policy: limits reach it as an
// auth.Tenant from the Authenticator. Byte layout lives in internal/wire.
package transport
