// Package client calls kerfd's operator REST API (Client) and runs the
// operator commands of the kerf CLI (RunCLI) over it.
//
// It speaks the API through the types of package api and net/http only;
// it must not import the server (package profiles), echo, bbolt,
// Prometheus or QUIC, so that the kerf CLI stays free of them.
package client
