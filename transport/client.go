package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// Options configure a client session.
type Options struct {
	// Token is the tenant's bearer token.
	Token []byte
	// Device is the ordinal of the device to open on the server.
	Device int
	// MemLimit asks for a memory limit below the token's; 0 takes the
	// token's (or the device's).
	MemLimit uint64
	// Lease is a lease ID from OpenLease*; the session then runs in the
	// lease's slice on Device.
	Lease string
	// Name identifies the client in the server's logs. A session's hello
	// names this process's ID first and then what fits of Name.
	Name string
	// Printf receives the device printf output the server sends before
	// the reply to a call that flushes it (abi.FlushesPrintf), from the
	// session's reading goroutine; nil discards it.
	Printf io.Writer

	maxVersion uint16 // tests: the newest protocol version offered (0: ProtocolVersion)
}

// Device describes the session's device as the server presents it: its
// TotalMem is the tenant's slice.
type Device struct {
	Session uint64
	Version uint16
	gpu.DeviceInfo
}

// asyncFlushAt is the buffered size at which an async call flushes inline
// rather than leaving it to the flusher.
const asyncFlushAt = 64 << 10

// Client is one session: one device context on the server, with one
// ordered submission sequence. Its methods may be called from many
// goroutines; calls are submitted in the order they take the write lock.
type Client struct {
	Device Device
	// Fingerprint is the server certificate seen (QUIC only).
	Fingerprint Fingerprint

	rw     io.Closer
	conn   *wire.Conn
	shm    *shmRing
	printf io.Writer // Options.Printf

	wmu         sync.Mutex // serialises writes and owns seq, flushQueued, closed
	seq         uint64
	flushQueued bool // the flusher is signalled and has not yet flushed
	closed      bool // Close has unmapped the shared memory

	pmu       sync.Mutex
	pending   map[uint64]*pending
	asyncOut  []uint64 // seqs of async device-to-host copies in flight
	readerErr error
	flushc    chan struct{}
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// pending is a call waiting for a reply or for device-to-host data.
type pending struct {
	call  *abi.Call
	res   *abi.Values
	dst   []byte
	got   int
	code  abi.Result
	text  string // the error's text, from protocol version 3 on
	err   error
	async bool
	done  chan struct{}
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

// newClient runs the handshake on rw and starts the reader. local is rw
// on the local path, where the shared-memory ring arrives after the
// hello; nil elsewhere.
func newClient(rw io.ReadWriteCloser, local *net.UnixConn, opts Options) (*Client, error) {
	c := &Client{rw: rw, conn: wire.NewConn(rw), printf: opts.Printf, pending: map[uint64]*pending{}, flushc: make(chan struct{}, 1), done: make(chan struct{})}
	maxVersion := abi.ProtocolVersion
	if opts.maxVersion != 0 {
		maxVersion = opts.maxVersion
	}
	hello := wire.HelloMsg{MinVersion: abi.MinProtocolVersion, MaxVersion: maxVersion, Token: opts.Token, Device: uint32(opts.Device), MemLimit: opts.MemLimit, Lease: opts.Lease,
		Client: clientDescription(os.Getpid(), opts.Name)}
	b, err := hello.Append(nil)
	if err == nil {
		err = c.conn.WriteFrame(wire.Header{Type: wire.Hello}, b)
	}
	if err == nil {
		err = c.conn.Flush()
	}
	if err != nil {
		return nil, fmt.Errorf("sending hello: %w", err)
	}
	shmFD := -1
	if local != nil {
		fd, prefix, err := recvShm(local)
		if err != nil {
			return nil, fmt.Errorf("reading hello reply: %w", err)
		}
		if fd >= 0 {
			shmFD = fd
			defer closeShmFD(fd) // mapped below, or refused
		}
		if prefix != nil {
			c.conn = wire.NewConn(readWriter(io.MultiReader(bytes.NewReader(prefix), rw), rw))
		}
	}
	h, p, err := c.conn.ReadFrame()
	if err != nil {
		return nil, fmt.Errorf("reading hello reply: %w", err)
	}
	switch h.Type {
	case wire.HelloAck:
	case wire.Error:
		var m wire.ErrorMsg
		if err := m.Decode(p); err != nil {
			return nil, fmt.Errorf("server refused the session with an undecodable error: %w", err)
		}
		return nil, &abi.Error{Code: m.Code, Msg: "server refused the session: " + m.Message}
	default:
		return nil, fmt.Errorf("expected hello reply, got %s frame", h.Type)
	}
	var ack wire.HelloAckMsg
	if err := ack.Decode(p); err != nil {
		return nil, err
	}
	if ack.Version < abi.MinProtocolVersion || ack.Version > maxVersion {
		return nil, fmt.Errorf("server chose protocol version %d, client speaks %d..%d", ack.Version, abi.MinProtocolVersion, maxVersion)
	}
	c.Device = Device{Session: ack.Session, Version: ack.Version, DeviceInfo: gpu.DeviceInfo{Name: ack.Name, UUID: ack.UUID,
		TotalMem: ack.TotalMem, CCMajor: int(ack.CCMajor), CCMinor: int(ack.CCMinor), SMs: int(ack.SMs), Emulated: ack.Emulated,
		DriverVersion: int(ack.DriverVersion)}}
	if local != nil {
		if shmFD < 0 || ack.ShmSlots == 0 {
			return nil, errors.New("local server offered no shared memory")
		}
		callRing := ack.Version >= 2
		if c.shm, err = mapShmRing(shmFD, int(ack.ShmSlots), int(ack.ShmSlotSize), callRing); err != nil {
			return nil, err
		}
		if callRing {
			// Frames go to the call ring from here on; the socket
			// carries doorbells up and everything down.
			var r io.Reader = rw
			if b := c.conn.TakeBuffered(); len(b) > 0 {
				r = io.MultiReader(bytes.NewReader(b), rw)
			}
			c.conn = wire.NewConn(struct {
				io.Reader
				io.Writer
			}{r, &callRingWriter{ring: c.shm, bell: rw, done: c.done}})
		}
	}
	c.wg.Add(2)
	go c.readLoop()
	go c.flushLoop()
	return c, nil
}

// Close ends the session; the server frees everything it still holds.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.rw.Close()
		c.wg.Wait()
		c.wmu.Lock()
		c.closed = true
		_ = c.shm.close()
		c.wmu.Unlock()
	})
	return err
}

// Err returns why the session ended, or nil while it is up.
func (c *Client) Err() error {
	select {
	case <-c.done:
		c.pmu.Lock()
		defer c.pmu.Unlock()
		return c.readerErr
	default:
		return nil
	}
}

// Call performs a call without bulk payload. For Sync calls it waits for
// the reply and decodes the results into res (which may be nil for calls
// without results); blobs in res are owned by the caller. Async calls
// return at once; their errors come back from a later Sync call.
func (c *Client) Call(id abi.CallID, args, res *abi.Values) error {
	return c.do(id, args, res, nil, nil)
}

// CallIn performs a call whose bulk payload data flows to the server.
func (c *Client) CallIn(id abi.CallID, args *abi.Values, data []byte, res *abi.Values) error {
	return c.do(id, args, res, data, nil)
}

// CallOut performs a call whose bulk payload flows back into dst. For an
// Async call dst must stay valid until a later Sync call returns.
func (c *Client) CallOut(id abi.CallID, args *abi.Values, dst []byte, res *abi.Values) error {
	return c.do(id, args, res, nil, dst)
}

func (c *Client) do(id abi.CallID, args, res *abi.Values, in, out []byte) error {
	call := abi.Lookup(id)
	if call == nil {
		return abi.Errorf(abi.ErrNotSupported, "call %d is not in the catalogue", id)
	}
	if (call.Bulk == abi.BulkIn) != (in != nil) || (call.Bulk == abi.BulkOut) != (out != nil) {
		return abi.Errorf(abi.ErrInvalidValue, "%s: bulk payload does not match the catalogue", call.Name)
	}
	if args == nil {
		args = &abi.Values{}
	}
	if call.Bulk != abi.NoBulk {
		if n := uint64(max(len(in), len(out))); call.SizeArg() < 0 || args.Words[call.SizeArg()] != n {
			return abi.Errorf(abi.ErrInvalidValue, "%s: size argument does not match the payload", call.Name)
		}
	}
	sync := call.Mode == abi.Sync
	var p *pending
	if sync || out != nil {
		p = pendingPool.Get().(*pending)
		*p = pending{call: call, res: res, dst: out, async: !sync, done: p.done}
	}

	c.wmu.Lock()
	if c.closed {
		// The shared memory is unmapped; the reader has set why.
		c.wmu.Unlock()
		if p != nil {
			pendingPool.Put(p)
		}
		return c.Err()
	}
	c.seq++
	seq := c.seq
	if p != nil {
		c.pmu.Lock()
		if c.readerErr != nil {
			err := c.readerErr
			c.pmu.Unlock()
			c.wmu.Unlock()
			return err
		}
		c.pending[seq] = p
		if p.async {
			c.asyncOut = append(c.asyncOut, seq)
		}
		c.pmu.Unlock()
	}
	err := c.write(call, seq, args, in, sync)
	if err == nil && !sync {
		c.queueFlush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("writing %s: %w", call.Name, err))
		return c.waitResult(p)
	}
	if !sync {
		return nil
	}
	return c.waitResult(p)
}

// queueFlush has the flusher send the buffered async calls unless more
// follow first; wmu is held.
func (c *Client) queueFlush() {
	if !c.flushQueued {
		c.flushQueued = true
		select {
		case c.flushc <- struct{}{}:
		default:
		}
	}
}

// asyncFrame is the hot path of an async call whose arguments are all
// scalars: it takes the write lock and returns room in the write buffer
// for the call's n-byte frame and the call's sequence number. The caller
// encodes the frame with its generated encoder and calls commitAsync. When
// the session is closed or its stream broken it returns nil, with the
// lock released, and the caller takes the general path, which reports
// why.
func (c *Client) asyncFrame(n int) ([]byte, uint64) {
	c.wmu.Lock()
	var f []byte
	if !c.closed { // Reserve may flush, to memory Close has unmapped
		f = c.conn.Reserve(n)
	}
	if f == nil {
		c.wmu.Unlock()
		return nil, 0
	}
	c.seq++
	return f, c.seq
}

// commitAsync sends asyncFrame's n-byte frame and releases the lock.
func (c *Client) commitAsync(n int) error {
	c.conn.Commit(n)
	var err error
	if c.conn.Pending() >= asyncFlushAt {
		err = c.conn.Flush()
	}
	if err == nil {
		c.queueFlush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("sending async calls: %w", err))
		return c.Err()
	}
	return nil
}

// write sends one call and its bulk payload; wmu is held.
func (c *Client) write(call *abi.Call, seq uint64, args *abi.Values, in []byte, sync bool) error {
	var flags uint8
	if sync {
		flags = wire.WantReply
	}
	if err := c.conn.WriteCall(wire.Header{Type: wire.Call, Flags: flags, Call: call.ID, Seq: seq}, call, args); err != nil {
		if ae, ok := err.(*wire.ArgsError); ok {
			return &abi.Error{Code: abi.ErrInvalidValue, Msg: ae.Error()}
		}
		return err
	}
	if err := c.writeBulk(call.ID, seq, in); err != nil {
		return err
	}
	if sync || c.conn.Pending() >= asyncFlushAt {
		return c.conn.Flush()
	}
	return nil
}

func (c *Client) writeBulk(id abi.CallID, seq uint64, in []byte) error {
	if c.shm != nil && len(in) >= shmMin {
		var ref [8]byte
		for len(in) > 0 {
			slot, err := c.shm.acquire(ringUp, c.conn.Flush)
			if err != nil {
				return err
			}
			n := copy(c.shm.slot(ringUp, slot), in)
			if err := c.conn.WriteFrame(wire.Header{Type: wire.ShmData, Call: id, Seq: seq}, shmRef(&ref, slot, n)); err != nil {
				return err
			}
			// Let the server start on this chunk while the next is filled.
			if err := c.conn.Flush(); err != nil {
				return err
			}
			in = in[n:]
		}
		return nil
	}
	for len(in) > 0 {
		n := min(len(in), abi.BulkChunk)
		if err := c.conn.WriteFrame(wire.Header{Type: wire.Data, Call: id, Seq: seq}, in[:n]); err != nil {
			return err
		}
		in = in[n:]
	}
	return nil
}

func (c *Client) waitResult(p *pending) error {
	if p == nil || p.async {
		return c.Err()
	}
	<-p.done
	err := p.err
	if err == nil && p.code != abi.Success {
		err = p.code
		if p.text != "" {
			err = &abi.Error{Code: p.code, Msg: p.text}
		}
	}
	pendingPool.Put(p)
	return err
}

// Flush sends buffered async calls now.
func (c *Client) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return c.Err()
	}
	c.flushQueued = false
	return c.conn.Flush()
}

func (c *Client) flushLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.flushc:
			if err := c.Flush(); err != nil {
				c.fail(err)
			}
		case <-c.done:
			return
		}
	}
}

// fail ends the session with err and wakes every waiter.
func (c *Client) fail(err error) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.readerErr != nil {
		return
	}
	var ce *abi.Error
	if !errors.As(err, &ce) {
		err = &abi.Error{Code: abi.ErrDeviceUnavailable, Msg: err.Error()}
	}
	c.readerErr = err
	for seq, p := range c.pending {
		delete(c.pending, seq)
		if !p.async {
			p.err = err
			p.done <- struct{}{}
		}
	}
	c.asyncOut = nil
	close(c.done)
	c.rw.Close()
}

func (c *Client) readLoop() {
	defer c.wg.Done()
	for {
		err := c.readOne()
		if err != nil {
			if errors.Is(err, io.EOF) || isClosed(err) {
				err = &abi.Error{Code: abi.ErrDeviceUnavailable, Msg: "session closed: " + err.Error()}
			}
			c.fail(err)
			return
		}
	}
}

func (c *Client) take(seq uint64) *pending {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.pending[seq]
}

func (c *Client) readOne() error {
	h, err := c.conn.ReadHeader()
	if err != nil {
		return err
	}
	switch h.Type {
	case wire.Reply:
		p, err := c.conn.ReadPayload(h)
		if err != nil {
			return err
		}
		c.pmu.Lock()
		w := c.pending[h.Seq]
		delete(c.pending, h.Seq)
		// Every async copy submitted before this call has finished.
		n := 0
		for n < len(c.asyncOut) && c.asyncOut[n] < h.Seq {
			delete(c.pending, c.asyncOut[n])
			n++
		}
		c.asyncOut = c.asyncOut[n:]
		c.pmu.Unlock()
		if w == nil || w.async {
			return fmt.Errorf("reply to call %d that is not waiting", h.Seq)
		}
		res := w.res
		if res == nil {
			res = &abi.Values{}
		}
		w.code, w.text, w.err = wire.DecodeReply(w.call, p, res, c.Device.Version >= 3)
		for i := range res.NB {
			res.Blobs[i] = bytes.Clone(res.Blobs[i])
		}
		if w.err == nil && w.got != len(w.dst) && w.code == abi.Success {
			w.err = fmt.Errorf("%s returned %d of %d bytes", w.call.Name, w.got, len(w.dst))
		}
		w.done <- struct{}{}
		return nil
	case wire.Data, wire.ShmData:
		w := c.take(h.Seq)
		if w == nil || w.dst == nil {
			return fmt.Errorf("%s frame for call %d that expects none", h.Type, h.Seq)
		}
		left := len(w.dst) - w.got
		if h.Type == wire.Data {
			if int(h.Len) > left {
				return fmt.Errorf("data frame of %d bytes with %d expected", h.Len, left)
			}
			if err := c.conn.ReadInto(h, w.dst[w.got:w.got+int(h.Len)]); err != nil {
				return err
			}
			w.got += int(h.Len)
			return nil
		}
		p, err := c.conn.ReadPayload(h)
		if err != nil {
			return err
		}
		if c.shm == nil {
			return errors.New("shm data on a session without shared memory")
		}
		slot, n, err := decodeShmRef(p, c.shm)
		if err != nil {
			return err
		}
		if n > left {
			return fmt.Errorf("shm chunk of %d bytes with %d expected", n, left)
		}
		copy(w.dst[w.got:], c.shm.slot(ringDown, slot)[:n])
		c.shm.release(ringDown, slot)
		w.got += n
		return nil
	case wire.Printf:
		if c.Device.Version < 4 {
			break
		}
		p, err := c.conn.ReadPayload(h)
		if err != nil {
			return err
		}
		if c.printf != nil {
			c.printf.Write(p) //nolint:errcheck // device printf output is best effort, as on a GPU
		}
		return nil
	case wire.Error:
		p, err := c.conn.ReadPayload(h)
		if err != nil {
			return err
		}
		var m wire.ErrorMsg
		if err := m.Decode(p); err != nil {
			return err
		}
		return &abi.Error{Code: m.Code, Msg: m.Message}
	}
	return fmt.Errorf("unexpected %s frame from server", h.Type)
}
