package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate fails when the shim's exports or cuGetProcAddress
// table are not what the entry-point table generates: run go generate
// ./intercept.
func TestGeneratedUpToDate(t *testing.T) {
	for name, want := range render() {
		have, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("intercept/%s is stale: run go generate ./intercept", name)
		}
	}
}
