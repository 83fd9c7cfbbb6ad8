// Package units parses and formats byte sizes ("16GiB", "512MB", "4096")
// for configuration files and command lines. It has no other concern.
package units

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

var suffixes = []struct {
	s string
	m uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// ParseBytes parses a size such as "16GiB", "1.5G" or "4096".
func ParseBytes(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	mult := uint64(1)
	for _, suf := range suffixes {
		if strings.HasSuffix(t, suf.s) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, suf.s)), suf.m
			break
		}
	}
	if n, err := strconv.ParseUint(t, 10, 64); err == nil {
		hi, v := bits.Mul64(n, mult)
		if hi != 0 {
			return 0, fmt.Errorf("size %q overflows", s)
		}
		return v, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) >= 1<<64 {
		return 0, fmt.Errorf("bad size %q: want a number with an optional unit such as GiB or MB", s)
	}
	return uint64(f * float64(mult)), nil
}

// FormatBytes renders n with a binary unit, e.g. "1.5 GiB".
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
