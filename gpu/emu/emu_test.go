package emu

import (
	"bytes"
	"math"
	"sync"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

func TestDevices(t *testing.T) {
	b := New(Config{Devices: 2})
	devs := b.Devices()
	if len(devs) != 2 {
		t.Fatalf("%d devices, want 2", len(devs))
	}
	for i, d := range devs {
		if !d.Emulated || !bytes.Contains([]byte(d.Name), []byte("Emulated")) {
			t.Errorf("device %d does not say it is emulated: %+v", i, d)
		}
		if d.TotalMem != DefaultMemoryBytes || d.SMs != DefaultSMs || d.CCMajor < 7 || d.DriverVersion == 0 {
			t.Errorf("device %d: %+v", i, d)
		}
	}
	if devs[0].UUID == devs[1].UUID {
		t.Error("devices share a UUID")
	}
	for _, dev := range []int{-1, 2, math.MaxInt} {
		_, err := b.Open(dev, 0)
		wantCode(t, err, abi.ErrInvalidDevice)
	}
	if n := New(Config{Name: "Tesla"}).Devices()[0].Name; n != "Tesla (Emulated)" {
		t.Errorf("custom name %q hides emulation", n)
	}
	// 16 GiB is configured but nothing is allocated up front.
	if b.UsedBytes(0) != 0 {
		t.Error("fresh device has memory in use")
	}
}

func TestAttributes(t *testing.T) {
	b := New(Config{SMs: 12, ClockKHz: 1_000_000})
	c := open(t, b, 0, 0)
	for _, tc := range []struct {
		attr uint32
		want int32
	}{
		{abi.AttrMaxThreadsPerBlock, 1024},
		{abi.AttrMaxBlockDimX, 1024},
		{abi.AttrMaxBlockDimY, 1024},
		{abi.AttrMaxBlockDimZ, 64},
		{abi.AttrMaxGridDimX, math.MaxInt32},
		{abi.AttrMaxGridDimY, 65535},
		{abi.AttrMaxGridDimZ, 65535},
		{abi.AttrMaxSharedMemoryPerBlock, 48 << 10},
		{abi.AttrMaxSharedMemoryPerBlockOptin, 96 << 10},
		{abi.AttrWarpSize, 32},
		{abi.AttrMultiprocessorCount, 12},
		{abi.AttrClockRate, 1_000_000},
		{abi.AttrComputeCapabilityMajor, 8},
		{abi.AttrComputeCapabilityMinor, 0},
		{abi.AttrUnifiedAddressing, 1},
		{abi.AttrConcurrentKernels, 1},
		{abi.AttrComputeMode, 0},
		{abi.AttrTotalConstantMemory, 64 << 10},
		{abi.AttrMaxThreadsPerMultiprocessor, 2048},
		{abi.AttrManagedMemory, 0},
		{21, 131072}, // the largest 1D texture
		{74, 32768},  // the tallest 2D mipmapped array
		{66, 0},      // surface cube maps are not served
	} {
		got, err := c.Attribute(tc.attr)
		if err != nil || got != tc.want {
			t.Errorf("attribute %d = %d, %v; want %d", tc.attr, got, err, tc.want)
		}
	}
	for _, attr := range []uint32{0, 1000, math.MaxUint32} {
		_, err := c.Attribute(attr)
		wantCode(t, err, abi.ErrInvalidValue)
	}
}

func TestAllocFree(t *testing.T) {
	const mib = 1 << 20
	b := New(Config{MemoryBytes: 8 * mib})
	c := open(t, b, 0, 4*mib)

	p1 := must(c.MemAlloc(1))(t)
	p2 := must(c.MemAlloc(1000))(t)
	for _, p := range []uint64{p1, p2} {
		if p == 0 || p%256 != 0 || p < vaBase {
			t.Errorf("pointer %#x: want non-zero, 256-aligned, >= %#x", p, vaBase)
		}
	}
	if p2-p1 < 256 {
		t.Errorf("allocations overlap: %#x %#x", p1, p2)
	}
	if got := b.UsedBytes(0); got != 256+1024 {
		t.Errorf("UsedBytes = %d, want %d", got, 256+1024)
	}
	free, total := c.MemInfo()
	if total != 4*mib || free != 4*mib-1280 {
		t.Errorf("MemInfo = %d, %d", free, total)
	}

	for _, tc := range []struct {
		name string
		call func() error
		want abi.Result
	}{
		{"zero size", func() error { _, err := c.MemAlloc(0); return err }, abi.ErrInvalidValue},
		{"over context limit", func() error { _, err := c.MemAlloc(4 * mib); return err }, abi.ErrOutOfMemory},
		{"huge", func() error { _, err := c.MemAlloc(math.MaxUint64); return err }, abi.ErrOutOfMemory},
		{"free null", func() error { return c.MemFree(0) }, abi.ErrInvalidValue},
		{"free interior", func() error { return c.MemFree(p2 + 8) }, abi.ErrInvalidValue},
		{"free wild", func() error { return c.MemFree(0xdead_beef) }, abi.ErrInvalidValue},
		{"free p1", func() error { return c.MemFree(p1) }, abi.Success},
		{"double free", func() error { return c.MemFree(p1) }, abi.ErrInvalidValue},
		{"shrink below use", func() error { return c.SetMemLimit(512) }, abi.ErrOutOfMemory},
		{"shrink to use", func() error { return c.SetMemLimit(1024) }, abi.Success},
		{"alloc at limit", func() error { _, err := c.MemAlloc(1); return err }, abi.ErrOutOfMemory},
		{"grow", func() error { return c.SetMemLimit(6 * mib) }, abi.Success},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.want) })
	}

	// The device is shared: a second context cannot take more than is
	// left of it even within its own limit.
	c2 := open(t, b, 0, 0)
	if _, total := c2.MemInfo(); total != 8*mib {
		t.Errorf("whole-device context total = %d", total)
	}
	big := must(c.MemAlloc(5 * mib))(t)
	_, err := c2.MemAlloc(3 * mib)
	wantCode(t, err, abi.ErrOutOfMemory)
	if free, _ := c2.MemInfo(); free != 8*mib-5*mib-1024 {
		t.Errorf("second context free = %d", free)
	}
	ok(t, c.MemFree(big))
	p3 := must(c2.MemAlloc(3 * mib))(t)
	ok(t, c2.MemFree(p3))
	ok(t, c.MemFree(p2))
	if got := b.UsedBytes(0); got != 0 {
		t.Errorf("UsedBytes after frees = %d", got)
	}
}

func TestAddressReuse(t *testing.T) {
	// Churn must not exhaust the address space: freed ranges coalesce.
	b := New(Config{MemoryBytes: 1 << 20})
	c := open(t, b, 0, 0)
	for i := range 2000 {
		p := must(c.MemAlloc(uint64(1+i%7) << 16))(t)
		ok(t, c.MemFree(p))
	}
	if n := len(b.devs[0].va.free); n != 1 {
		t.Errorf("address space fragmented into %d extents", n)
	}
}

func TestCopiesAndMemsets(t *testing.T) {
	b := New(Config{MemoryBytes: 1 << 20})
	c := open(t, b, 0, 0)
	s := must(c.StreamCreate(0, 0))(t)
	const n = 1021
	p := must(c.MemAlloc(n))(t)
	q := must(c.MemAlloc(n))(t)
	want := make([]byte, n) // mirror of p

	host := make([]byte, n)
	for i := range host {
		host[i] = byte(i*7 + 3)
	}
	for _, st := range []gpu.Stream{nil, s} {
		ok(t, c.MemcpyHtoD(p+3, host[:n-5], st))
		copy(want[3:], host[:n-5])
		ok(t, c.MemcpyDtoD(q, p, n, st))
		ok(t, c.MemcpyDtoD(p+1, p, 100, st)) // overlapping
		copy(want[1:101], append([]byte(nil), want[:100]...))
		got := make([]byte, n)
		ok(t, c.MemcpyDtoH(got, p, st))
		if !bytes.Equal(got, want) {
			t.Fatalf("p differs after copies")
		}
		ok(t, c.MemcpyDtoH(got, q, st))
		ok(t, c.Synchronize())
	}

	type ms struct {
		off   uint64
		value uint32
		size  uint32
		count uint64
	}
	for _, m := range []ms{{5, 0xAB, 1, 333}, {2, 0xBEEF, 2, 101}, {8, 0xDEADBEEF, 4, 77}, {0, 7, 4, 0}, {n - 1, 0x42, 1, 1}} {
		ok(t, c.Memset(p+m.off, m.value, m.size, m.count, s))
		for i := range m.count * uint64(m.size) {
			want[m.off+i] = byte(m.value >> (8 * (i % uint64(m.size))))
		}
	}
	got := make([]byte, n)
	ok(t, c.MemcpyDtoH(got, p, s))
	if !bytes.Equal(got, want) {
		t.Fatalf("memset bytes differ")
	}

	for _, tc := range []struct {
		name string
		err  error
	}{
		{"HtoD overrun", c.MemcpyHtoD(p+1, make([]byte, n), nil)},
		{"HtoD unallocated", c.MemcpyHtoD(p+4096, []byte{1}, nil)},
		{"HtoD wraparound", c.MemcpyHtoD(math.MaxUint64, []byte{1, 2}, nil)},
		{"DtoH overrun", c.MemcpyDtoH(make([]byte, 2), p+n-1, s)},
		{"DtoH null", c.MemcpyDtoH(make([]byte, 2), 0, s)},
		{"DtoD dst overrun", c.MemcpyDtoD(q+1, p, n, s)},
		{"DtoD src overrun", c.MemcpyDtoD(q, p+n, 1, s)},
		{"DtoD huge", c.MemcpyDtoD(q, p, math.MaxUint64, s)},
		{"memset overrun", c.Memset(p, 0, 4, n/4+1, s)},
		{"memset overflow", c.Memset(p, 0, 4, math.MaxUint64/2, s)},
		{"memset elem 3", c.Memset(p, 0, 3, 1, s)},
		{"memset elem 0", c.Memset(p, 0, 0, 1, s)},
		{"memset misaligned", c.Memset(p+2, 0, 4, 1, s)},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.err, abi.ErrInvalidValue) })
	}
	// Failed calls changed nothing and did not poison the context.
	ok(t, c.MemcpyDtoH(got, p, nil))
	if !bytes.Equal(got, want) {
		t.Fatal("a refused copy changed memory")
	}
	ok(t, c.Synchronize())
	// Zero-length copies succeed without touching anything.
	ok(t, c.MemcpyHtoD(0, nil, nil))
	ok(t, c.MemcpyDtoD(0, 0, 0, s))
}

func TestContextIsolation(t *testing.T) {
	b := New(Config{MemoryBytes: 1 << 20})
	c1 := open(t, b, 0, 0)
	c2 := open(t, b, 0, 0)
	p := must(c1.MemAlloc(64))(t)
	wantCode(t, c2.MemcpyHtoD(p, []byte{1}, nil), abi.ErrInvalidValue)
	wantCode(t, c2.MemcpyDtoH(make([]byte, 1), p, nil), abi.ErrInvalidValue)
	wantCode(t, c2.MemFree(p), abi.ErrInvalidValue)
	if _, _, ok := c2.mem.Span(p); ok {
		t.Error("context 2 can see context 1's allocation")
	}
	s1 := must(c1.StreamCreate(0, 0))(t)
	e1 := must(c1.EventCreate(0))(t)
	wantCode(t, c2.MemcpyHtoD(0, []byte{1}, s1), abi.ErrInvalidHandle)
	wantCode(t, e1.Record(must(c2.StreamCreate(0, 0))(t)), abi.ErrInvalidHandle)
	wantCode(t, must(c2.StreamCreate(0, 0))(t).WaitEvent(e1), abi.ErrInvalidHandle)
}

func TestConcurrentUse(t *testing.T) {
	b := New(Config{MemoryBytes: 64 << 20})
	c := open(t, b, 0, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			s, err := c.StreamCreate(uint32(g%2), 0)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range 50 {
				n := uint64(1 + (g*131+i*17)%4000)
				p, err := c.MemAlloc(n)
				if err != nil {
					t.Error(err)
					return
				}
				src := bytes.Repeat([]byte{byte(g), byte(i)}, int(n))[:n]
				dst := make([]byte, n)
				if err := c.MemcpyHtoD(p, src, s); err != nil {
					t.Error(err)
				}
				if err := c.MemcpyDtoH(dst, p, s); err != nil {
					t.Error(err)
				}
				if !bytes.Equal(src, dst) {
					t.Errorf("goroutine %d iteration %d: bytes differ", g, i)
				}
				if err := c.MemFree(p); err != nil {
					t.Error(err)
				}
			}
			if err := s.Destroy(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ok(t, c.Close())
	if got := b.UsedBytes(0); got != 0 {
		t.Errorf("UsedBytes = %d after Close", got)
	}
}

func TestLargeAllocations(t *testing.T) {
	b := New(Config{MemoryBytes: MaxMemoryBytes})
	c := open(t, b, 0, 0)
	// Mapped from the OS, zeroed, usable at both ends.
	const n = 3<<20 + 5
	p := must(c.MemAlloc(n))(t)
	ok(t, c.MemcpyHtoD(p+n-2, []byte{7, 9}, nil))
	ok(t, c.Memset(p, 0x5A, 1, 3, nil))
	got := make([]byte, n)
	ok(t, c.MemcpyDtoH(got, p, nil))
	want := make([]byte, n)
	copy(want, []byte{0x5A, 0x5A, 0x5A})
	copy(want[n-2:], []byte{7, 9})
	if !bytes.Equal(got, want) {
		t.Fatal("large allocation contents differ")
	}
	ok(t, c.MemFree(p))

	// More than this host can back: refused cleanly or granted lazily,
	// never a crash.
	huge, err := c.MemAlloc(400 << 30)
	if err != nil {
		wantCode(t, err, abi.ErrOutOfMemory)
	} else {
		ok(t, c.MemFree(huge))
	}
	if got := b.UsedBytes(0); got != 0 {
		t.Errorf("UsedBytes = %d", got)
	}
}
