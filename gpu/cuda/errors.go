package cuda

import (
	"errors"
	"fmt"

	"github.com/kerf-edge/kerf/abi"
)

// Sentinel errors of New, for errors.Is.
var (
	// ErrNoDriver: libcuda.so.1 could not be loaded (no NVIDIA driver).
	ErrNoDriver = errors.New("no NVIDIA driver")
	// ErrDriverTooOld: the driver predates MinDriverVersion.
	ErrDriverTooOld = errors.New("NVIDIA driver too old")
	// ErrNoDevice: the driver loaded but reports no usable device.
	ErrNoDevice = errors.New("no CUDA device")
)

// Driver result codes that abi does not name but that we classify.
const (
	cuErrECCUncorrectable     = 214
	cuErrHardwareStack        = 714
	cuErrInvalidAddrSpace     = 717
	cuErrInvalidPC            = 718
	firstExecErr, lastExecErr = 700, 799
)

// mapResult turns a driver result into the abi.Result a tenant sees.
// Codes abi knows pass through (abi's values are the driver's); unknown
// execution faults become ErrLaunchFailed, anything else ErrUnknown.
func mapResult(r int) abi.Result {
	res := abi.Result(uint32(r))
	switch {
	case r < 0:
		return abi.ErrUnknown
	case res.Known():
		return res
	case r == cuErrECCUncorrectable, r >= firstExecErr && r <= lastExecErr:
		return abi.ErrLaunchFailed
	}
	return abi.ErrUnknown
}

// sticky reports whether driver result r leaves the context unusable for
// good: an execution fault or uncorrectable ECC error. The driver then
// fails every later call of the context; we stop calling it.
func sticky(r int) bool {
	switch r {
	case int(abi.ErrIllegalAddress), int(abi.ErrLaunchTimeout), int(abi.ErrIllegalInstruction),
		int(abi.ErrMisalignedAddress), int(abi.ErrLaunchFailed),
		cuErrECCUncorrectable, cuErrHardwareStack, cuErrInvalidAddrSpace, cuErrInvalidPC:
		return true
	}
	return false
}

// driverError is the *abi.Error for a failed driver call op. It keeps the
// driver's own number in the message when the code was remapped.
func driverError(op string, r int) error {
	code := mapResult(r)
	if int(code) != r {
		return abi.Errorf(code, "%s: driver error %d", op, r)
	}
	return abi.Errorf(code, "%s failed", op)
}

// wrapNoDriver is New's error when dlopen fails.
func wrapNoDriver(lib, why string) error {
	return fmt.Errorf("%w: cannot load %s: %s", ErrNoDriver, lib, why)
}
