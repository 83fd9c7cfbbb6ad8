package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
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

// Every integer typedef of the header is traced as a number, not as a
// pointer (which would not compile).
func TestIntTypesCoverTheHeader(t *testing.T) {
	b, err := os.ReadFile("../../abi/genheader/prologue.h")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, m := range regexp.MustCompile(`(?m)^typedef int (\w+);`).FindAllStringSubmatch(string(b), -1) {
		found++
		if !intTypes[m[1]] {
			t.Errorf("kerf_cuda.h's %s is an int: add it to intTypes", m[1])
		}
	}
	if found == 0 {
		t.Fatal("no typedef int in the header's prologue: has it moved?")
	}
}
