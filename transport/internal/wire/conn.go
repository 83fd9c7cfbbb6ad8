package wire

import (
	"bufio"
	"fmt"
	"io"
)

// BufSize is the size of the read and write buffers of a Conn.
const BufSize = 256 << 10

// Conn reads and writes frames on a byte stream. Reads and writes may run
// concurrently with each other, but not with themselves.
type Conn struct {
	r    *bufio.Reader
	w    *bufio.Writer
	whdr [HeaderSize]byte
	buf  []byte
}

// NewConn wraps rw.
func NewConn(rw io.ReadWriter) *Conn {
	return &Conn{r: bufio.NewReaderSize(rw, BufSize), w: bufio.NewWriterSize(rw, BufSize)}
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
	PutHeader(c.whdr[:], h)
	if _, err := c.w.Write(c.whdr[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := c.w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// WriteEncoded writes frames already encoded in p (header included). It
// buffers; call Flush to send.
func (c *Conn) WriteEncoded(p []byte) error {
	_, err := c.w.Write(p)
	return err
}

// Flush sends buffered frames.
func (c *Conn) Flush() error { return c.w.Flush() }

// Pending reports how many bytes are buffered for writing.
func (c *Conn) Pending() int { return c.w.Buffered() }
