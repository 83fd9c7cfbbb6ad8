package profiles

// The server's echo glue is generated from the spec over the types of
// package api; the version is pinned here and in api/doc.go.
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config oapi-codegen.yaml openapi.yaml
