//go:build !cgo

package cuda

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/kerf-edge/kerf/gpu"
)

// DefaultLibrary is the driver library New opens.
const DefaultLibrary = "libcuda.so.1"

// Config tunes New.
type Config struct {
	Library     string
	Log         *slog.Logger
	TimeSlicing bool
}

// Backend is unusable in a build without cgo.
type Backend struct{}

// New always fails: this kerfd was built without cgo.
func New(Config) (*Backend, error) {
	return nil, fmt.Errorf("%w: kerfd was built without cgo (CGO_ENABLED=0)", ErrNoDriver)
}

// Devices is empty.
func (*Backend) Devices() []gpu.DeviceInfo { return nil }

// Pace does nothing.
func (*Backend) Pace(gpu.Gate) {}

// Open fails.
func (*Backend) Open(int, uint64) (gpu.Context, error) {
	return nil, errors.New("cuda: built without cgo")
}

// ComputeMode is time-slicing.
func (*Backend) ComputeMode(int) ComputeMode { return ComputeMode{Reason: "built without cgo"} }

// SetSMPartition fails.
func (*Backend) SetSMPartition(int, SMPartition) error {
	return errors.New("cuda: built without cgo")
}
