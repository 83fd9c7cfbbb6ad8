package transport

import (
	"bytes"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// vmCall runs a virtual memory call and returns its first result word.
func vmCall(t *testing.T, c *Client, id abi.CallID, words ...uint64) (uint64, error) {
	t.Helper()
	args := new(abi.Values)
	for _, w := range words {
		args.Word(w)
	}
	var out abi.Values
	err := c.Call(id, args, &out)
	if err != nil || len(out.Words) == 0 {
		return 0, err
	}
	return out.Words[0], nil
}

func mustVM(t *testing.T, c *Client, id abi.CallID, words ...uint64) uint64 {
	t.Helper()
	v, err := vmCall(t, c, id, words...)
	if err != nil {
		t.Fatalf("call %d %v: %v", id, words, err)
	}
	return v
}

// Virtual memory end to end on the emulated GPU: physical memory counts
// against the slice, mappings become addressable once access is set,
// two mappings of one memory share its bytes, released memory lives on
// while mapped, and every range and handle is checked against the
// caller's own.
func TestVirtualMemory(t *testing.T) {
	ts := startServer(t)
	for _, via := range transports {
		t.Run(via, func(t *testing.T) {
			const limit = 16 << 20
			alice := ts.dial(t, via, ts.token(t, "alice-vm-"+via, limit))
			bob := ts.dial(t, via, ts.token(t, "bob-vm-"+via, limit))
			g := mustVM(t, alice, abi.CallMemGetAllocationGranularity, uint64(abi.GranularityMinimum))
			if g == 0 || g&(g-1) != 0 || limit%g != 0 {
				t.Fatalf("granularity %d", g)
			}
			r := mustVM(t, alice, abi.CallMemAddressReserve, 4*g, 0)
			if r%g != 0 {
				t.Fatalf("reservation %#x is not aligned to %d", r, g)
			}
			free0, _, err := alice.MemGetInfo()
			if err != nil {
				t.Fatal(err)
			}
			h1 := mustVM(t, alice, abi.CallMemCreate, g)
			h2 := mustVM(t, alice, abi.CallMemCreate, g)
			if free, _, _ := alice.MemGetInfo(); free0-free != 2*g {
				t.Fatalf("free memory fell by %d after two creations of %d", free0-free, g)
			}
			_, err = vmCall(t, alice, abi.CallMemCreate, limit)
			wantCode(t, err, abi.ErrOutOfMemory)

			mustVM(t, alice, abi.CallMemMap, r, g, 0, h1)
			mustVM(t, alice, abi.CallMemMap, r+g, g, 0, h2)
			// Not addressable before access is set.
			wantCode(t, alice.MemcpyHtoD(r, []byte{1}), abi.ErrInvalidValue)
			if v := mustVM(t, alice, abi.CallMemGetAccess, r+5); v != uint64(abi.MemAccessNone) {
				t.Fatalf("access before cuMemSetAccess = %d", v)
			}
			mustVM(t, alice, abi.CallMemSetAccess, r, 2*g, uint64(abi.MemAccessReadWrite))
			if v := mustVM(t, alice, abi.CallMemGetAccess, r+g+5); v != uint64(abi.MemAccessReadWrite) {
				t.Fatalf("access after cuMemSetAccess = %d", v)
			}
			want := []byte("virtual memory")
			if err := alice.MemcpyHtoD(r+100, want); err != nil {
				t.Fatal(err)
			}
			// A second mapping of h1 sees the same bytes.
			mustVM(t, alice, abi.CallMemMap, r+2*g, g, 0, h1)
			mustVM(t, alice, abi.CallMemSetAccess, r+2*g, g, uint64(abi.MemAccessReadWrite))
			got := make([]byte, len(want))
			if err := alice.MemcpyDtoH(got, r+2*g+100); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("through the second mapping: %q, %v; want %q", got, err, want)
			}

			// Bad ranges and handles.
			for _, c := range []struct {
				name  string
				id    abi.CallID
				words []uint64
				want  abi.Result
			}{
				{"map over a mapping", abi.CallMemMap, []uint64{r, g, 0, h2}, abi.ErrInvalidValue},
				{"map outside the reservation", abi.CallMemMap, []uint64{r + 4*g, g, 0, h2}, abi.ErrInvalidValue},
				{"map unaligned", abi.CallMemMap, []uint64{r + 3*g + 1, g, 0, h2}, abi.ErrInvalidValue},
				{"map past the memory", abi.CallMemMap, []uint64{r + 3*g, g, g, h2}, abi.ErrInvalidValue},
				{"map a made-up handle", abi.CallMemMap, []uint64{r + 3*g, g, 0, h2 + 1000}, abi.ErrInvalidHandle},
				{"map a stream handle", abi.CallMemMap, []uint64{r + 3*g, g, 0, uint64(abi.StreamHandle)<<56 | 1}, abi.ErrInvalidHandle},
				{"unmap part of a mapping", abi.CallMemUnmap, []uint64{r, g / 2}, abi.ErrInvalidValue},
				{"unmap a hole", abi.CallMemUnmap, []uint64{r + 3*g, g}, abi.ErrInvalidValue},
				{"access to a hole", abi.CallMemSetAccess, []uint64{r + 2*g, 2 * g, uint64(abi.MemAccessReadWrite)}, abi.ErrInvalidValue},
				{"read-only access", abi.CallMemSetAccess, []uint64{r, g, 1}, abi.ErrNotSupported},
				{"free a mapped range", abi.CallMemAddressFree, []uint64{r, 4 * g}, abi.ErrInvalidValue},
				{"free part of a range", abi.CallMemAddressFree, []uint64{r, g}, abi.ErrInvalidValue},
				{"reserve unaligned", abi.CallMemAddressReserve, []uint64{g + 1, 0}, abi.ErrInvalidValue},
				{"reserve odd alignment", abi.CallMemAddressReserve, []uint64{g, 3 * g}, abi.ErrInvalidValue},
				{"create unaligned", abi.CallMemCreate, []uint64{g / 2}, abi.ErrInvalidValue},
				{"granularity option", abi.CallMemGetAllocationGranularity, []uint64{7}, abi.ErrInvalidValue},
			} {
				_, err := vmCall(t, alice, c.id, c.words...)
				if got := abi.ResultOf(err); got != c.want {
					t.Errorf("%s: %v (%v), want %v", c.name, got, err, c.want)
				}
			}
			// Another tenant names nothing of alice's.
			_, err = vmCall(t, bob, abi.CallMemMap, r+3*g, g, 0, h1)
			wantCode(t, err, abi.ErrInvalidHandle)
			_, err = vmCall(t, bob, abi.CallMemSetAccess, r, g, uint64(abi.MemAccessReadWrite))
			wantCode(t, err, abi.ErrInvalidValue)
			_, err = vmCall(t, bob, abi.CallMemUnmap, r, g)
			wantCode(t, err, abi.ErrInvalidValue)
			wantCode(t, bob.MemcpyDtoH(got, r+100), abi.ErrInvalidValue)

			// h1 released while mapped lives on until its last mapping goes.
			mustVM(t, alice, abi.CallMemRelease, h1)
			_, err = vmCall(t, alice, abi.CallMemRelease, h1)
			wantCode(t, err, abi.ErrInvalidHandle)
			if err := alice.MemcpyDtoH(got, r+100); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("after release: %q, %v", got, err)
			}
			mustVM(t, alice, abi.CallMemUnmap, r, 2*g)
			wantCode(t, alice.MemcpyDtoH(got, r+100), abi.ErrInvalidValue)
			if free, _, _ := alice.MemGetInfo(); free0-free != 2*g {
				t.Fatalf("h1 freed while still mapped: %d bytes in use, want %d", free0-free, 2*g)
			}
			mustVM(t, alice, abi.CallMemUnmap, r+2*g, g)
			if free, _, _ := alice.MemGetInfo(); free0-free != g {
				t.Fatalf("%d bytes in use after h1's last unmap, want %d", free0-free, g)
			}
			mustVM(t, alice, abi.CallMemRelease, h2)
			mustVM(t, alice, abi.CallMemAddressFree, r, 4*g)
			if free, _, _ := alice.MemGetInfo(); free != free0 {
				t.Fatalf("free memory %d at the end, %d at the start", free, free0)
			}
		})
	}
}
