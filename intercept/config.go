package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/kerf-edge/kerf/intercept/endpoint"
	"github.com/kerf-edge/kerf/internal/kerfenv"
	"github.com/kerf-edge/kerf/internal/units"
)

// config is what cuInit reads from the environment.
type config struct {
	endpoint.Endpoint        // kerfd, and the lease kerf run holds ("" asks per session)
	devices           []int  // server ordinals, in CUDA device order
	memory            uint64 // 0: the token's limit
}

const maxDevices = 16

// loadConfig reads the KERF_* variables through getenv. exists reports
// whether a path exists (the bundle's socket decides the default path).
func loadConfig(getenv func(string) string, exists func(string) bool) (config, error) {
	var c config
	var err error
	if c.Endpoint, err = endpoint.FromEnv(getenv, exists); err != nil {
		return c, err
	}
	devs := getenv(kerfenv.Devices)
	if devs == "" {
		devs = "0"
	}
	seen := map[int]bool{}
	for _, f := range strings.Split(devs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n > 255 {
			return c, fmt.Errorf("KERF_DEVICES=%q: %q is not a device ordinal", devs, f)
		}
		if seen[n] {
			return c, fmt.Errorf("KERF_DEVICES=%q lists device %d twice", devs, n)
		}
		seen[n] = true
		c.devices = append(c.devices, n)
	}
	if len(c.devices) > maxDevices {
		return c, fmt.Errorf("KERF_DEVICES=%q: at most %d devices", devs, maxDevices)
	}
	// CUDA_VISIBLE_DEVICES selects and orders devices within the slice set,
	// by index, as CUDA does: the list ends at the first invalid entry.
	if vis := getenv("CUDA_VISIBLE_DEVICES"); vis != "" {
		var visible []int
		for _, f := range strings.Split(vis, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || i < 0 || i >= len(c.devices) || slices.Contains(visible, c.devices[i]) {
				break
			}
			visible = append(visible, c.devices[i])
		}
		c.devices = visible
	}
	if m := getenv(kerfenv.Memory); m != "" {
		n, err := units.ParseBytes(m)
		if err != nil || n == 0 {
			return c, fmt.Errorf("KERF_MEMORY=%q: want a positive byte count", m)
		}
		c.memory = n
	}
	return c, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
