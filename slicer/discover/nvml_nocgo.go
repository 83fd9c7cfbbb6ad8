//go:build !cgo

package discover

import "fmt"

// NVML is unavailable in a build without cgo (go-nvml needs it).
type NVML struct{}

// Open fails: this build has no cgo, so no NVML.
func Open() (*NVML, error) {
	return nil, fmt.Errorf("%w: built without cgo (CGO_ENABLED=0)", ErrNoNVML)
}

// Close does nothing.
func (*NVML) Close() error { return nil }

// System is empty.
func (*NVML) System() System { return System{} }

// Sample is empty.
func (*NVML) Sample() []Sample { return nil }
