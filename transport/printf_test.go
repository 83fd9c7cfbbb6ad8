package transport

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/hostmem"
	"github.com/kerf-edge/kerf/internal/testkit"
)

// printfBackend is a host-memory backend whose contexts hold device
// printf output that a test puts there.
type printfBackend struct {
	*hostmem.Backend
	mu   sync.Mutex
	last *printfContext
}

type printfContext struct {
	gpu.Context
	mu  sync.Mutex
	buf []byte
}

func (b *printfBackend) Open(dev int, limit uint64) (gpu.Context, error) {
	c, err := b.Backend.Open(dev, limit)
	if err != nil {
		return nil, err
	}
	pc := &printfContext{Context: c}
	b.mu.Lock()
	b.last = pc
	b.mu.Unlock()
	return pc, nil
}

func (b *printfBackend) lastContext() *printfContext {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

func (c *printfContext) print(s string) {
	c.mu.Lock()
	c.buf = append(c.buf, s...)
	c.mu.Unlock()
}

func (c *printfContext) SetPrintfFIFOSize(uint64) {}

func (c *printfContext) TakePrintf() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	c.buf = nil
	return b
}

// Device printf output reaches the client's Printf writer before the
// reply to a synchronising call, and only then; a client older than
// protocol version 4 gets none and keeps its session.
func TestPrintfReachesClient(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", (2<<20+100)/16) // more than two printf frames
	for _, via := range []string{"unix", "unix-v2", "quic"} {
		t.Run(via, func(t *testing.T) {
			be := &printfBackend{Backend: hostmem.New(1 << 30)}
			ts := startServerB(t, func(s *Server) { s.Backend = be })
			var out testkit.SyncBuffer
			opts := Options{Token: ts.token(t, "printf-"+via, 0), Name: "test", Printf: &out}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var c *Client
			var err error
			switch via {
			case "unix-v2":
				opts.maxVersion = 2
				c, err = DialUnix(ctx, ts.sock, opts)
			case "unix":
				c, err = DialUnix(ctx, ts.sock, opts)
			default:
				c, err = DialQUIC(ctx, ts.quic, QUICOptions{Options: opts, Fingerprint: ts.fp})
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			pc := be.lastContext()
			pc.print("hello 0\nhello 1\n")
			if _, err := c.MemAlloc(64); err != nil {
				t.Fatal(err)
			}
			if out.String() != "" {
				t.Fatalf("a call that does not flush delivered %q", out.String())
			}
			if err := c.Synchronize(); err != nil {
				t.Fatal(err)
			}
			if c.Device.Version < 4 {
				if out.String() != "" {
					t.Fatalf("a version %d session got printf output", c.Device.Version)
				}
				return
			}
			if got := out.String(); got != "hello 0\nhello 1\n" {
				t.Fatalf("after synchronising got %q", got)
			}
			pc.print(big)
			if err := c.Synchronize(); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != "hello 0\nhello 1\n"+big {
				t.Fatalf("after the second synchronise got %d bytes, want %d", len(got), len("hello 0\nhello 1\n"+big))
			}
			if !bytes.Equal(pc.TakePrintf(), nil) {
				t.Fatal("output left behind after it was sent")
			}
		})
	}
}
