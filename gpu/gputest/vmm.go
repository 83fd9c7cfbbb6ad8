package gputest

import (
	"bytes"
	"testing"

	"github.com/kerf-edge/kerf/gpu"
)

// testVirtualMemory checks a backend's virtual memory, where it has it:
// physical memory is charged to the context's quota until it is released
// and unmapped, mappings inside a reservation become addressable once
// access is set, two mappings of one memory share its bytes, and closing
// the context gives everything back.
func (s *suite) testVirtualMemory(t *testing.T) {
	b := s.newBackend(t)
	c := s.open(t, b, s.opts.MemLimit)
	vm, ok := c.(gpu.VirtualMemory)
	if !ok {
		t.Skip("the backend has no virtual memory")
	}
	g := vm.Granularity(false)
	if g == 0 || g&(g-1) != 0 || vm.Granularity(true)%g != 0 {
		t.Fatalf("granularity %d, recommended %d", g, vm.Granularity(true))
	}
	free0, _ := c.MemInfo()
	if free0 < 2*g {
		t.Skipf("a context has %d bytes free, fewer than two granules of %d", free0, g)
	}
	r, err := vm.AddressReserve(4*g, g)
	if err != nil {
		t.Fatal(err)
	}
	if r%g != 0 {
		t.Fatalf("reservation %#x not aligned to %d", r, g)
	}
	m, err := vm.MemCreate(g)
	if err != nil {
		t.Fatal(err)
	}
	if free, _ := c.MemInfo(); free0-free != g {
		t.Fatalf("MemCreate of %d bytes took %d from the quota", g, free0-free)
	}
	for _, at := range []uint64{r, r + 2*g} {
		if err := vm.MemMap(at, g, 0, m); err != nil {
			t.Fatalf("map at %#x: %v", at, err)
		}
		if err := vm.SetAccess(at, g); err != nil {
			t.Fatalf("access at %#x: %v", at, err)
		}
	}
	if s.opts.NoMemoryContents == "" {
		want := []byte("one memory, two addresses")
		if err := c.MemcpyHtoD(r+g-uint64(len(want)), want, nil); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if err := c.MemcpyDtoH(got, r+3*g-uint64(len(want)), nil); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("through the second mapping: %q, %v; want %q", got, err, want)
		}
	}
	if err := m.Release(); err != nil {
		t.Fatal(err)
	}
	if err := vm.MemUnmap(r, g); err != nil {
		t.Fatal(err)
	}
	if free, _ := c.MemInfo(); free0-free != g {
		t.Fatalf("memory released but still mapped: %d bytes charged, want %d", free0-free, g)
	}
	if err := vm.MemUnmap(r+2*g, g); err != nil {
		t.Fatal(err)
	}
	if free, _ := c.MemInfo(); free != free0 {
		t.Fatalf("free %d after the last unmap, %d before MemCreate", free, free0)
	}
	if err := vm.AddressFree(r, 4*g); err != nil {
		t.Fatal(err)
	}
	// What a closing context holds comes back too.
	if _, err := vm.AddressReserve(g, g); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.MemCreate(g); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := s.open(t, b, s.opts.MemLimit)
	if free, _ := c2.MemInfo(); free != free0 {
		t.Fatalf("a new context has %d bytes free after one closed holding physical memory, %d before", free, free0)
	}
}
