package main

import (
	"bytes"
	"os"
	"testing"
)

// TestHeaderUpToDate fails when abi/include/kerf_cuda.h is not what the
// entry-point table generates: run go generate ./abi.
func TestHeaderUpToDate(t *testing.T) {
	have, err := os.ReadFile("../include/kerf_cuda.h")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, render()) {
		t.Error("abi/include/kerf_cuda.h is stale: run go generate ./abi")
	}
}
