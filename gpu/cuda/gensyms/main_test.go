package main

import (
	"bytes"
	"os"
	"testing"
)

// TestSymbolsUpToDate fails when the backend's symbol list is not what the
// entry-point table generates: run go generate ./gpu/cuda.
func TestSymbolsUpToDate(t *testing.T) {
	have, err := os.ReadFile("../syms_gen.h")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, render()) {
		t.Error("gpu/cuda/syms_gen.h is stale: run go generate ./gpu/cuda")
	}
}
