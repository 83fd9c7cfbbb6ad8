package transport

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/gpu/hostmem"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

type staticAuth struct{}

func (staticAuth) Authenticate([]byte) (auth.Tenant, error) { return auth.Tenant{ID: "fuzz"}, nil }

func frame(h wire.Header, payload []byte) []byte {
	b := make([]byte, wire.HeaderSize, wire.HeaderSize+len(payload))
	h.Len = uint32(len(payload))
	wire.PutHeader(b, h)
	return append(b, payload...)
}

// FuzzSession feeds arbitrary bytes to a real server session after a valid
// handshake. The session may end, but must not panic, hang, or leave
// memory allocated.
func FuzzSession(f *testing.F) {
	alloc := binary.LittleEndian.AppendUint64(nil, 4096)
	f.Add(frame(wire.Header{Type: wire.Call, Call: abi.CallMemAlloc, Flags: wire.WantReply, Seq: 1}, alloc))
	f.Add(append(frame(wire.Header{Type: wire.Call, Call: abi.CallMemAlloc, Flags: wire.WantReply, Seq: 1}, alloc),
		frame(wire.Header{Type: wire.Call, Call: abi.CallMemsetAsync, Seq: 2}, make([]byte, 32))...))
	f.Add(frame(wire.Header{Type: wire.Call, Call: abi.CallModuleLoad, Flags: wire.WantReply, Seq: 1}, binary.LittleEndian.AppendUint64(nil, 3)))
	f.Add(frame(wire.Header{Type: wire.Call, Call: 999, Flags: wire.WantReply, Seq: 1}, nil))
	// Virtual memory left mapped, its handle released, when the session
	// ends: a reservation (the host-memory backend's first address),
	// physical memory (the session's first handle), a mapping made
	// accessible and written.
	const granule = 2 << 20
	words := func(ws ...uint64) []byte {
		var b []byte
		for _, w := range ws {
			b = binary.LittleEndian.AppendUint64(b, w)
		}
		return b
	}
	handle := uint64(abi.AllocationHandle)<<56 | 1
	var vm []byte
	for i, c := range []struct {
		id   abi.CallID
		args []byte
	}{
		{abi.CallMemAddressReserve, words(2*granule, 0)},
		{abi.CallMemCreate, words(granule)},
		{abi.CallMemMap, words(1<<40, granule, 0, handle)},
		{abi.CallMemSetAccess, append(words(1<<40, granule), 3, 0, 0, 0)},
		{abi.CallMemRelease, words(handle)},
		{abi.CallMemset, append(append(words(1<<40+8), 7, 0, 0, 0, 1, 0, 0, 0), words(64)...)},
	} {
		vm = append(vm, frame(wire.Header{Type: wire.Call, Call: c.id, Flags: wire.WantReply, Seq: uint64(i) + 1}, c.args)...)
	}
	f.Add(vm)
	// An allocation, then every call in turn with arguments the catalogue
	// codec writes, so that every handler is within reach.
	calls := frame(wire.Header{Type: wire.Call, Call: abi.CallMemAlloc, Flags: wire.WantReply, Seq: 1}, alloc)
	for _, c := range abi.Calls() {
		v := &abi.Values{}
		for _, a := range c.Args {
			switch {
			case a.Kind == abi.DevPtr:
				v.Word(1 << 40) // the host-memory backend's first allocation
			case a.Kind.IsWord():
				v.Word(1)
			default:
				v.Blob([]byte("k"))
			}
		}
		args, err := wire.AppendValues(nil, c.Args, v)
		if err != nil {
			f.Fatal(err)
		}
		h := wire.Header{Type: wire.Call, Call: c.ID, Seq: uint64(c.ID) + 1}
		if c.Mode == abi.Sync {
			h.Flags = wire.WantReply
		}
		calls = append(calls, frame(h, args)...)
		if c.Bulk == abi.BulkIn { // its size is 1
			calls = append(calls, frame(wire.Header{Type: wire.Data, Call: c.ID, Seq: h.Seq}, []byte{0})...)
		}
	}
	f.Add(calls)
	f.Fuzz(func(t *testing.T, input []byte) {
		mem := hostmem.New(64 << 20)
		srv := &Server{Backend: mem, Auth: staticAuth{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		cli, conn := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ServeStream(context.Background(), conn, Peer{Transport: "pipe"})
		}()
		go io.Copy(io.Discard, cli) // replies
		hello := wire.HelloMsg{MinVersion: 1, MaxVersion: 1, Token: []byte("t")}
		hb, _ := hello.Append(nil)
		cli.SetWriteDeadline(time.Now().Add(5 * time.Second))
		cli.Write(frame(wire.Header{Type: wire.Hello}, hb))
		cli.Write(input)
		cli.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end after its client left")
		}
		if used := mem.Used(); used != 0 {
			t.Fatalf("%d bytes left allocated after the session ended", used)
		}
	})
}
