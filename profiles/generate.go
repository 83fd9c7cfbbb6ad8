package profiles

// The echo server interface and parameter types are generated from the
// spec; the version is pinned here.
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config oapi-codegen.yaml openapi.yaml
