package transport

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu/hostmem"
	"github.com/kerf-edge/kerf/transport/internal/wire"
	"github.com/kerf-edge/kerf/transport/internal/wire/argshape"
)

// Every catalogue call has a handler, which decodes the call's own
// argument struct: named as the call, with the catalogue's arguments as
// its fields, in order.
func TestEveryCallHasAHandler(t *testing.T) {
	calls := abi.Calls()
	if len(handlers) != len(calls)+1 {
		t.Errorf("handler table of %d entries for %d calls", len(handlers)-1, len(calls))
	}
	for _, c := range calls {
		hd := handlerFor(c.ID)
		if hd == nil {
			t.Errorf("%s: no handler", c.Name)
			continue
		}
		a := hd.args()
		if err := argshape.Check(reflect.TypeOf(a), c); err != nil {
			t.Error(err)
		}
		// handleBulk requires the size of the bulk payload; handle does not.
		_, sized := a.(interface{ BulkSize() uint64 })
		if sized != (c.Bulk != abi.NoBulk) {
			t.Errorf("%s: handler's arguments have a bulk size %v, want %v", c.Name, sized, c.Bulk != abi.NoBulk)
		}
	}
	if handlerFor(0) != nil || handlerFor(abi.CallID(len(handlers))) != nil {
		t.Error("a handler for an id outside the catalogue")
	}
}

// fastPathSession returns a session on the host-memory backend that owns
// 4 KiB at the returned address, a stream and an event.
func fastPathSession(t testing.TB) (ss *session, p, stream, event uint64) {
	t.Helper()
	ctx, err := hostmem.New(1<<20).Open(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctx.Close() })
	ss = &session{srv: &Server{}, ctx: ctx}
	if p, err = ctx.MemAlloc(4096); err != nil {
		t.Fatal(err)
	}
	ss.mem.insert(memRange{base: p, size: 4096})
	s, err := ctx.StreamCreate(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ctx.EventCreate(0)
	if err != nil {
		t.Fatal(err)
	}
	return ss, p, ss.handles.add(abi.StreamHandle, s, 0), ss.handles.add(abi.EventHandle, ev, 0)
}

// fastPathAgrees runs call id with payload p through the burst loop's
// fast path on one session and through the handler table on another,
// both fresh, and fails unless both give the same result, or the fast
// path declines. It reports whether the fast path took the call.
func fastPathAgrees(t *testing.T, id abi.CallID, p []byte) bool {
	t.Helper()
	fast, _, _, _ := fastPathSession(t)
	code, took := fast.execScalarAsync(id, p)
	if !took {
		return false
	}
	general, _, _, _ := fastPathSession(t)
	if err := general.exec1(wire.Header{Type: wire.Call, Call: id}, abi.Lookup(id), p); err != nil {
		t.Fatalf("%s: %v", abi.Lookup(id).Name, err)
	}
	if general.latched != code {
		t.Fatalf("%s %x: fast path gave %v, the handler table %v", abi.Lookup(id).Name, p, code, general.latched)
	}
	return true
}

// The burst loop's fast path takes every async call of scalars, and only
// those, at their exact size, and gives the handler table's results.
func TestFastPathCoversAsyncScalarCalls(t *testing.T) {
	_, p, stream, event := fastPathSession(t)
	for _, c := range abi.Calls() {
		want := c.Mode == abi.Async && c.Bulk == abi.NoBulk && len(c.Args) > 0
		var args []byte
		for _, a := range c.Args {
			switch a.Kind {
			case abi.U32:
				args = binary.LittleEndian.AppendUint32(args, 1)
			case abi.DevPtr:
				args = binary.LittleEndian.AppendUint64(args, p)
			case abi.Handle:
				args = binary.LittleEndian.AppendUint64(args, map[abi.HandleKind]uint64{abi.StreamHandle: stream, abi.EventHandle: event}[a.Handle])
			case abi.U64:
				args = binary.LittleEndian.AppendUint64(args, 1)
			default:
				want = false
			}
		}
		if took := fastPathAgrees(t, c.ID, args); took != want {
			t.Errorf("%s: fast path took it %v, want %v", c.Name, took, want)
		}
		if want && (fastPathAgrees(t, c.ID, args[1:]) || fastPathAgrees(t, c.ID, append(args, 0))) {
			t.Errorf("%s: fast path took a payload of the wrong size", c.Name)
		}
	}
}

// FuzzFastPath: for arbitrary calls and payloads, the fast path gives the
// handler table's result whenever it takes a call.
func FuzzFastPath(f *testing.F) {
	_, p, stream, event := fastPathSession(f)
	for _, seed := range []struct {
		id   abi.CallID
		args *abi.Values
	}{
		{abi.CallMemsetAsync, vals(p, 7, 4, 16, stream)},
		{abi.CallMemsetAsync, vals(p+1, 7, 2, 1<<62, 0)},
		{abi.CallMemcpyDtoDAsync, vals(p, p+2048, 2048, stream)},
		{abi.CallEventRecord, vals(event, stream)},
		{abi.CallStreamWaitEvent, vals(stream, event, 0)},
	} {
		b, err := wire.AppendValues(nil, abi.Lookup(seed.id).Args, seed.args)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(seed.id), b)
	}
	f.Fuzz(func(t *testing.T, id uint16, p []byte) {
		fastPathAgrees(t, abi.CallID(id), p)
	})
}
