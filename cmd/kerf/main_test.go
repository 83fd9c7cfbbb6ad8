package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kerf-bench is taken from beside kerf first, then from $PATH; without
// either, the error says how to get it.
func TestFindBench(t *testing.T) {
	beside, onPath, empty := t.TempDir(), t.TempDir(), t.TempDir()
	for _, dir := range []string{beside, onPath} {
		if err := os.WriteFile(filepath.Join(dir, benchBinary), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", onPath)
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"beside kerf", beside, filepath.Join(beside, benchBinary)},
		{"on PATH", empty, filepath.Join(onPath, benchBinary)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findBench(tc.dir)
			if err != nil || got != tc.want {
				t.Fatalf("findBench(%s) = %q, %v; want %q", tc.dir, got, err, tc.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		t.Setenv("PATH", empty)
		_, err := findBench(empty)
		if err == nil || !strings.Contains(err.Error(), "kerf-bench") || !strings.Contains(err.Error(), "make build") {
			t.Fatalf("error %v: want one naming kerf-bench and make build", err)
		}
	})
}
