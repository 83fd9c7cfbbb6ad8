package main

import (
	"bytes"
	"os"
	"testing"
)

// TestCallsUpToDate fails when docs/calls.md is not what the catalogue and
// entry-point table generate: run go generate ./abi.
func TestCallsUpToDate(t *testing.T) {
	have, err := os.ReadFile("../../docs/calls.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, render()) {
		t.Error("docs/calls.md is stale: run go generate ./abi")
	}
}
