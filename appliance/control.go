package appliance

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/transport"
)

// The control protocol: what kerfd and a tenant's worker process say to
// each other over the worker's control socket (descriptor 3). This file
// is the whole of it; supervisor.go speaks kerfd's side, worker.go and
// share.go the worker's.
//
// kerfd → worker:
//
//	spec         first and once: what to serve (workerSpec, as JSON)
//	setMemLimit  change the session's memory limit in place; answered by ack
//	grant        a grant of GPU time, the answer to acquire
//	reserved     the answer to reserve: Err is empty, or why it was refused
//	smPartition  the SMs the session's kernels run on (where a GPU's shares
//	             are SM partitions), and whether the share gate paces them
//
// worker → kerfd:
//
//	report   the session's figures, every reportEvery
//	ack      the answer to setMemLimit: Err is empty, or why it was refused
//	acquire  a grant, please (before a kernel, when the worker holds none)
//	used     a grant given back, with the GPU time it took
//	reserve  memory of the lease's slice, please, before allocating it
//	release  memory of the lease's slice given back, after freeing it
//
// Each message is one frame: a type byte, the payload's length (4 bytes,
// big-endian), then the payload. Fixed-size payloads are big-endian
// integers and must be exactly their size. A worker runs tenant work, so
// kerfd trusts nothing it reads: the reader bounds every payload by its
// type before reading it, refuses types that do not travel in that
// direction, and refuses negative durations.

// ctlType is a control message's type byte.
type ctlType uint8

const (
	ctlSpec ctlType = iota + 1
	ctlSetMemLimit
	ctlGrant
	ctlReport
	ctlAck
	ctlAcquire
	ctlUsed
	ctlReserve
	ctlReserved
	ctlRelease
	ctlRenew
	ctlYield
	ctlSMPartition
)

const (
	ctlHeaderLen = 5
	// maxSpecLen bounds the spec: the configuration, the admission and
	// the bytes the handshake read ahead.
	maxSpecLen = 16 << 20
	// maxAckErrLen bounds a refusal's text; a longer one is cut.
	maxAckErrLen = 1024
)

// ctlMsg is a control message of either direction.
type ctlMsg interface {
	ctlType() ctlType
	appendPayload(b []byte) ([]byte, error)
}

// workerSpec tells a worker what to serve.
type workerSpec struct {
	Config    Config
	Admission transport.Admission
	Prefix    []byte
	Transport string
	Peer      string
	Limits    []workerLimit // resource limits the worker sets on itself first
	// SMPartition: the SMs the session's kernels run on from the start;
	// nil where its GPU's shares are enforced by time.
	SMPartition *smPartitionMsg `json:",omitempty"`
}

// setMemLimitMsg changes a session's memory limit; Seq pairs it with its
// ack.
type setMemLimitMsg struct {
	Seq   uint64
	Bytes uint64
}

// grantMsg gives a worker Budget of GPU time under grant ID.
type grantMsg struct {
	ID     uint64
	Budget time.Duration
}

// workerReport is a worker's periodic account of its session.
type workerReport struct {
	Calls    uint64
	Errors   uint64
	BytesIn  uint64
	BytesOut uint64
	MemUsed  uint64
	MemLimit uint64
	Busy     time.Duration // GPU time the session's kernels took
}

// ackMsg answers the setMemLimit numbered Seq; Err is why it was refused.
type ackMsg struct {
	Seq uint64
	Err string
}

// acquireMsg asks kerfd for a grant.
type acquireMsg struct{}

// usedMsg gives grant Grant back, Used of its time spent.
type usedMsg struct {
	Grant uint64
	Used  time.Duration
}

// renewMsg charges Used, the GPU time spent under grant Grant since it
// was issued or last renewed, and asks for it to be extended; kerfd
// answers with a grantMsg of the same ID when it is.
type renewMsg struct {
	Grant uint64
	Used  time.Duration
}

// yieldMsg tells a worker that others wait for the GPU: grant Grant has
// Budget left from now, and goes back once that is spent or the stream
// is idle.
type yieldMsg struct {
	Grant  uint64
	Budget time.Duration
}

// smPartitionMsg moves a worker's kernels on device Device to SM groups
// [First, First+Groups) (gpu/cuda SMPartition) at their next launch.
// Gated: the share gate paces them too, as when a GPU's slices cannot
// each have SMs of their own and share them all by time.
type smPartitionMsg struct {
	Device, First, Groups int
	Gated                 bool
}

// maxSMGroups bounds the SM groups a partition message may name.
const maxSMGroups = 4096

func (smPartitionMsg) ctlType() ctlType { return ctlSMPartition }

func (m smPartitionMsg) appendPayload(b []byte) ([]byte, error) {
	var gated uint64
	if m.Gated {
		gated = 1
	}
	return appendUints(b, uint64(m.Device), uint64(m.First), uint64(m.Groups), gated), nil
}

func (renewMsg) ctlType() ctlType { return ctlRenew }
func (yieldMsg) ctlType() ctlType { return ctlYield }

func (m renewMsg) appendPayload(b []byte) ([]byte, error) {
	return appendUints(b, m.Grant, uint64(m.Used)), nil
}

func (m yieldMsg) appendPayload(b []byte) ([]byte, error) {
	return appendUints(b, m.Grant, uint64(m.Budget)), nil
}

// reserveMsg asks for Bytes of the lease's slice; Seq pairs it with its
// answer.
type reserveMsg struct {
	Seq   uint64
	Bytes uint64
}

// reservedMsg answers the reserve numbered Seq: Code is
// CUDA_SUCCESS, or the CUDA result of a refusal and Err why; Free is
// what the lease has left after it. A reserve of 0 bytes asks for Free.
type reservedMsg struct {
	Seq  uint64
	Code abi.Result
	Free uint64
	Err  string
}

// releaseMsg gives Bytes of the lease's slice back.
type releaseMsg struct {
	Bytes uint64
}

func (reserveMsg) ctlType() ctlType  { return ctlReserve }
func (reservedMsg) ctlType() ctlType { return ctlReserved }
func (releaseMsg) ctlType() ctlType  { return ctlRelease }

func (m reserveMsg) appendPayload(b []byte) ([]byte, error) {
	return appendUints(b, m.Seq, m.Bytes), nil
}

func (m reservedMsg) appendPayload(b []byte) ([]byte, error) {
	b = appendUints(b, m.Seq, uint64(m.Code), m.Free)
	return append(b, m.Err[:min(len(m.Err), maxAckErrLen)]...), nil
}

func (m releaseMsg) appendPayload(b []byte) ([]byte, error) {
	return appendUints(b, m.Bytes), nil
}

func (workerSpec) ctlType() ctlType     { return ctlSpec }
func (setMemLimitMsg) ctlType() ctlType { return ctlSetMemLimit }
func (grantMsg) ctlType() ctlType       { return ctlGrant }
func (workerReport) ctlType() ctlType   { return ctlReport }
func (ackMsg) ctlType() ctlType         { return ctlAck }
func (acquireMsg) ctlType() ctlType     { return ctlAcquire }
func (usedMsg) ctlType() ctlType        { return ctlUsed }

func (m workerSpec) appendPayload(b []byte) ([]byte, error) {
	j, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

func (m setMemLimitMsg) appendPayload(b []byte) ([]byte, error) {
	return appendUints(b, m.Seq, m.Bytes), nil
}

func (m grantMsg) appendPayload(b []byte) ([]byte, error) {
	return appendUints(b, m.ID, uint64(m.Budget)), nil
}

func (m workerReport) appendPayload(b []byte) ([]byte, error) {
	return appendUints(b, m.Calls, m.Errors, m.BytesIn, m.BytesOut, m.MemUsed, m.MemLimit, uint64(m.Busy)), nil
}

func (m ackMsg) appendPayload(b []byte) ([]byte, error) {
	b = appendUints(b, m.Seq)
	return append(b, m.Err[:min(len(m.Err), maxAckErrLen)]...), nil
}

func (acquireMsg) appendPayload(b []byte) ([]byte, error) { return b, nil }

func (m usedMsg) appendPayload(b []byte) ([]byte, error) {
	return appendUints(b, m.Grant, uint64(m.Used)), nil
}

func appendUints(b []byte, vs ...uint64) []byte {
	for _, v := range vs {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// appendCtlFrame appends m's frame to b.
func appendCtlFrame(b []byte, m ctlMsg) ([]byte, error) {
	start := len(b)
	b = append(b, byte(m.ctlType()), 0, 0, 0, 0)
	b, err := m.appendPayload(b)
	if err != nil {
		return nil, fmt.Errorf("encoding control message %d: %w", m.ctlType(), err)
	}
	n := len(b) - start - ctlHeaderLen
	if limit := payloadLimit(m.ctlType()); n > limit.max {
		return nil, fmt.Errorf("control message %d: %d bytes, at most %d", m.ctlType(), n, limit.max)
	}
	binary.BigEndian.PutUint32(b[start+1:], uint32(n))
	return b, nil
}

// sizeLimit is the payload size a type allows: min to max bytes.
type sizeLimit struct{ min, max int }

// payloadLimit is what a type's payload may weigh; zero for an unknown
// type.
func payloadLimit(t ctlType) sizeLimit {
	switch t {
	case ctlSpec:
		return sizeLimit{0, maxSpecLen}
	case ctlSetMemLimit, ctlGrant, ctlUsed, ctlReserve, ctlRenew, ctlYield:
		return sizeLimit{16, 16}
	case ctlSMPartition:
		return sizeLimit{32, 32}
	case ctlRelease:
		return sizeLimit{8, 8}
	case ctlReport:
		return sizeLimit{56, 56}
	case ctlAck:
		return sizeLimit{8, 8 + maxAckErrLen}
	case ctlReserved:
		return sizeLimit{24, 24 + maxAckErrLen}
	case ctlAcquire:
		return sizeLimit{0, 0}
	}
	return sizeLimit{-1, -1}
}

// Who reads a stream decides which types it accepts.
var (
	fromKerfd  = []ctlType{ctlSpec, ctlSetMemLimit, ctlGrant, ctlReserved, ctlYield, ctlSMPartition}
	fromWorker = []ctlType{ctlReport, ctlAck, ctlAcquire, ctlUsed, ctlReserve, ctlRelease, ctlRenew}
)

// errCtlProtocol marks a frame that breaks the protocol, as opposed to a
// stream that ended.
var errCtlProtocol = errors.New("control protocol violation")

// ctlReader reads control messages of one direction.
type ctlReader struct {
	r      *bufio.Reader
	accept []ctlType
	hdr    [ctlHeaderLen]byte
}

func newCtlReader(r io.Reader, accept []ctlType) *ctlReader {
	return &ctlReader{r: bufio.NewReader(r), accept: accept}
}

// read returns the next message. At a clean end of the stream it returns
// io.EOF; a stream cut inside a frame gives io.ErrUnexpectedEOF; a frame
// that breaks the protocol gives an error wrapping errCtlProtocol, and
// nothing after it can be trusted.
func (c *ctlReader) read() (ctlMsg, error) {
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return nil, err
	}
	t := ctlType(c.hdr[0])
	n := binary.BigEndian.Uint32(c.hdr[1:])
	accepted := false
	for _, a := range c.accept {
		accepted = accepted || a == t
	}
	if !accepted {
		return nil, fmt.Errorf("%w: message type %d not expected here", errCtlProtocol, t)
	}
	limit := payloadLimit(t)
	if uint64(n) < uint64(limit.min) || uint64(n) > uint64(limit.max) {
		return nil, fmt.Errorf("%w: message type %d with %d bytes, want %d to %d", errCtlProtocol, t, n, limit.min, limit.max)
	}
	p, err := readPayload(c.r, n)
	if err != nil {
		return nil, err
	}
	m, err := decodeCtlPayload(t, p)
	if err != nil {
		return nil, fmt.Errorf("%w: message type %d: %v", errCtlProtocol, t, err)
	}
	return m, nil
}

// readPayload reads n bytes. Memory grows with what arrives, not with
// what the header claims.
func readPayload(r io.Reader, n uint32) ([]byte, error) {
	var err error
	if n <= maxKeptFrame {
		p := make([]byte, n)
		_, err = io.ReadFull(r, p)
		if err == nil {
			return p, nil
		}
	} else {
		var buf bytes.Buffer
		_, err = io.CopyN(&buf, r, int64(n))
		if err == nil {
			return buf.Bytes(), nil
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// decodeCtlPayload decodes a payload whose size payloadLimit allowed.
func decodeCtlPayload(t ctlType, p []byte) (ctlMsg, error) {
	u := func(i int) uint64 { return binary.BigEndian.Uint64(p[8*i:]) }
	dur := func(i int) (time.Duration, error) {
		d := time.Duration(u(i))
		if d < 0 {
			return 0, fmt.Errorf("negative duration %v", d)
		}
		return d, nil
	}
	switch t {
	case ctlSpec:
		var s workerSpec
		if err := json.Unmarshal(p, &s); err != nil {
			return nil, err
		}
		return s, nil
	case ctlSetMemLimit:
		return setMemLimitMsg{Seq: u(0), Bytes: u(1)}, nil
	case ctlGrant:
		d, err := dur(1)
		return grantMsg{ID: u(0), Budget: d}, err
	case ctlReport:
		d, err := dur(6)
		return workerReport{Calls: u(0), Errors: u(1), BytesIn: u(2), BytesOut: u(3), MemUsed: u(4), MemLimit: u(5), Busy: d}, err
	case ctlAck:
		return ackMsg{Seq: u(0), Err: string(p[8:])}, nil
	case ctlAcquire:
		return acquireMsg{}, nil
	case ctlUsed:
		d, err := dur(1)
		return usedMsg{Grant: u(0), Used: d}, err
	case ctlRenew:
		d, err := dur(1)
		return renewMsg{Grant: u(0), Used: d}, err
	case ctlYield:
		d, err := dur(1)
		return yieldMsg{Grant: u(0), Budget: d}, err
	case ctlReserve:
		return reserveMsg{Seq: u(0), Bytes: u(1)}, nil
	case ctlReserved:
		if u(1) > math.MaxUint32 {
			return nil, fmt.Errorf("result %d", u(1))
		}
		return reservedMsg{Seq: u(0), Code: abi.Result(u(1)), Free: u(2), Err: string(p[24:])}, nil
	case ctlRelease:
		return releaseMsg{Bytes: u(0)}, nil
	case ctlSMPartition:
		if u(0) > maxSMGroups || u(1) > maxSMGroups || u(2) > maxSMGroups || u(3) > 1 {
			return nil, fmt.Errorf("SM partition %d %d %d %d", u(0), u(1), u(2), u(3))
		}
		return smPartitionMsg{Device: int(u(0)), First: int(u(1)), Groups: int(u(2)), Gated: u(3) == 1}, nil
	}
	return nil, fmt.Errorf("unknown message type %d", t)
}

// ctlWriter writes control messages, one whole frame at a time, from any
// goroutine.
type ctlWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func newCtlWriter(w io.Writer) *ctlWriter { return &ctlWriter{w: w} }

// send writes m's frame.
func (c *ctlWriter) send(m ctlMsg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := appendCtlFrame(c.buf[:0], m)
	if err != nil {
		return err
	}
	if cap(b) <= maxKeptFrame {
		c.buf = b
	}
	_, err = c.w.Write(b)
	return err
}

// maxKeptFrame is the largest frame buffer a ctlWriter keeps for reuse.
const maxKeptFrame = 4 << 10
