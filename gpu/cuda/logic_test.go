package cuda

import (
	"errors"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

func TestCheckDriverVersion(t *testing.T) {
	for _, v := range []int{11000, 11080, 12000, 12020, 12040, 13000} {
		if err := checkDriverVersion(v); err != nil {
			t.Errorf("version %d refused: %v", v, err)
		}
	}
	for _, v := range []int{0, 9020, 10020, 10090} {
		err := checkDriverVersion(v)
		if !errors.Is(err, ErrDriverTooOld) {
			t.Fatalf("version %d: err %v, want ErrDriverTooOld", v, err)
		}
	}
	msg := checkDriverVersion(10020).Error()
	for _, want := range []string{"CUDA 10.2", "10020", "CUDA 11.0", "11000"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestVersionString(t *testing.T) {
	for v, want := range map[int]string{12040: "12.4", 11080: "11.8", 12000: "12.0", 13010: "13.1"} {
		if got := versionString(v); got != want {
			t.Errorf("versionString(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestMapResult(t *testing.T) {
	for r, want := range map[int]abi.Result{
		0:    abi.Success,
		1:    abi.ErrInvalidValue,
		2:    abi.ErrOutOfMemory,
		200:  abi.ErrInvalidImage,
		209:  abi.ErrNoBinaryForGPU,
		218:  abi.ErrInvalidPTX,
		400:  abi.ErrInvalidHandle,
		500:  abi.ErrNotFound,
		600:  abi.ErrNotReady,
		700:  abi.ErrIllegalAddress,
		719:  abi.ErrLaunchFailed,
		214:  abi.ErrLaunchFailed, // ECC uncorrectable
		714:  abi.ErrLaunchFailed, // hardware stack error
		718:  abi.ErrLaunchFailed, // invalid PC
		6:    abi.ErrUnknown,      // profiler codes and the like
		1000: abi.ErrUnknown,
		-1:   abi.ErrUnknown,
	} {
		if got := mapResult(r); got != want {
			t.Errorf("mapResult(%d) = %v, want %v", r, got, want)
		}
	}
}

func TestSticky(t *testing.T) {
	for _, r := range []int{700, 702, 714, 715, 716, 717, 718, 719, 214} {
		if !sticky(r) {
			t.Errorf("%d should be sticky", r)
		}
	}
	for _, r := range []int{0, 1, 2, 200, 400, 500, 600, 701, 801} {
		if sticky(r) {
			t.Errorf("%d should not be sticky", r)
		}
	}
}

func TestDriverError(t *testing.T) {
	err := driverError("cuLaunchKernel", 700)
	if abi.ResultOf(err) != abi.ErrIllegalAddress || !strings.Contains(err.Error(), "cuLaunchKernel") {
		t.Errorf("driverError(700) = %v", err)
	}
	err = driverError("cuLaunchKernel", 718)
	if abi.ResultOf(err) != abi.ErrLaunchFailed || !strings.Contains(err.Error(), "718") {
		t.Errorf("remapped error %v should keep the driver's number", err)
	}
}

func TestCharge(t *testing.T) {
	for size, want := range map[uint64]uint64{
		1:                 512,
		512:               512,
		513:               1024,
		1<<20 - 1:         1 << 20,
		1 << 20:           2 << 20,
		2 << 20:           2 << 20,
		2<<20 + 1:         4 << 20,
		1<<30 + 12345:     1<<30 + 2<<20,
		1 << 40:           1 << 40,
		1<<63 + 1<<21 - 1: 1<<63 + 1<<21,
	} {
		got, ok := charge(size)
		if !ok || got != want {
			t.Errorf("charge(%d) = %d, %v; want %d", size, got, ok, want)
		}
	}
	if _, ok := charge(^uint64(0)); ok {
		t.Error("charge(max) should overflow")
	}
}

func TestFootprint(t *testing.T) {
	if footprint(100, 40) != 60 || footprint(40, 100) != 0 || footprint(5, 5) != 0 {
		t.Error("footprint")
	}
}
