package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/testkit"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestCopiesRoundTrip(t *testing.T) {
	ts := startServer(t)
	for _, via := range transports {
		t.Run(via, func(t *testing.T) {
			c := ts.dial(t, via, ts.token(t, "t-"+via, 0))
			// Sizes straddle the inline/shared-memory threshold and chunk size.
			for _, n := range []int{1, 255, 4096, shmMin - 1, shmMin, abi.BulkChunk + 17, 3*abi.BulkChunk + 5, 9*shmSlotSize + 3} {
				src := randBytes(n, uint64(n))
				p, err := c.MemAlloc(uint64(n))
				if err != nil {
					t.Fatalf("alloc %d: %v", n, err)
				}
				if err := c.MemcpyHtoD(p, src); err != nil {
					t.Fatalf("HtoD %d: %v", n, err)
				}
				dst := make([]byte, n)
				if err := c.MemcpyDtoH(dst, p); err != nil {
					t.Fatalf("DtoH %d: %v", n, err)
				}
				if !bytes.Equal(src, dst) {
					t.Fatalf("%d bytes: data mismatch", n)
				}
				q, err := c.MemAlloc(uint64(n))
				if err != nil {
					t.Fatal(err)
				}
				if err := c.MemcpyDtoD(q, p, uint64(n)); err != nil {
					t.Fatal(err)
				}
				clear(dst)
				if err := c.MemcpyDtoH(dst, q); err != nil || !bytes.Equal(src, dst) {
					t.Fatalf("DtoD %d: %v, equal=%v", n, err, bytes.Equal(src, dst))
				}
				if err := c.MemFree(p); err != nil {
					t.Fatal(err)
				}
				if err := c.MemFree(q); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestMemsetAndInfo(t *testing.T) {
	ts := startServer(t)
	for _, via := range transports {
		t.Run(via, func(t *testing.T) {
			c := ts.dial(t, via, ts.token(t, "t-"+via, 1<<20))
			free, total, err := c.MemGetInfo()
			if err != nil || total != 1<<20 || free != total {
				t.Fatalf("mem info = %d/%d, %v; want the 1 MiB slice", free, total, err)
			}
			if c.Device.TotalMem != 1<<20 {
				t.Fatalf("device total %d, want the slice", c.Device.TotalMem)
			}
			p, err := c.MemAlloc(1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				elem  uint32
				value uint32
				want  []byte
			}{{1, 0xab, []byte{0xab, 0xab, 0xab, 0xab}}, {2, 0x1234, []byte{0x34, 0x12, 0x34, 0x12}}, {4, 0xdeadbeef, []byte{0xef, 0xbe, 0xad, 0xde}}} {
				count := uint64(1000 / tc.elem)
				if err := c.Memset(p, tc.value, tc.elem, count, tc.elem == 2, 0); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, 1000)
				if err := c.MemcpyDtoH(got, p); err != nil {
					t.Fatal(err)
				}
				if want := bytes.Repeat(tc.want, 250); !bytes.Equal(got, want) {
					t.Fatalf("memset D%d: got % x...", tc.elem*8, got[:8])
				}
			}
			_, err = c.MemAlloc(2 << 20)
			wantCode(t, err, abi.ErrOutOfMemory)
			// count × elemsize overflowing 64 bits is refused, not wrapped.
			wantCode(t, c.Memset(p, 0, 4, 1<<62+1, false, 0), abi.ErrInvalidValue)
			wantCode(t, c.Memset(p+1, 0, 4, 1, false, 0), abi.ErrInvalidValue)
			wantCode(t, c.Memset(p, 0, 3, 1, false, 0), abi.ErrInvalidValue)
		})
	}
}

func TestAsyncOrderingAndLatchedErrors(t *testing.T) {
	ts := startServer(t)
	for _, via := range transports {
		t.Run(via, func(t *testing.T) {
			c := ts.dial(t, via, ts.token(t, "t-"+via, 0))
			s, err := c.StreamCreate(0)
			if err != nil {
				t.Fatal(err)
			}
			const n = 1 << 20
			p, _ := c.MemAlloc(n)
			// A copy, memsets and a copy back, all async: the result must
			// reflect submission order.
			src := randBytes(n, 7)
			if err := c.MemcpyHtoDAsync(p, src, s); err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				if err := c.Memset(p+uint64(i*4), uint32(i), 4, 1, true, s); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]byte, n)
			if err := c.MemcpyDtoHAsync(got, p, s); err != nil {
				t.Fatal(err)
			}
			if err := c.StreamSynchronize(s); err != nil {
				t.Fatal(err)
			}
			want := append([]byte(nil), src...)
			for i := range 100 {
				want[i*4], want[i*4+1], want[i*4+2], want[i*4+3] = byte(i), 0, 0, 0
			}
			if !bytes.Equal(got, want) {
				t.Fatal("async operations overtook each other")
			}
			// Memsets and small copies (their data inline, after the call
			// frame) in one burst: the server handles buffered calls in
			// place, and must stop before a copy's data.
			small := make([]byte, 64)
			for round := range 50 {
				for i := range 16 {
					if err := c.Memset(p+uint64(i*4), uint32(round), 4, 1, true, s); err != nil {
						t.Fatal(err)
					}
				}
				for j := range small {
					small[j] = byte(round + j)
				}
				if err := c.MemcpyHtoDAsync(p+64, small, s); err != nil {
					t.Fatal(err)
				}
			}
			got2 := make([]byte, 128)
			if err := c.MemcpyDtoHAsync(got2, p, s); err != nil {
				t.Fatal(err)
			}
			if err := c.StreamSynchronize(s); err != nil {
				t.Fatal(err)
			}
			for i := range 16 {
				if v := binary.LittleEndian.Uint32(got2[i*4:]); v != 49 {
					t.Fatalf("word %d = %d after the burst, want 49", i, v)
				}
			}
			if !bytes.Equal(got2[64:], small) {
				t.Fatal("small copies in the burst landed out of order")
			}
			// An async error is latched and returned by the next sync call,
			// which then does not run; the call after that works.
			if err := c.Memset(0xdead0000, 0, 1, 16, true, s); err != nil {
				t.Fatalf("async call returned %v before any sync point", err)
			}
			wantCode(t, c.StreamSynchronize(s), abi.ErrInvalidValue)
			if err := c.StreamSynchronize(s); err != nil {
				t.Fatalf("latched error returned twice: %v", err)
			}
			// Events time the work in between.
			e1, _ := c.EventCreate(0)
			e2, _ := c.EventCreate(0)
			c.EventRecord(e1, s)
			c.MemcpyHtoDAsync(p, src, s)
			c.EventRecord(e2, s)
			if ms, err := c.EventElapsedTime(e1, e2); err != nil || ms < 0 {
				t.Fatalf("elapsed = %v, %v", ms, err)
			}
		})
	}
}

func TestOwnership(t *testing.T) {
	ts := startServer(t)
	a := ts.dial(t, "unix", ts.token(t, "alice", 0))
	b := ts.dial(t, "quic", ts.token(t, "bob", 0))
	pa, err := a.MemAlloc(4096)
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := a.StreamCreate(0)
	ea, _ := a.EventCreate(0)
	buf := make([]byte, 16)
	// Bob can name none of Alice's memory or handles.
	wantCode(t, b.MemcpyDtoH(buf, pa), abi.ErrInvalidValue)
	wantCode(t, b.MemcpyHtoD(pa, buf), abi.ErrInvalidValue)
	wantCode(t, b.MemFree(pa), abi.ErrInvalidValue)
	wantCode(t, b.StreamSynchronize(sa), abi.ErrInvalidHandle)
	wantCode(t, b.Call(abi.CallEventQuery, vals(ea), nil), abi.ErrInvalidHandle)
	// The pipelined async calls, whose server path is their own, latch
	// the same refusals.
	pb, _ := b.MemAlloc(4096)
	eb, _ := b.EventCreate(0)
	for _, tc := range []struct {
		id   abi.CallID
		args *abi.Values
		want abi.Result
	}{
		{abi.CallMemsetAsync, vals(pa, 0, 4, 1, 0), abi.ErrInvalidValue},
		{abi.CallMemsetAsync, vals(pb, 0, 4, 1, sa), abi.ErrInvalidHandle},
		{abi.CallMemsetAsync, vals(pb+2, 0, 4, 1, 0), abi.ErrInvalidValue},
		{abi.CallMemcpyDtoDAsync, vals(pb, pa, 16, 0), abi.ErrInvalidValue},
		{abi.CallMemcpyDtoDAsync, vals(pa, pb, 16, 0), abi.ErrInvalidValue},
		{abi.CallMemcpyDtoDAsync, vals(pb, pb+2048, 16, sa), abi.ErrInvalidHandle},
		{abi.CallEventRecord, vals(ea, 0), abi.ErrInvalidHandle},
		{abi.CallEventRecord, vals(eb, sa), abi.ErrInvalidHandle},
		{abi.CallStreamWaitEvent, vals(sa, eb, 0), abi.ErrInvalidHandle},
		{abi.CallStreamWaitEvent, vals(0, ea, 0), abi.ErrInvalidHandle},
	} {
		// Through the general encoder, then through the typed helper,
		// which encodes the frame with the call's own generated encoder.
		w := tc.args.Words
		typed := map[abi.CallID]func() error{
			abi.CallMemsetAsync:     func() error { return b.Memset(w[0], uint32(w[1]), uint32(w[2]), w[3], true, w[4]) },
			abi.CallMemcpyDtoDAsync: func() error { return b.MemcpyDtoDAsync(w[0], w[1], w[2], w[3]) },
			abi.CallEventRecord:     func() error { return b.EventRecord(w[0], w[1]) },
			abi.CallStreamWaitEvent: func() error { return b.StreamWaitEvent(w[0], w[1], uint32(w[2])) },
		}
		for _, call := range []func() error{func() error { return b.Call(tc.id, tc.args, nil) }, typed[tc.id]} {
			if err := call(); err != nil {
				t.Fatalf("%s: async call returned %v", abi.Lookup(tc.id).Name, err)
			}
			if got := abi.ResultOf(b.Synchronize()); got != tc.want {
				t.Fatalf("%s %v: latched %v, want %v", abi.Lookup(tc.id).Name, w[:tc.args.NW], got, tc.want)
			}
		}
	}
	if err := b.MemcpyDtoDAsync(pb, pb+2048, 16, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.StreamWaitEvent(0, eb, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Synchronize(); err != nil {
		t.Fatalf("bob's own async copy and wait: %v", err)
	}
	// Nor can Alice overrun her own allocation, or use a handle of the
	// wrong kind.
	wantCode(t, a.MemcpyDtoH(make([]byte, 4097), pa), abi.ErrInvalidValue)
	wantCode(t, a.MemcpyDtoH(buf, pa+4090), abi.ErrInvalidValue)
	wantCode(t, a.MemcpyDtoD(pa, ^uint64(0)-8, 16), abi.ErrInvalidValue)
	wantCode(t, a.StreamSynchronize(ea), abi.ErrInvalidHandle)
	wantCode(t, a.MemFree(pa+256), abi.ErrInvalidValue)
	if err := a.MemFree(pa); err != nil {
		t.Fatal(err)
	}
	wantCode(t, a.MemFree(pa), abi.ErrInvalidValue) // double free
}

// rawCall sends a call frame bypassing the client's catalogue checks.
func rawCall(c *Client, id abi.CallID, flags uint8, payload []byte) (abi.Result, error) {
	p := pendingPool.Get().(*pending)
	*p = pending{call: &abi.Call{ID: id, Name: "raw"}, done: p.done}
	c.wmu.Lock()
	c.seq++
	seq := c.seq
	c.pmu.Lock()
	c.pending[seq] = p
	c.pmu.Unlock()
	c.conn.WriteFrame(wire.Header{Type: wire.Call, Flags: flags, Call: id, Seq: seq}, payload)
	err := c.conn.Flush()
	c.wmu.Unlock()
	if err != nil {
		return 0, err
	}
	<-p.done
	return p.code, p.err
}

func TestUnknownAndMalformedCallsKeepSession(t *testing.T) {
	ts := startServer(t)
	for _, via := range transports {
		t.Run(via, func(t *testing.T) {
			c := ts.dial(t, via, ts.token(t, "t-"+via, 0))
			code, err := rawCall(c, 999, wire.WantReply, nil)
			if err != nil || code != abi.ErrNotSupported {
				t.Fatalf("unknown call: %v, %v; want CUDA_ERROR_NOT_SUPPORTED", code, err)
			}
			// A known call with a short payload is invalid, not fatal.
			code, err = rawCall(c, abi.CallMemAlloc, wire.WantReply, []byte{1, 2})
			if err != nil || code != abi.ErrInvalidValue {
				t.Fatalf("short payload: %v, %v", code, err)
			}
			// An unknown async call is latched as NOT_SUPPORTED.
			c.wmu.Lock()
			c.seq++
			c.conn.WriteFrame(wire.Header{Type: wire.Call, Call: 1234, Seq: c.seq}, []byte("junk"))
			c.wmu.Unlock()
			wantCode(t, c.Synchronize(), abi.ErrNotSupported)
			if _, err := c.MemAlloc(64); err != nil {
				t.Fatalf("session unusable after bad calls: %v", err)
			}
		})
	}
}

func TestHandshakeRefusals(t *testing.T) {
	ts := startServer(t)
	tok := ts.token(t, "carol", 0)
	for _, via := range transports {
		t.Run(via, func(t *testing.T) {
			_, err := ts.tryDial(via, []byte("kerf_not-a-token"))
			if abi.ResultOf(err) != abi.ErrNotPermitted || !strings.Contains(err.Error(), "unknown token") {
				t.Fatalf("bad token: %v", err)
			}
			c := ts.dial(t, via, tok)
			if _, err := c.MemAlloc(64); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Revoking ends live sessions and refuses new ones.
	live := ts.dial(t, "unix", tok)
	if n, err := ts.tokens.Revoke("carol"); err != nil || n != 1 {
		t.Fatalf("revoke: %d, %v", n, err)
	}
	waitFor(t, "revoked session to end", func() bool { return live.Err() != nil })
	if _, err := live.MemAlloc(64); abi.ResultOf(err) != abi.ErrDeviceUnavailable {
		t.Fatalf("call on revoked session: %v", err)
	}
	for _, via := range transports {
		if _, err := ts.tryDial(via, tok); err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("%s: revoked token accepted: %v", via, err)
		}
	}
}

func TestVersionMismatchNamesBothVersions(t *testing.T) {
	ts := startServer(t)
	conn, err := net.Dial("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wc := wire.NewConn(conn)
	hello := wire.HelloMsg{MinVersion: 7, MaxVersion: 9, Token: ts.token(t, "dave", 0)}
	b, _ := hello.Append(nil)
	wc.WriteFrame(wire.Header{Type: wire.Hello}, b)
	wc.Flush()
	h, p, err := wc.ReadFrame()
	if err != nil || h.Type != wire.Error {
		t.Fatalf("want an error frame, got %v %v", h.Type, err)
	}
	var m wire.ErrorMsg
	if err := m.Decode(p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Message, "client speaks 7..9") || !strings.Contains(m.Message, fmt.Sprintf("server speaks %d..%d", abi.MinProtocolVersion, abi.ProtocolVersion)) {
		t.Fatalf("mismatch message does not name both versions: %q", m.Message)
	}
	if _, _, err := wc.ReadFrame(); err == nil {
		t.Fatal("stream stayed open after a version mismatch")
	}
}

func TestFingerprintPinning(t *testing.T) {
	ts := startServer(t)
	tok := ts.token(t, "erin", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wrong := ts.fp
	wrong[0] ^= 1
	if _, err := DialQUIC(ctx, ts.quic, QUICOptions{Options: Options{Token: tok}, Fingerprint: wrong}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("wrong fingerprint accepted: %v", err)
	}
	if _, err := DialQUIC(ctx, ts.quic, QUICOptions{Options: Options{Token: tok}}); err == nil {
		t.Fatal("dial without a pin or trust-on-first-use succeeded")
	}
	c, err := DialQUIC(ctx, ts.quic, QUICOptions{Options: Options{Token: tok}, TrustOnFirstUse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Fingerprint != ts.fp {
		t.Fatalf("trust on first use saw %s, server has %s", c.Fingerprint, ts.fp)
	}
}

func TestModuleLoadOnHostMemory(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t, "unix", ts.token(t, "frank", 0))
	// The image travels as bulk data; hostmem runs no kernels.
	_, err := c.ModuleLoad(bytes.Repeat([]byte("// ptx\n"), 50000))
	wantCode(t, err, abi.ErrNotSupported)
	wantCode(t, c.Call(abi.CallModuleGetFunction, vals(12345).Blob([]byte("k")), &abi.Values{}), abi.ErrInvalidHandle)
	if _, err := c.MemAlloc(64); err != nil {
		t.Fatal(err)
	}
}

// A module that fails to load reaches the tenant with its reason (from
// protocol version 3 on; an older client gets the code alone) and kerfd's
// log with the tenant and session.
func TestModuleLoadFailureText(t *testing.T) {
	for _, via := range append(transports, "unix-v2") {
		t.Run(via, func(t *testing.T) {
			logs := &testkit.SyncBuffer{}
			ts := startServerB(t, func(s *Server) { s.Log = slog.New(slog.NewTextHandler(logs, nil)) })
			c := ts.dial(t, via, ts.token(t, "ivy-"+via, 0))
			_, err := c.ModuleLoad([]byte("// ptx\n"))
			wantCode(t, err, abi.ErrNotSupported)
			var e *abi.Error
			switch {
			case c.Device.Version < 3:
				if errors.As(err, &e) {
					t.Fatalf("a version %d session carried a text: %v", c.Device.Version, err)
				}
			case !errors.As(err, &e) || e.Msg != "hostmem runs no kernels":
				t.Fatalf("load error = %#v, want the backend's text", err)
			}
			// The session goes on.
			if _, err := c.MemAlloc(64); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("tenant=ivy-%s session=%d", via, c.Device.Session)
			waitFor(t, "the failed load in kerfd's log", func() bool {
				return strings.Contains(logs.String(), want)
			})
			if line := firstLine(logs.String(), "module load failed"); !strings.Contains(line, "level=WARN") || !strings.Contains(line, "runs no kernels") {
				t.Fatalf("log line %q", line)
			}
		})
	}
}

func firstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// A token revoked by another process (kerfd token revoke) takes effect in
// the running server, live sessions included.
func TestRevocationFromAnotherProcess(t *testing.T) {
	ts := startServer(t)
	tok := ts.token(t, "grace", 0)
	live := ts.dial(t, "unix", tok)
	other, err := auth.OpenTokenStore(ts.tokensPath)
	if err != nil {
		t.Fatal(err)
	}
	// File timestamps may be coarse: make sure the change is visible.
	time.Sleep(20 * time.Millisecond)
	if n, err := other.Revoke("grace"); n != 1 || err != nil {
		t.Fatalf("revoke: %d, %v", n, err)
	}
	if _, err := ts.tryDial("unix", tok); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("token revoked elsewhere still accepted: %v", err)
	}
	waitFor(t, "live session of the revoked tenant to end", func() bool { return live.Err() != nil })
}

func TestClientAsksForSmallerSlice(t *testing.T) {
	ts := startServer(t)
	tok := ts.token(t, "heidi", 4<<20)
	for _, tc := range []struct{ ask, want uint64 }{{0, 4 << 20}, {1 << 20, 1 << 20}, {8 << 20, 4 << 20}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := DialUnix(ctx, ts.sock, Options{Token: tok, MemLimit: tc.ask})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if _, total, err := c.MemGetInfo(); err != nil || total != tc.want {
			t.Errorf("asked %d: total %d, %v; want %d", tc.ask, total, err, tc.want)
		}
		c.Close()
	}
}

// TestMemGetAddressRange checks that a session learns the range of its
// own allocations only, each with its own buffer ID.
func TestMemGetAddressRange(t *testing.T) {
	ts := startServer(t)
	for _, via := range transports {
		t.Run(via, func(t *testing.T) {
			alice := ts.dial(t, via, ts.token(t, "alice-"+via, 1<<20))
			bob := ts.dial(t, via, ts.token(t, "bob-"+via, 1<<20))
			p, err := alice.MemAlloc(1000)
			if err != nil {
				t.Fatal(err)
			}
			q, err := alice.MemAlloc(3000)
			if err != nil {
				t.Fatal(err)
			}
			base, size, idP, err := alice.MemGetAddressRange(p + 999)
			if err != nil || base != p || size != 1000 {
				t.Fatalf("range of p+999 = %#x + %d, %v; want %#x + 1000", base, size, err, p)
			}
			base, size, idQ, err := alice.MemGetAddressRange(q)
			if err != nil || base != q || size != 3000 {
				t.Fatalf("range of q = %#x + %d, %v; want %#x + 3000", base, size, err, q)
			}
			if idP == 0 || idP == idQ {
				t.Fatalf("buffer IDs %d and %d", idP, idQ)
			}
			_, _, _, err = alice.MemGetAddressRange(p + 1000)
			wantCode(t, err, abi.ErrNotFound)
			_, _, _, err = bob.MemGetAddressRange(p)
			wantCode(t, err, abi.ErrNotFound)
			if err := alice.MemFree(p); err != nil {
				t.Fatal(err)
			}
			_, _, _, err = alice.MemGetAddressRange(p)
			wantCode(t, err, abi.ErrNotFound)
		})
	}
}
