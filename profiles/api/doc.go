// Package api holds the operator REST API's types, generated from
// ../openapi.yaml by oapi-codegen (models only; the Go-only settings are
// in overlay.yaml). The server, its store and the client all use them.
//
// It must not import an HTTP framework, the store or anything else of the
// server: the kerf CLI links it.
package api

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config oapi-codegen.yaml ../openapi.yaml
