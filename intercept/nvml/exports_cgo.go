package nvml

/*
#include <stdlib.h>
#include <string.h>
*/
import "C"

import (
	"sync"
	"unsafe"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
)

// The NVML functions Kerf answers. Each export converts its arguments and
// calls the library's logic (nvml.go); every other nvml* symbol is a stub
// in unsupported_gen.c. Structures are go-nvml's Go types, whose layout is
// NVML's.

// handleBase backs the device handles: handle i is handleBase+i, so a
// handle the library did not hand out is recognised as such.
var handleBase = C.malloc(maxDevices)

func handleOf(i int) unsafe.Pointer { return unsafe.Add(handleBase, i) }

// indexOf is the device index of handle h; -1 if h is none of ours.
func indexOf(h unsafe.Pointer) int {
	off := uintptr(h) - uintptr(handleBase)
	if h == nil || uintptr(h) < uintptr(handleBase) || off >= maxDevices {
		return -1
	}
	return int(off)
}

func ret(r Return) C.int { return C.int(r) }

const invalidArgument = C.int(gonvml.ERROR_INVALID_ARGUMENT)

//export nvmlInit
func nvmlInit() C.int { return ret(lib.initialize()) }

//export nvmlInit_v2
func nvmlInit_v2() C.int { return ret(lib.initialize()) }

// nvmlInitWithFlags accepts every flag: a lease always has a device, and
// attaching to one costs nothing here.
//
//export nvmlInitWithFlags
func nvmlInitWithFlags(flags C.uint) C.int { return ret(lib.initialize()) }

//export nvmlShutdown
func nvmlShutdown() C.int { return ret(lib.shutdown()) }

var (
	errTextMu sync.Mutex
	errTexts  = map[C.int]*C.char{} // kept for the life of the process, as NVML's are static
)

//export nvmlErrorString
func nvmlErrorString(r C.int) *C.char {
	errTextMu.Lock()
	defer errTextMu.Unlock()
	if p, ok := errTexts[r]; ok {
		return p
	}
	p := C.CString(gonvml.Return(r).Error())
	errTexts[r] = p
	return p
}

// putString writes s and a NUL into the program's buffer of n bytes.
func putString(buf *C.char, n C.uint, s string) C.int {
	if buf == nil {
		return invalidArgument
	}
	if uint64(len(s))+1 > uint64(n) {
		return ret(gonvml.ERROR_INSUFFICIENT_SIZE)
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(buf)), len(s)+1)
	copy(b, s)
	b[len(s)] = 0
	return ret(gonvml.SUCCESS)
}

// goString reads a NUL-terminated string of at most max bytes.
func goString(p *C.char, max int) (string, bool) {
	if p == nil {
		return "", false
	}
	n := int(C.strnlen(p, C.size_t(max+1)))
	if n > max {
		return "", false
	}
	return C.GoStringN(p, C.int(n)), true
}

//export nvmlSystemGetDriverVersion
func nvmlSystemGetDriverVersion(buf *C.char, n C.uint) C.int {
	v, r := lib.driverVersionText()
	if r != gonvml.SUCCESS {
		return ret(r)
	}
	return putString(buf, n, v)
}

//export nvmlSystemGetNVMLVersion
func nvmlSystemGetNVMLVersion(buf *C.char, n C.uint) C.int {
	return nvmlSystemGetDriverVersion(buf, n)
}

//export nvmlSystemGetCudaDriverVersion
func nvmlSystemGetCudaDriverVersion(v *C.int) C.int {
	if v == nil {
		return invalidArgument
	}
	n, r := lib.cudaDriverVersion()
	if r == gonvml.SUCCESS {
		*v = C.int(n)
	}
	return ret(r)
}

//export nvmlSystemGetCudaDriverVersion_v2
func nvmlSystemGetCudaDriverVersion_v2(v *C.int) C.int { return nvmlSystemGetCudaDriverVersion(v) }

//export nvmlDeviceGetCount
func nvmlDeviceGetCount(n *C.uint) C.int {
	if n == nil {
		return invalidArgument
	}
	c, r := lib.deviceCount()
	if r == gonvml.SUCCESS {
		*n = C.uint(c)
	}
	return ret(r)
}

//export nvmlDeviceGetCount_v2
func nvmlDeviceGetCount_v2(n *C.uint) C.int { return nvmlDeviceGetCount(n) }

// putHandle writes device i's handle once it is found.
func putHandle(dev *unsafe.Pointer, i int, r Return) C.int {
	if r == gonvml.SUCCESS {
		*dev = handleOf(i)
	}
	return ret(r)
}

//export nvmlDeviceGetHandleByIndex
func nvmlDeviceGetHandleByIndex(i C.uint, dev *unsafe.Pointer) C.int {
	if dev == nil {
		return invalidArgument
	}
	_, r := lib.device(int(min(i, maxDevices)))
	return putHandle(dev, int(i), r)
}

//export nvmlDeviceGetHandleByIndex_v2
func nvmlDeviceGetHandleByIndex_v2(i C.uint, dev *unsafe.Pointer) C.int {
	return nvmlDeviceGetHandleByIndex(i, dev)
}

//export nvmlDeviceGetHandleByUUID
func nvmlDeviceGetHandleByUUID(uuid *C.char, dev *unsafe.Pointer) C.int {
	s, ok := goString(uuid, gonvml.DEVICE_UUID_BUFFER_SIZE)
	if !ok || dev == nil {
		return invalidArgument
	}
	i, r := lib.byUUID(s)
	return putHandle(dev, i, r)
}

//export nvmlDeviceGetHandleByPciBusId
func nvmlDeviceGetHandleByPciBusId(busID *C.char, dev *unsafe.Pointer) C.int {
	s, ok := goString(busID, gonvml.DEVICE_PCI_BUS_ID_BUFFER_SIZE)
	if !ok || dev == nil {
		return invalidArgument
	}
	i, r := lib.byPCI(s)
	return putHandle(dev, i, r)
}

//export nvmlDeviceGetHandleByPciBusId_v2
func nvmlDeviceGetHandleByPciBusId_v2(busID *C.char, dev *unsafe.Pointer) C.int {
	return nvmlDeviceGetHandleByPciBusId(busID, dev)
}

//export nvmlDeviceGetIndex
func nvmlDeviceGetIndex(dev unsafe.Pointer, index *C.uint) C.int {
	if index == nil {
		return invalidArgument
	}
	i := indexOf(dev)
	_, r := lib.device(i)
	if r == gonvml.SUCCESS {
		*index = C.uint(i)
	}
	return ret(r)
}

//export nvmlDeviceGetName
func nvmlDeviceGetName(dev unsafe.Pointer, buf *C.char, n C.uint) C.int {
	d, r := lib.device(indexOf(dev))
	if r != gonvml.SUCCESS {
		return ret(r)
	}
	return putString(buf, n, d.Name)
}

//export nvmlDeviceGetUUID
func nvmlDeviceGetUUID(dev unsafe.Pointer, buf *C.char, n C.uint) C.int {
	d, r := lib.device(indexOf(dev))
	if r != gonvml.SUCCESS {
		return ret(r)
	}
	return putString(buf, n, formatUUID(d.UUID))
}

//export nvmlDeviceGetPciInfo_v3
func nvmlDeviceGetPciInfo_v3(dev unsafe.Pointer, out unsafe.Pointer) C.int {
	d, r := lib.device(indexOf(dev))
	if r != gonvml.SUCCESS {
		return ret(r)
	}
	if out == nil {
		return invalidArgument
	}
	id, legacy := busID(d)
	p := gonvml.PciInfo{Domain: uint32(d.PCI.Domain), Bus: uint32(d.PCI.Bus), Device: uint32(d.PCI.Device)}
	copy(p.BusId[:len(p.BusId)-1], id)
	copy(p.BusIdLegacy[:len(p.BusIdLegacy)-1], legacy)
	*(*gonvml.PciInfo)(out) = p
	return ret(gonvml.SUCCESS)
}

//export nvmlDeviceGetPciInfo_v2
func nvmlDeviceGetPciInfo_v2(dev unsafe.Pointer, out unsafe.Pointer) C.int {
	return nvmlDeviceGetPciInfo_v3(dev, out)
}

//export nvmlDeviceGetCudaComputeCapability
func nvmlDeviceGetCudaComputeCapability(dev unsafe.Pointer, major, minor *C.int) C.int {
	d, r := lib.device(indexOf(dev))
	if r != gonvml.SUCCESS {
		return ret(r)
	}
	if major == nil || minor == nil {
		return invalidArgument
	}
	*major, *minor = C.int(d.CCMajor), C.int(d.CCMinor)
	return ret(gonvml.SUCCESS)
}

//export nvmlDeviceGetMemoryInfo
func nvmlDeviceGetMemoryInfo(dev unsafe.Pointer, out unsafe.Pointer) C.int {
	if out == nil {
		return invalidArgument
	}
	m, r := lib.memory(indexOf(dev))
	if r == gonvml.SUCCESS {
		*(*gonvml.Memory)(out) = gonvml.Memory{Total: m.Total, Free: m.Free, Used: m.Used}
	}
	return ret(r)
}

//export nvmlDeviceGetMemoryInfo_v2
func nvmlDeviceGetMemoryInfo_v2(dev unsafe.Pointer, out unsafe.Pointer) C.int {
	if out == nil {
		return invalidArgument
	}
	if (*gonvml.Memory_v2)(out).Version != memoryV2 {
		return ret(gonvml.ERROR_ARGUMENT_VERSION_MISMATCH)
	}
	m, r := lib.memory(indexOf(dev))
	if r == gonvml.SUCCESS {
		*(*gonvml.Memory_v2)(out) = m
	}
	return ret(r)
}

//export nvmlDeviceGetUtilizationRates
func nvmlDeviceGetUtilizationRates(dev unsafe.Pointer, out unsafe.Pointer) C.int {
	if out == nil {
		return invalidArgument
	}
	u, r := lib.utilization(indexOf(dev))
	if r == gonvml.SUCCESS {
		*(*gonvml.Utilization)(out) = u
	}
	return ret(r)
}

// putProcesses writes procs as NVML's process lists are written: *count
// becomes the number of processes; with room for fewer, nothing is written
// and the answer is NVML_ERROR_INSUFFICIENT_SIZE.
func putProcesses[T any](count *C.uint, infos unsafe.Pointer, procs []gonvml.ProcessInfo, r Return, conv func(gonvml.ProcessInfo) T) C.int {
	if r != gonvml.SUCCESS {
		return ret(r)
	}
	if count == nil {
		return invalidArgument
	}
	room := uint64(*count)
	*count = C.uint(len(procs))
	if room < uint64(len(procs)) {
		return ret(gonvml.ERROR_INSUFFICIENT_SIZE)
	}
	if len(procs) == 0 {
		return ret(gonvml.SUCCESS)
	}
	if infos == nil {
		return invalidArgument
	}
	dst := unsafe.Slice((*T)(infos), len(procs))
	for i, p := range procs {
		dst[i] = conv(p)
	}
	return ret(gonvml.SUCCESS)
}

func processInfoV1(p gonvml.ProcessInfo) gonvml.ProcessInfo_v1 {
	return gonvml.ProcessInfo_v1{Pid: p.Pid, UsedGpuMemory: p.UsedGpuMemory}
}

func processInfoV2(p gonvml.ProcessInfo) gonvml.ProcessInfo_v2 { return gonvml.ProcessInfo_v2(p) }

func processInfo(p gonvml.ProcessInfo) gonvml.ProcessInfo { return p }

//export nvmlDeviceGetComputeRunningProcesses_v3
func nvmlDeviceGetComputeRunningProcesses_v3(dev unsafe.Pointer, count *C.uint, infos unsafe.Pointer) C.int {
	procs, r := lib.processes(indexOf(dev))
	return putProcesses(count, infos, procs, r, processInfo)
}

//export nvmlDeviceGetComputeRunningProcesses_v2
func nvmlDeviceGetComputeRunningProcesses_v2(dev unsafe.Pointer, count *C.uint, infos unsafe.Pointer) C.int {
	procs, r := lib.processes(indexOf(dev))
	return putProcesses(count, infos, procs, r, processInfoV2)
}

//export nvmlDeviceGetComputeRunningProcesses
func nvmlDeviceGetComputeRunningProcesses(dev unsafe.Pointer, count *C.uint, infos unsafe.Pointer) C.int {
	procs, r := lib.processes(indexOf(dev))
	return putProcesses(count, infos, procs, r, processInfoV1)
}

// noProcesses answers the graphics and MPS process lists: a slice runs
// neither.
func noProcesses(dev unsafe.Pointer, count *C.uint) C.int {
	_, r := lib.device(indexOf(dev))
	return putProcesses(count, nil, nil, r, processInfo)
}

//export nvmlDeviceGetGraphicsRunningProcesses_v3
func nvmlDeviceGetGraphicsRunningProcesses_v3(dev unsafe.Pointer, count *C.uint, _ unsafe.Pointer) C.int {
	return noProcesses(dev, count)
}

//export nvmlDeviceGetGraphicsRunningProcesses_v2
func nvmlDeviceGetGraphicsRunningProcesses_v2(dev unsafe.Pointer, count *C.uint, _ unsafe.Pointer) C.int {
	return noProcesses(dev, count)
}

//export nvmlDeviceGetGraphicsRunningProcesses
func nvmlDeviceGetGraphicsRunningProcesses(dev unsafe.Pointer, count *C.uint, _ unsafe.Pointer) C.int {
	return noProcesses(dev, count)
}

//export nvmlDeviceGetMPSComputeRunningProcesses_v3
func nvmlDeviceGetMPSComputeRunningProcesses_v3(dev unsafe.Pointer, count *C.uint, _ unsafe.Pointer) C.int {
	return noProcesses(dev, count)
}

//export nvmlDeviceGetMPSComputeRunningProcesses_v2
func nvmlDeviceGetMPSComputeRunningProcesses_v2(dev unsafe.Pointer, count *C.uint, _ unsafe.Pointer) C.int {
	return noProcesses(dev, count)
}

//export nvmlDeviceGetMPSComputeRunningProcesses
func nvmlDeviceGetMPSComputeRunningProcesses(dev unsafe.Pointer, count *C.uint, _ unsafe.Pointer) C.int {
	return noProcesses(dev, count)
}
