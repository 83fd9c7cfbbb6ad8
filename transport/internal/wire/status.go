package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/kerf-edge/kerf/abi"
)

// StatusDevice in a Hello opens a status stream on the lease the Hello
// names: the server answers with a Status frame at once and after every
// Query, and opens no device.
const StatusDevice = ^uint32(1)

// MaxLeaseProcesses bounds the processes one Status frame lists.
const MaxLeaseProcesses = 1024

// MaxDeviceName bounds a device's name in a Status frame.
const MaxDeviceName = 256

const (
	sliceRecordFixed = 4 + 8 + 8 + 8 + 8 + 16 + 5*4 + 2 // up to the name's length
	processRecord    = 4 + 4 + 8
)

var statusSpec = []abi.Arg{
	{Name: "lease", Kind: abi.String, Max: MaxLeaseID},
	{Name: "driverVersion", Kind: abi.U32},
	{Name: "slices", Kind: abi.Bytes, Max: MaxLeaseSlices * (sliceRecordFixed + MaxDeviceName)},
	{Name: "processes", Kind: abi.Bytes, Max: MaxLeaseProcesses * processRecord},
}

// SliceStatus is one slice of a lease and the device it is on.
type SliceStatus struct {
	Device uint32
	Memory uint64 // the slice's memory
	Used   uint64 // what the lease's sessions hold of it
	// Share is the slice's compute share of the GPU; Utilization the part
	// of the GPU's time its kernels took lately. Both lie in [0, 1].
	Share, Utilization float64
	UUID               [16]byte
	PCIDomain          uint32
	PCIBus             uint32
	PCIDevice          uint32
	CCMajor, CCMinor   uint32
	Name               string
}

// ProcessStatus is one process with a session in a lease, as the process
// numbered itself.
type ProcessStatus struct {
	Device  uint32
	PID     uint32
	MemUsed uint64
}

// StatusMsg describes a lease to its holder.
type StatusMsg struct {
	Lease         string
	DriverVersion uint32
	Slices        []SliceStatus
	Processes     []ProcessStatus
}

// Append encodes m.
func (m *StatusMsg) Append(b []byte) ([]byte, error) {
	if len(m.Slices) > MaxLeaseSlices || len(m.Processes) > MaxLeaseProcesses {
		return b, fmt.Errorf("wire: status of %d slices and %d processes, limits %d and %d",
			len(m.Slices), len(m.Processes), MaxLeaseSlices, MaxLeaseProcesses)
	}
	var sl []byte
	for i := range m.Slices {
		s := &m.Slices[i]
		if len(s.Name) > MaxDeviceName || bytes.IndexByte([]byte(s.Name), 0) >= 0 {
			return b, fmt.Errorf("wire: device name %q: at most %d bytes, no NUL", s.Name, MaxDeviceName)
		}
		if !unitInterval(s.Share) || !unitInterval(s.Utilization) {
			return b, fmt.Errorf("wire: share %v or utilization %v outside [0, 1]", s.Share, s.Utilization)
		}
		sl = binary.LittleEndian.AppendUint32(sl, s.Device)
		sl = binary.LittleEndian.AppendUint64(sl, s.Memory)
		sl = binary.LittleEndian.AppendUint64(sl, s.Used)
		sl = binary.LittleEndian.AppendUint64(sl, math.Float64bits(s.Share))
		sl = binary.LittleEndian.AppendUint64(sl, math.Float64bits(s.Utilization))
		sl = append(sl, s.UUID[:]...)
		for _, x := range [...]uint32{s.PCIDomain, s.PCIBus, s.PCIDevice, s.CCMajor, s.CCMinor} {
			sl = binary.LittleEndian.AppendUint32(sl, x)
		}
		sl = binary.LittleEndian.AppendUint16(sl, uint16(len(s.Name)))
		sl = append(sl, s.Name...)
	}
	var ps []byte
	for _, p := range m.Processes {
		ps = binary.LittleEndian.AppendUint32(ps, p.Device)
		ps = binary.LittleEndian.AppendUint32(ps, p.PID)
		ps = binary.LittleEndian.AppendUint64(ps, p.MemUsed)
	}
	var v abi.Values
	v.Blob([]byte(m.Lease)).Word(uint64(m.DriverVersion)).Blob(sl).Blob(ps)
	return AppendValues(b, statusSpec, &v)
}

// Decode decodes p into m.
func (m *StatusMsg) Decode(p []byte) error {
	var v abi.Values
	if err := DecodeValues(statusSpec, p, &v); err != nil {
		return err
	}
	out := StatusMsg{Lease: string(v.Blobs[0]), DriverVersion: uint32(v.Words[0])}
	for sl := v.Blobs[1]; len(sl) > 0; {
		if len(sl) < sliceRecordFixed {
			return errTruncated("slice status")
		}
		le := binary.LittleEndian
		s := SliceStatus{Device: le.Uint32(sl), Memory: le.Uint64(sl[4:]), Used: le.Uint64(sl[12:]),
			Share: math.Float64frombits(le.Uint64(sl[20:])), Utilization: math.Float64frombits(le.Uint64(sl[28:]))}
		copy(s.UUID[:], sl[36:52])
		s.PCIDomain, s.PCIBus, s.PCIDevice = le.Uint32(sl[52:]), le.Uint32(sl[56:]), le.Uint32(sl[60:])
		s.CCMajor, s.CCMinor = le.Uint32(sl[64:]), le.Uint32(sl[68:])
		n := int(le.Uint16(sl[72:]))
		sl = sl[sliceRecordFixed:]
		if n > MaxDeviceName || n > len(sl) {
			return fmt.Errorf("wire: device name of %d bytes", n)
		}
		if bytes.IndexByte(sl[:n], 0) >= 0 {
			return errNUL("device name")
		}
		if !unitInterval(s.Share) || !unitInterval(s.Utilization) {
			return fmt.Errorf("wire: share %v or utilization %v outside [0, 1]", s.Share, s.Utilization)
		}
		s.Name, sl = string(sl[:n]), sl[n:]
		if len(out.Slices) == MaxLeaseSlices {
			return fmt.Errorf("wire: more than %d slices", MaxLeaseSlices)
		}
		out.Slices = append(out.Slices, s)
	}
	ps := v.Blobs[2]
	if len(ps)%processRecord != 0 {
		return fmt.Errorf("wire: process list of %d bytes", len(ps))
	}
	for ; len(ps) > 0; ps = ps[processRecord:] {
		out.Processes = append(out.Processes, ProcessStatus{Device: binary.LittleEndian.Uint32(ps),
			PID: binary.LittleEndian.Uint32(ps[4:]), MemUsed: binary.LittleEndian.Uint64(ps[8:])})
	}
	*m = out
	return nil
}

func unitInterval(f float64) bool { return f >= 0 && f <= 1 }
