package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/kerf-edge/kerf/abi"
)

// Magic opens every Hello ("KERF" little-endian).
const Magic uint32 = 0x4652454b

// MaxClientName bounds the client name a hello carries.
const MaxClientName = 128

var (
	helloSpec = []abi.Arg{
		{Name: "magic", Kind: abi.U32},
		{Name: "minVersion", Kind: abi.U32},
		{Name: "maxVersion", Kind: abi.U32},
		{Name: "token", Kind: abi.Bytes, Max: abi.MaxToken},
		{Name: "device", Kind: abi.U32},
		{Name: "memLimit", Kind: abi.U64},
		{Name: "lease", Kind: abi.String, Max: MaxLeaseID},
		{Name: "client", Kind: abi.String, Max: MaxClientName},
	}
	helloAckSpec = []abi.Arg{
		{Name: "version", Kind: abi.U32},
		{Name: "session", Kind: abi.U64},
		{Name: "name", Kind: abi.String, Max: 256},
		{Name: "uuid", Kind: abi.Bytes, Max: 16},
		{Name: "totalMem", Kind: abi.U64},
		{Name: "ccMajor", Kind: abi.U32},
		{Name: "ccMinor", Kind: abi.U32},
		{Name: "sms", Kind: abi.U32},
		{Name: "emulated", Kind: abi.U32},
		{Name: "driverVersion", Kind: abi.U32},
		{Name: "shmSlots", Kind: abi.U32},
		{Name: "shmSlotSize", Kind: abi.U32},
	}
	errorSpec = []abi.Arg{
		{Name: "code", Kind: abi.U32},
		{Name: "message", Kind: abi.String, Max: 1024},
	}
)

// MaxHello bounds a Hello frame's payload: the largest hello, with every
// blob at its limit, fits.
const MaxHello = 1024

// HelloMsg opens a session.
type HelloMsg struct {
	MinVersion, MaxVersion uint16
	Token                  []byte
	Device                 uint32
	// MemLimit asks for a smaller memory limit than the token grants;
	// 0 asks for the token's limit.
	MemLimit uint64
	// Lease names slices reserved by a lease stream; empty asks for a
	// slice for this session alone.
	Lease  string
	Client string
}

// Append encodes m.
func (m *HelloMsg) Append(b []byte) ([]byte, error) {
	var v abi.Values
	v.Word(uint64(Magic)).Word(uint64(m.MinVersion)).Word(uint64(m.MaxVersion))
	v.Blob(m.Token).Word(uint64(m.Device)).Word(m.MemLimit).Blob([]byte(m.Lease)).Blob([]byte(m.Client))
	return AppendValues(b, helloSpec, &v)
}

// Decode decodes p into m.
func (m *HelloMsg) Decode(p []byte) error {
	var v abi.Values
	if err := DecodeValues(helloSpec, p, &v); err != nil {
		return err
	}
	if uint32(v.Words[0]) != Magic {
		return fmt.Errorf("wire: bad hello magic %#x", v.Words[0])
	}
	if v.Words[1] > 0xffff || v.Words[2] > 0xffff {
		return fmt.Errorf("wire: hello version out of range")
	}
	m.MinVersion, m.MaxVersion = uint16(v.Words[1]), uint16(v.Words[2])
	m.Token = append([]byte(nil), v.Blobs[0]...)
	m.Device = uint32(v.Words[3])
	m.MemLimit = v.Words[4]
	m.Lease = string(v.Blobs[1])
	m.Client = string(v.Blobs[2])
	return nil
}

// HelloAckMsg accepts a session and describes its device as the tenant
// sees it (TotalMem is the slice, not the GPU).
type HelloAckMsg struct {
	Version       uint16
	Session       uint64
	Name          string
	UUID          [16]byte
	TotalMem      uint64
	CCMajor       uint32
	CCMinor       uint32
	SMs           uint32
	Emulated      bool
	DriverVersion uint32
	// ShmSlots and ShmSlotSize describe the shared-memory ring on the
	// local path; zero elsewhere.
	ShmSlots, ShmSlotSize uint32
}

// Append encodes m.
func (m *HelloAckMsg) Append(b []byte) ([]byte, error) {
	var v abi.Values
	emu := uint64(0)
	if m.Emulated {
		emu = 1
	}
	v.Word(uint64(m.Version)).Word(m.Session).Blob([]byte(m.Name)).Blob(m.UUID[:])
	v.Word(m.TotalMem).Word(uint64(m.CCMajor)).Word(uint64(m.CCMinor)).Word(uint64(m.SMs))
	v.Word(emu).Word(uint64(m.DriverVersion)).Word(uint64(m.ShmSlots)).Word(uint64(m.ShmSlotSize))
	return AppendValues(b, helloAckSpec, &v)
}

// Decode decodes p into m.
func (m *HelloAckMsg) Decode(p []byte) error {
	var v abi.Values
	if err := DecodeValues(helloAckSpec, p, &v); err != nil {
		return err
	}
	if len(v.Blobs[1]) != 16 {
		return fmt.Errorf("wire: uuid is %d bytes, want 16", len(v.Blobs[1]))
	}
	if v.Words[0] > 0xffff {
		return fmt.Errorf("wire: version out of range")
	}
	if v.Words[6] > 1 {
		return fmt.Errorf("wire: emulated flag %d is not 0 or 1", v.Words[6])
	}
	m.Version = uint16(v.Words[0])
	m.Session = v.Words[1]
	m.Name = string(v.Blobs[0])
	copy(m.UUID[:], v.Blobs[1])
	m.TotalMem = v.Words[2]
	m.CCMajor, m.CCMinor, m.SMs = uint32(v.Words[3]), uint32(v.Words[4]), uint32(v.Words[5])
	m.Emulated = v.Words[6] != 0
	m.DriverVersion = uint32(v.Words[7])
	m.ShmSlots, m.ShmSlotSize = uint32(v.Words[8]), uint32(v.Words[9])
	return nil
}

// ErrorMsg is a fatal error; the sender closes the stream after it.
type ErrorMsg struct {
	Code    abi.Result
	Message string
}

// Append encodes m, truncating an over-long message.
func (m *ErrorMsg) Append(b []byte) ([]byte, error) {
	msg := m.Message
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	var v abi.Values
	v.Word(uint64(m.Code)).Blob([]byte(msg))
	return AppendValues(b, errorSpec, &v)
}

// Decode decodes p into m.
func (m *ErrorMsg) Decode(p []byte) error {
	var v abi.Values
	if err := DecodeValues(errorSpec, p, &v); err != nil {
		return err
	}
	m.Code = abi.Result(v.Words[0])
	m.Message = string(v.Blobs[0])
	return nil
}

func (m *ErrorMsg) Error() string { return m.Code.Name() + ": " + m.Message }

// LeaseDevice in a Hello opens a lease stream instead of a device session.
const LeaseDevice = ^uint32(0)

// MaxLeaseID bounds a lease identifier.
const MaxLeaseID = 64

// MaxLeaseSlices bounds the slices of one lease.
const MaxLeaseSlices = 64

var (
	allocateSpec = []abi.Arg{
		{Name: "count", Kind: abi.U32},
		{Name: "fractionBits", Kind: abi.U64},
		{Name: "memory", Kind: abi.U64},
		{Name: "minMemory", Kind: abi.U64},
		{Name: "model", Kind: abi.String, Max: 128},
	}
	allocatedSpec = []abi.Arg{
		{Name: "lease", Kind: abi.String, Max: MaxLeaseID},
		{Name: "slices", Kind: abi.Bytes, Max: 12 * MaxLeaseSlices},
	}
)

// AllocateMsg asks for Count slices, each a Fraction of a GPU or Memory
// bytes, on distinct GPUs; Model and MinMemory filter the GPUs.
type AllocateMsg struct {
	Count     uint32
	Fraction  float64
	Memory    uint64
	MinMemory uint64
	Model     string
}

// Append encodes m.
func (m *AllocateMsg) Append(b []byte) ([]byte, error) {
	var v abi.Values
	v.Word(uint64(m.Count)).Word(math.Float64bits(m.Fraction)).Word(m.Memory).Word(m.MinMemory).Blob([]byte(m.Model))
	return AppendValues(b, allocateSpec, &v)
}

// Decode decodes p into m.
func (m *AllocateMsg) Decode(p []byte) error {
	var v abi.Values
	if err := DecodeValues(allocateSpec, p, &v); err != nil {
		return err
	}
	f := math.Float64frombits(v.Words[1])
	if math.IsNaN(f) || f < 0 || f > 1 {
		return fmt.Errorf("wire: fraction %v outside [0, 1]", f)
	}
	*m = AllocateMsg{Count: uint32(v.Words[0]), Fraction: f, Memory: v.Words[2], MinMemory: v.Words[3], Model: string(v.Blobs[0])}
	return nil
}

// LeaseSlice is one reserved slice: a device ordinal and its memory.
type LeaseSlice struct {
	Device uint32
	Memory uint64
}

// AllocatedMsg grants a lease.
type AllocatedMsg struct {
	Lease  string
	Slices []LeaseSlice
}

// Append encodes m.
func (m *AllocatedMsg) Append(b []byte) ([]byte, error) {
	if len(m.Slices) > MaxLeaseSlices {
		return b, fmt.Errorf("wire: %d slices in a lease, limit %d", len(m.Slices), MaxLeaseSlices)
	}
	var sl []byte
	for _, s := range m.Slices {
		sl = binary.LittleEndian.AppendUint32(sl, s.Device)
		sl = binary.LittleEndian.AppendUint64(sl, s.Memory)
	}
	var v abi.Values
	v.Blob([]byte(m.Lease)).Blob(sl)
	return AppendValues(b, allocatedSpec, &v)
}

// Decode decodes p into m.
func (m *AllocatedMsg) Decode(p []byte) error {
	var v abi.Values
	if err := DecodeValues(allocatedSpec, p, &v); err != nil {
		return err
	}
	sl := v.Blobs[1]
	if len(sl)%12 != 0 {
		return fmt.Errorf("wire: lease slices of %d bytes", len(sl))
	}
	m.Lease = string(v.Blobs[0])
	m.Slices = nil
	for ; len(sl) > 0; sl = sl[12:] {
		m.Slices = append(m.Slices, LeaseSlice{Device: binary.LittleEndian.Uint32(sl), Memory: binary.LittleEndian.Uint64(sl[4:])})
	}
	return nil
}

// MaxNodeName and MaxNodeAddr bound a pool member's name and address.
const (
	MaxNodeName = 128
	MaxNodeAddr = 256
)

var reservationSpec = []abi.Arg{
	{Name: "node", Kind: abi.String, Max: MaxNodeName},
	{Name: "addr", Kind: abi.String, Max: MaxNodeAddr},
	{Name: "reservation", Kind: abi.String, Max: MaxLeaseID},
}

// ReservationMsg names a reservation the pool made on a node. As a
// Redirect it tells the tenant where its slices are reserved (the node's
// name and QUIC address); as a Claim it asks that node for them (Node and
// Addr empty).
type ReservationMsg struct {
	Node, Addr, Reservation string
}

// Append encodes m.
func (m *ReservationMsg) Append(b []byte) ([]byte, error) {
	var v abi.Values
	v.Blob([]byte(m.Node)).Blob([]byte(m.Addr)).Blob([]byte(m.Reservation))
	return AppendValues(b, reservationSpec, &v)
}

// Decode decodes p into m.
func (m *ReservationMsg) Decode(p []byte) error {
	var v abi.Values
	if err := DecodeValues(reservationSpec, p, &v); err != nil {
		return err
	}
	*m = ReservationMsg{Node: string(v.Blobs[0]), Addr: string(v.Blobs[1]), Reservation: string(v.Blobs[2])}
	if m.Reservation == "" {
		return fmt.Errorf("wire: a reservation message names no reservation")
	}
	return nil
}

// MaxCapacity bounds a GPUs frame's document.
const MaxCapacity = 64 << 10

var capacitySpec = []abi.Arg{{Name: "capacity", Kind: abi.Bytes, Max: MaxCapacity}}

// CapacityMsg answers ListGPUs: a JSON document the transport defines.
type CapacityMsg struct {
	JSON []byte
}

// Append encodes m.
func (m *CapacityMsg) Append(b []byte) ([]byte, error) {
	var v abi.Values
	v.Blob(m.JSON)
	return AppendValues(b, capacitySpec, &v)
}

// Decode decodes p into m.
func (m *CapacityMsg) Decode(p []byte) error {
	var v abi.Values
	if err := DecodeValues(capacitySpec, p, &v); err != nil {
		return err
	}
	m.JSON = bytes.Clone(v.Blobs[0])
	return nil
}
