package wire

import (
	"bufio"
	"fmt"
	"io"

	"github.com/kerf-edge/kerf/abi"
)

// BufSize is the size of the read and write buffers of a Conn.
const BufSize = 256 << 10

// Conn reads and writes frames on a byte stream. Reads and writes may run
// concurrently with each other, but not with themselves.
//
// Frames to send are encoded straight into the write buffer, which is
// sent when full or on Flush; a frame larger than the buffer is written
// through. After a write error every write returns it.
type Conn struct {
	r    *bufio.Reader
	buf  []byte // a large payload read
	w    io.Writer
	wbuf []byte
	werr error
}

// NewConn wraps rw.
func NewConn(rw io.ReadWriter) *Conn { return NewConnSize(rw, BufSize) }

// NewConnSize wraps rw with read and write buffers of size bytes: small
// ones for a stream that has not authenticated yet.
func NewConnSize(rw io.ReadWriter, size int) *Conn {
	return &Conn{r: bufio.NewReaderSize(rw, size), w: rw, wbuf: make([]byte, 0, size)}
}

// ReadHeader reads and validates the next frame header. The caller must
// then consume exactly h.Len payload bytes with ReadPayload, ReadInto or
// Discard.
func (c *Conn) ReadHeader() (Header, error) {
	b, err := c.r.Peek(HeaderSize)
	if len(b) < HeaderSize {
		if err == io.EOF && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Header{}, err
	}
	h, err := ParseHeader(b)
	c.r.Discard(HeaderSize)
	return h, err
}

// ReadPayload reads h's payload. The bytes are valid until the next read:
// small payloads are returned in place from the read buffer, larger ones
// in a buffer owned by c.
func (c *Conn) ReadPayload(h Header) ([]byte, error) {
	if int(h.Len) <= c.r.Size() {
		b, err := c.r.Peek(int(h.Len))
		if len(b) < int(h.Len) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		c.r.Discard(len(b))
		return b, nil
	}
	if uint32(cap(c.buf)) < h.Len {
		c.buf = make([]byte, h.Len)
	}
	p := c.buf[:h.Len]
	_, err := io.ReadFull(c.r, p)
	return p, err
}

// ReadInto reads h's payload straight into dst, which must be h.Len bytes.
func (c *Conn) ReadInto(h Header, dst []byte) error {
	if uint32(len(dst)) != h.Len {
		return fmt.Errorf("wire: payload is %d bytes, destination %d", h.Len, len(dst))
	}
	_, err := io.ReadFull(c.r, dst)
	return err
}

// Discard skips h's payload.
func (c *Conn) Discard(h Header) error {
	_, err := c.r.Discard(int(h.Len))
	return err
}

// ReadFrame reads a whole frame; the payload is valid until the next read.
// A frame that fits the read buffer is returned in place, with one peek.
func (c *Conn) ReadFrame() (Header, []byte, error) {
	b, err := c.r.Peek(HeaderSize)
	if len(b) < HeaderSize {
		if err == io.EOF && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Header{}, nil, err
	}
	h, err := ParseHeader(b)
	if err != nil {
		return h, nil, err
	}
	if n := HeaderSize + int(h.Len); n <= c.r.Size() {
		b, err := c.r.Peek(n)
		if len(b) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return h, nil, err
		}
		c.r.Discard(n)
		return h, b[HeaderSize:], nil
	}
	c.r.Discard(HeaderSize)
	p, err := c.ReadPayload(h)
	return h, p, err
}

// PeekBuffered returns the received bytes not yet read, without reading
// more; they stay valid until Consume or the next read.
func (c *Conn) PeekBuffered() []byte {
	b, _ := c.r.Peek(c.r.Buffered())
	return b
}

// Consume marks n bytes of PeekBuffered's as read.
func (c *Conn) Consume(n int) { c.r.Discard(n) }

// TakeBuffered returns a copy of the received bytes not yet read, and
// consumes them: for handing the stream to another reader.
func (c *Conn) TakeBuffered() []byte {
	b, _ := c.r.Peek(c.r.Buffered())
	out := append([]byte(nil), b...)
	c.r.Discard(len(b))
	return out
}

// Buffered reports how many received bytes are waiting to be read.
func (c *Conn) Buffered() int { return c.r.Buffered() }

// WriteFrame writes a frame whose payload is the concatenation of parts.
// It buffers; call Flush to send.
func (c *Conn) WriteFrame(h Header, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > maxPayload {
		return fmt.Errorf("wire: %s frame of %d bytes exceeds the limit", h.Type, n)
	}
	h.Len = uint32(n)
	if err := c.reserve(HeaderSize); err != nil {
		return err
	}
	c.wbuf = c.wbuf[:len(c.wbuf)+HeaderSize]
	PutHeader(c.wbuf[len(c.wbuf)-HeaderSize:], h)
	for _, p := range parts {
		if err := c.write(p); err != nil {
			return err
		}
	}
	return nil
}

// callReserve is the room WriteCall makes before encoding a frame whose
// size it does not know beforehand (one with blobs, such as a launch's
// parameters); a larger frame grows the buffer.
const callReserve = 512

// ArgsError reports arguments that do not fit their catalogue entry; the
// stream is unharmed.
type ArgsError struct{ Err error }

func (e *ArgsError) Error() string { return e.Err.Error() }

// WriteCall writes a Call frame for call with the arguments in v, encoded
// in place (see AppendCall). It buffers; call Flush to send. Arguments
// that do not fit the catalogue give an *ArgsError and write nothing.
func (c *Conn) WriteCall(h Header, call *abi.Call, v *abi.Values) error {
	n := scalarFrameSize(call)
	if err := c.reserve(max(n, callReserve)); err != nil {
		return err
	}
	if n > 0 && putScalarCall(c.wbuf[len(c.wbuf):cap(c.wbuf)], h, call, v) {
		c.Commit(n)
		return nil
	}
	b, err := AppendCall(c.wbuf, h, call, v)
	if err != nil {
		return &ArgsError{err}
	}
	c.wbuf = b // may outgrow BufSize once, for a frame with large blobs
	if len(c.wbuf) >= BufSize {
		return c.Flush()
	}
	return nil
}

// Reserve returns room for an n-byte frame at the end of the write
// buffer, flushing first if needed, or nil after a write error. The
// caller encodes the frame there and then calls Commit(n).
func (c *Conn) Reserve(n int) []byte {
	if c.reserve(n) != nil {
		return nil
	}
	return c.wbuf[len(c.wbuf) : len(c.wbuf)+n]
}

// Commit adds the n bytes encoded in Reserve's room to the frames to send.
func (c *Conn) Commit(n int) { c.wbuf = c.wbuf[:len(c.wbuf)+n] }

// reserve makes room for n bytes in the write buffer, flushing if needed.
func (c *Conn) reserve(n int) error {
	if c.werr != nil {
		return c.werr
	}
	if cap(c.wbuf)-len(c.wbuf) < n {
		return c.Flush()
	}
	return nil
}

// write buffers p as bufio.Writer does: what does not fit tops up the
// buffer, which is sent, and a remainder larger than the buffer is
// written through.
func (c *Conn) write(p []byte) error {
	for c.werr == nil && len(p) > cap(c.wbuf)-len(c.wbuf) {
		if len(c.wbuf) == 0 {
			_, c.werr = c.w.Write(p)
			return c.werr
		}
		n := cap(c.wbuf) - len(c.wbuf)
		c.wbuf = append(c.wbuf, p[:n]...)
		p = p[n:]
		c.Flush()
	}
	if c.werr != nil {
		return c.werr
	}
	c.wbuf = append(c.wbuf, p...)
	return nil
}

// Flush sends buffered frames.
func (c *Conn) Flush() error {
	if c.werr != nil || len(c.wbuf) == 0 {
		return c.werr
	}
	_, c.werr = c.w.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	return c.werr
}

// Pending reports how many bytes are buffered for writing.
func (c *Conn) Pending() int { return len(c.wbuf) }
