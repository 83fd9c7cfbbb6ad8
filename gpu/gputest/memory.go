package gputest

import (
	"bytes"
	"math"
	"sync"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

// openLimited opens a context with Options.MemLimit and returns it with
// its free bytes, checked to be a whole number (at least two) of Units.
func (s *suite) openLimited(t *testing.T, b gpu.Backend) (c gpu.Context, free uint64) {
	t.Helper()
	c = s.open(t, b, s.opts.MemLimit)
	free, total := c.MemInfo()
	if total != s.opts.MemLimit {
		t.Fatalf("MemInfo total %d, want the limit %d", total, s.opts.MemLimit)
	}
	if free%s.opts.Unit != 0 || free < 2*s.opts.Unit {
		t.Fatalf("gputest.Options: a fresh context has %d of %d bytes free, not a whole number (at least 2) of %d-byte Units",
			free, total, s.opts.Unit)
	}
	return c, free
}

// allocUnits allocates n Units in c.
func (s *suite) allocUnits(t *testing.T, c gpu.Context, n uint64) []uint64 {
	t.Helper()
	ps := make([]uint64, 0, n)
	for i := range n {
		p, err := c.MemAlloc(s.opts.Unit)
		if err != nil {
			t.Fatalf("allocation %d of %d Units: %v", i+1, n, err)
		}
		ps = append(ps, p)
	}
	return ps
}

func freeAll(t *testing.T, c gpu.Context, ps []uint64) {
	t.Helper()
	for _, p := range ps {
		ok(t, "MemFree", c.MemFree(p))
	}
}

func (s *suite) testAllocErrors(t *testing.T) {
	c, free := s.openLimited(t, s.newBackend(t))
	limit := s.opts.MemLimit
	wantCode(t, "MemAlloc(0)", must2(c.MemAlloc(0)), abi.ErrInvalidValue)
	for _, n := range []uint64{limit + 1, 1 << 50, 1 << 63, math.MaxUint64 - 255, math.MaxUint64} {
		p, err := c.MemAlloc(n)
		if err == nil {
			c.MemFree(p)
		}
		wantCode(t, "an allocation larger than the limit", err, abi.ErrOutOfMemory)
	}
	wantInfo(t, "after refused allocations", c, free, limit)

	p := must[uint64](t, "MemAlloc(1)")(c.MemAlloc(1))
	wantCode(t, "MemFree(0)", c.MemFree(0), abi.ErrInvalidValue)
	wantCode(t, "MemFree inside an allocation", c.MemFree(p+1), abi.ErrInvalidValue)
	ok(t, "MemFree", c.MemFree(p))
	wantCode(t, "second MemFree", c.MemFree(p), abi.ErrInvalidValue)
	wantInfo(t, "after free", c, free, limit)
}

// must2 drops a value, keeping the error.
func must2[T any](_ T, err error) error { return err }

func (s *suite) testAllocUpToLimit(t *testing.T) {
	c, free := s.openLimited(t, s.newBackend(t))
	limit, unit := s.opts.MemLimit, s.opts.Unit
	ps := s.allocUnits(t, c, free/unit)
	wantInfo(t, "at the limit", c, 0, limit)
	wantCode(t, "one byte past the limit", must2(c.MemAlloc(1)), abi.ErrOutOfMemory)

	last := len(ps) - 1
	ok(t, "MemFree", c.MemFree(ps[last]))
	wantInfo(t, "after freeing one Unit", c, unit, limit)
	wantCode(t, "a Unit and a byte into one Unit free", must2(c.MemAlloc(unit+1)), abi.ErrOutOfMemory)
	ps[last] = must[uint64](t, "MemAlloc of the freed Unit")(c.MemAlloc(unit))
	wantInfo(t, "at the limit again", c, 0, limit)

	freeAll(t, c, ps)
	wantInfo(t, "after freeing all", c, free, limit)
}

func (s *suite) testAllocOneBlock(t *testing.T) {
	c, free := s.openLimited(t, s.newBackend(t))
	limit := s.opts.MemLimit
	wantCode(t, "all that is free and a byte", must2(c.MemAlloc(free+1)), abi.ErrOutOfMemory)
	p := must[uint64](t, "MemAlloc of all that is free")(c.MemAlloc(free))
	wantInfo(t, "full", c, 0, limit)
	ok(t, "MemFree", c.MemFree(p))

	p = must[uint64](t, "MemAlloc(1)")(c.MemAlloc(1))
	if f, _ := c.MemInfo(); f >= free || free-f > s.opts.Unit {
		t.Fatalf("a 1-byte allocation took %d bytes of the quota", free-f)
	}
	ok(t, "MemFree", c.MemFree(p))
	wantInfo(t, "after free", c, free, limit)
}

// Allocations racing for the last bytes never overcommit, and concurrent
// churn leaves the account where it started.
func (s *suite) testAllocConcurrent(t *testing.T) {
	c, free := s.openLimited(t, s.newBackend(t))
	const workers = 8
	var (
		mu   sync.Mutex
		ps   []uint64
		errs = make(chan error, workers)
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, err := c.MemAlloc(s.opts.Unit)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ps = append(ps, p)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		wantCode(t, "allocation racing for the last Unit", err, abi.ErrOutOfMemory)
	}
	if want := free / s.opts.Unit; uint64(len(ps)) != want {
		t.Fatalf("%d Units allocated concurrently, want exactly %d", len(ps), want)
	}
	wantInfo(t, "full", c, 0, s.opts.MemLimit)
	freeAll(t, c, ps)

	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				p, err := c.MemAlloc(uint64(1 + (w*50+i)*97%4096))
				if err != nil {
					t.Errorf("churn: %v", err)
					return
				}
				c.MemInfo()
				if err := c.MemFree(p); err != nil {
					t.Errorf("churn: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	wantInfo(t, "after concurrent churn", c, free, s.opts.MemLimit)
}

func (s *suite) testSetMemLimit(t *testing.T) {
	c, free := s.openLimited(t, s.newBackend(t))
	limit, unit := s.opts.MemLimit, s.opts.Unit
	dev := c.Device().TotalMem
	if limit+2*unit > dev {
		t.Fatalf("gputest.Options: the device's %d bytes cannot hold MemLimit %d and two Units", dev, limit)
	}

	ok(t, "growing the limit", c.SetMemLimit(limit+2*unit))
	wantInfo(t, "grown", c, free+2*unit, limit+2*unit)
	ps := s.allocUnits(t, c, free/unit+2)
	wantCode(t, "past the grown limit", must2(c.MemAlloc(1)), abi.ErrOutOfMemory)

	wantCode(t, "shrinking below use", c.SetMemLimit(limit+unit), abi.ErrOutOfMemory)
	wantInfo(t, "after a refused shrink", c, 0, limit+2*unit)

	freeAll(t, c, ps[:2])
	ps = ps[2:]
	ok(t, "shrinking to exactly the use", c.SetMemLimit(limit))
	wantInfo(t, "shrunk to use", c, 0, limit)
	wantCode(t, "past the shrunk limit", must2(c.MemAlloc(1)), abi.ErrOutOfMemory)
	wantCode(t, "shrinking a byte below use", c.SetMemLimit(limit-1), abi.ErrOutOfMemory)

	freeAll(t, c, ps[:1])
	ps = ps[1:]
	ok(t, "shrinking", c.SetMemLimit(limit-unit))
	wantInfo(t, "shrunk", c, 0, limit-unit)

	for _, l := range []uint64{0, dev + 1, math.MaxUint64} {
		ok(t, "a limit of the whole device", c.SetMemLimit(l))
		if _, total := c.MemInfo(); total != dev {
			t.Fatalf("SetMemLimit(%d): total %d, want the device's %d", l, total, dev)
		}
	}
	freeAll(t, c, ps)
	ok(t, "restoring the limit", c.SetMemLimit(limit))
	wantInfo(t, "restored", c, free, limit)
}

// Contexts on one device share its memory: a context's free bytes count
// what the others use, and it can allocate exactly them.
func (s *suite) testDeviceShared(t *testing.T) {
	b := s.newBackend(t)
	c1, c2 := s.open(t, b, 0), s.open(t, b, 0)
	unit := s.opts.Unit
	f1, _ := c1.MemInfo()
	p1 := must[uint64](t, "MemAlloc in the first context")(c1.MemAlloc(f1 / 2 / unit * unit))
	f2, _ := c2.MemInfo()
	if f2 > f1-f1/2/unit*unit {
		t.Fatalf("second context reports %d bytes free after the first took %d of %d", f2, f1/2/unit*unit, f1)
	}
	if f2%unit != 0 {
		t.Fatalf("gputest.Options: the device has %d bytes left, not a whole number of Units", f2)
	}
	p2 := must[uint64](t, "MemAlloc of all the second context reports free")(c2.MemAlloc(f2))
	wantCode(t, "a byte more on a full device", must2(c2.MemAlloc(1)), abi.ErrOutOfMemory)
	wantCode(t, "a byte more in the other context", must2(c1.MemAlloc(1)), abi.ErrOutOfMemory)
	ok(t, "MemFree", c2.MemFree(p2))
	ok(t, "MemFree", c1.MemFree(p1))
	if f, _ := c1.MemInfo(); f != f1 {
		t.Fatalf("first context reports %d free after all frees, %d before", f, f1)
	}
}

// Closing a context returns everything it held, allocations and modules.
func (s *suite) testCloseReturnsMemory(t *testing.T) {
	b := s.newBackend(t)
	c := s.open(t, b, 0)
	free, _ := c.MemInfo()
	must[uint64](t, "MemAlloc")(c.MemAlloc(free / 2 / s.opts.Unit * s.opts.Unit))
	must[uint64](t, "MemAlloc")(c.MemAlloc(1))
	if k := s.opts.Kernels; k != nil {
		must[gpu.Module](t, "ModuleLoad")(c.ModuleLoad(k.Ok.Image))
	}
	ok(t, "Close", c.Close())
	c = s.open(t, b, 0)
	if f, _ := c.MemInfo(); f != free {
		t.Fatalf("a new context has %d bytes free; before the old one allocated and closed, %d", f, free)
	}
}

func (s *suite) testClosedContext(t *testing.T) {
	c, _ := s.openLimited(t, s.newBackend(t))
	p := must[uint64](t, "MemAlloc")(c.MemAlloc(64))
	ok(t, "Close", c.Close())
	const closed = abi.ErrInvalidContext
	wantCode(t, "second Close", c.Close(), closed)
	wantCode(t, "MemAlloc", must2(c.MemAlloc(64)), closed)
	wantCode(t, "MemFree", c.MemFree(p), closed)
	wantCode(t, "SetMemLimit", c.SetMemLimit(0), closed)
	wantCode(t, "MemcpyHtoD", c.MemcpyHtoD(p, []byte{1}, nil), closed)
	wantCode(t, "StreamCreate", must2(c.StreamCreate(0, 0)), closed)
	wantCode(t, "EventCreate", must2(c.EventCreate(0)), closed)
	wantCode(t, "Synchronize", c.Synchronize(), closed)
	if s.opts.Kernels != nil {
		wantCode(t, "ModuleLoad", must2(c.ModuleLoad(s.opts.Kernels.Ok.Image)), closed)
	}
	if f, total := c.MemInfo(); f != 0 || total != 0 {
		t.Fatalf("MemInfo of a closed context = %d, %d; want 0, 0", f, total)
	}
}

func (s *suite) testMemoryContents(t *testing.T) {
	if s.opts.NoMemoryContents != "" {
		t.Skip(s.opts.NoMemoryContents)
	}
	c, _ := s.openLimited(t, s.newBackend(t))
	const n = 4096
	p := must[uint64](t, "MemAlloc")(c.MemAlloc(n))
	st := must[gpu.Stream](t, "StreamCreate")(c.StreamCreate(0, 0))
	want := make([]byte, n)
	for i := range want {
		want[i] = byte(i * 7)
	}
	ok(t, "MemcpyHtoD", c.MemcpyHtoD(p, want, st))
	ok(t, "MemcpyDtoD", c.MemcpyDtoD(p+2048, p, 1024, st))
	copy(want[2048:3072], want[:1024])
	ok(t, "Memset", c.Memset(p+1024, 0xAABBCCDD, 4, 16, nil))
	for i := 1024; i < 1024+64; i += 4 {
		copy(want[i:], []byte{0xDD, 0xCC, 0xBB, 0xAA})
	}
	got := make([]byte, n)
	ok(t, "MemcpyDtoH", c.MemcpyDtoH(got, p, nil))
	if !bytes.Equal(got, want) {
		t.Fatal("device memory does not hold what was written")
	}

	const bad = abi.ErrInvalidValue
	wantCode(t, "MemcpyHtoD past the allocation's end", c.MemcpyHtoD(p+n-100, make([]byte, 200), nil), bad)
	wantCode(t, "MemcpyDtoH past the allocation's end", c.MemcpyDtoH(make([]byte, n+1), p, nil), bad)
	wantCode(t, "MemcpyDtoD past the allocation's end", c.MemcpyDtoD(p, p+1, n, nil), bad)
	wantCode(t, "Memset past the allocation's end", c.Memset(p, 0, 1, n+1, nil), bad)
	wantCode(t, "Memset of 3-byte elements", c.Memset(p, 0, 3, 4, nil), bad)
	wantCode(t, "MemcpyHtoD before the allocation", c.MemcpyHtoD(p-1, []byte{1}, nil), bad)
	ok(t, "Synchronize", c.Synchronize())
	ok(t, "MemFree", c.MemFree(p))
	wantCode(t, "MemcpyHtoD into freed memory", c.MemcpyHtoD(p, []byte{1}, nil), bad)
}

func (s *suite) testAddressRange(t *testing.T) {
	c, _ := s.openLimited(t, s.newBackend(t))
	const n = 1000
	p := must[uint64](t, "MemAlloc")(c.MemAlloc(n))
	q := must[uint64](t, "MemAlloc")(c.MemAlloc(2 * n))
	for _, tc := range []struct {
		name       string
		ptr        uint64
		base, size uint64
	}{
		{"first byte", p, p, n},
		{"inside", p + 123, p, n},
		{"last byte", p + n - 1, p, n},
		{"another allocation", q + n, q, 2 * n},
	} {
		base, size, err := c.AddressRange(tc.ptr)
		ok(t, "AddressRange "+tc.name, err)
		if base != tc.base || size != tc.size {
			t.Errorf("AddressRange %s = %#x + %d, want %#x + %d", tc.name, base, size, tc.base, tc.size)
		}
	}
	_, _, err := c.AddressRange(p + n)
	wantCode(t, "AddressRange one past the end", err, abi.ErrNotFound)
	ok(t, "MemFree", c.MemFree(p))
	_, _, err = c.AddressRange(p)
	wantCode(t, "AddressRange of freed memory", err, abi.ErrNotFound)
}
