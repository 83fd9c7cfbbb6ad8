package emu

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// TestRandomCallsNeverPanic drives a context with random tenant values
// and checks that every failure is an *abi.Error and nothing leaks.
func TestRandomCallsNeverPanic(t *testing.T) {
	release := make(chan struct{})
	close(release)
	b := fakeBackend(Config{MemoryBytes: 1 << 20}, gateProgram(release))
	c := open(t, b, 0, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	var ptrs []uint64
	var streams []gpu.Stream
	var events []gpu.Event
	var funcs []gpu.Function
	m := must(c.ModuleLoad([]byte(fakePTX)))(t)
	for _, name := range []string{"poke", "gate", "refuse"} {
		funcs = append(funcs, must(m.Function(name))(t))
	}
	addr := func() uint64 {
		switch rng.IntN(4) {
		case 0:
			return rng.Uint64()
		case 1:
			if len(ptrs) > 0 {
				return ptrs[rng.IntN(len(ptrs))] + uint64(rng.IntN(300)) - 20
			}
		case 2:
			return uint64(rng.IntN(1 << 12))
		}
		return vaBase + uint64(rng.IntN(1<<17))
	}
	size := func() uint64 {
		if rng.IntN(8) == 0 {
			return rng.Uint64()
		}
		return uint64(rng.IntN(3000))
	}
	stream := func() gpu.Stream {
		if len(streams) == 0 || rng.IntN(3) == 0 {
			return nil
		}
		return streams[rng.IntN(len(streams))]
	}
	var succeeded int
	check := func(op string, err error) {
		if err == nil {
			succeeded++
		}
		var ae *abi.Error
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("%s: error %v is not an *abi.Error", op, err)
		}
	}
	for range 3000 {
		switch rng.IntN(12) {
		case 0:
			p, err := c.MemAlloc(size())
			check("alloc", err)
			if err == nil {
				ptrs = append(ptrs, p)
			}
		case 1:
			check("free", c.MemFree(addr()))
		case 2:
			n := min(size(), 4096)
			check("htod", c.MemcpyHtoD(addr(), make([]byte, n), stream()))
		case 3:
			n := min(size(), 4096)
			check("dtoh", c.MemcpyDtoH(make([]byte, n), addr(), stream()))
		case 4:
			check("dtod", c.MemcpyDtoD(addr(), addr(), size(), stream()))
		case 5:
			check("memset", c.Memset(addr(), rng.Uint32(), uint32(rng.IntN(6)), size(), stream()))
		case 6:
			s, err := c.StreamCreate(uint32(rng.IntN(3)), rng.Int32())
			check("stream", err)
			if err == nil {
				streams = append(streams, s)
			}
		case 7:
			e, err := c.EventCreate(uint32(rng.IntN(8)))
			check("event", err)
			if err == nil {
				events = append(events, e)
			}
		case 8:
			if len(events) > 0 {
				e := events[rng.IntN(len(events))]
				check("record", e.Record(stream()))
				check("query", e.Query())
				_, err := e.ElapsedSince(events[rng.IntN(len(events))])
				check("elapsed", err)
			}
		case 9:
			if len(streams) > 0 && len(events) > 0 {
				s := streams[rng.IntN(len(streams))]
				check("wait", s.WaitEvent(events[rng.IntN(len(events))]))
				if rng.IntN(10) == 0 {
					check("destroy", s.Destroy())
				}
			}
		case 10:
			f := funcs[rng.IntN(len(funcs))]
			d := func() abi.Dim3 {
				return abi.Dim3{X: uint32(rng.IntN(4)), Y: uint32(rng.IntN(2)) + 1, Z: 1}
			}
			params := make([]byte, rng.IntN(12))
			if len(ptrs) > 0 && rng.IntN(100) != 0 { // rarely poison the context
				params = ptrParam(ptrs[rng.IntN(len(ptrs))])
			}
			check("launch", c.Launch(f, abi.LaunchConfig{Grid: d(), Block: d(), SharedBytes: rng.Uint32() % (64 << 10)}, params, stream()))
		case 11:
			check("sync", c.Synchronize())
			check("limit", c.SetMemLimit(rng.Uint64()%(128<<10)))
		}
	}
	t.Logf("%d calls succeeded", succeeded)
	ok(t, c.Close())
	if got := b.UsedBytes(0); got != 0 {
		t.Errorf("UsedBytes = %d after Close", got)
	}
}
