// Package discover finds the node's NVIDIA GPUs through NVML and samples
// their utilisation, memory, temperature and power for metrics. NVML
// (libnvidia-ml.so.1) is loaded at run time by github.com/NVIDIA/go-nvml;
// where it is missing, Open returns an error wrapping ErrNoNVML, which
// kerfd logs once before serving the emulated GPU.
//
// NVML does not report a full GPU's multiprocessor count (nvmlDeviceGet-
// Attributes answers for MIG instances only), so GPU.SMs is 0 unless NVML
// gave it; FillFromCUDA takes it from the CUDA backend's
// cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT), matching
// devices by UUID.
package discover

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kerf-edge/kerf/gpu"
)

// Sentinel errors of Open.
var (
	// ErrNoNVML: NVML is not installed or cannot initialise (no driver).
	ErrNoNVML = errors.New("NVML not available")
	// ErrNoGPU: NVML works but reports no GPU.
	ErrNoGPU = errors.New("no NVIDIA GPU")
)

// GPU is one discovered device.
type GPU struct {
	Index       int
	Name        string
	UUID        string // NVML's form, "GPU-" and 36 characters
	MemoryTotal uint64 // bytes
	// SMs is the multiprocessor count; 0 when NVML does not report it
	// (see FillFromCUDA). SMSource says where it came from: "nvml",
	// "cuda" or "".
	SMs          int
	SMSource     string
	PCIBusID     string // "0000:3b:00.0", lower case
	CCMajor      int
	CCMinor      int
	MIGCapable   bool
	MIGEnabled   bool // current mode
	MIGPending   bool // the mode after the next GPU reset differs
	Architecture string
}

// System is what Open found.
type System struct {
	DriverVersion string // e.g. "550.54.15"
	CUDAVersion   int    // as cuDriverGetVersion reports, e.g. 12040
	GPUs          []GPU
}

// ParseUUID turns NVML's "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into
// the 16 bytes cuDeviceGetUuid reports.
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	h := strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(s, "GPU-"), "MIG-"), "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return u, fmt.Errorf("discover: %q is not a GPU UUID", s)
	}
	copy(u[:], b)
	return u, nil
}

// FillFromCUDA completes gpus with what the CUDA backend knows and NVML
// does not (the multiprocessor count), matching devices by UUID.
func FillFromCUDA(gpus []GPU, devs []gpu.DeviceInfo) {
	for i := range gpus {
		u, err := ParseUUID(gpus[i].UUID)
		if err != nil {
			continue
		}
		for _, d := range devs {
			if d.UUID == u && gpus[i].SMs == 0 && d.SMs > 0 {
				gpus[i].SMs, gpus[i].SMSource = d.SMs, "cuda"
			}
		}
	}
}

// Sample is one GPU's reading at one time. A metric NVML did not give is
// zero and named in Missing.
type Sample struct {
	Index        int
	UUID         string
	Time         time.Time
	GPUUtil      uint32 // percent of the last sample period a kernel ran
	MemUtil      uint32 // percent of it device memory was read or written
	MemUsed      uint64 // bytes
	MemTotal     uint64
	TemperatureC uint32
	PowerMW      uint32 // milliwatts
	Missing      []string
}
