//go:build cgo

package cuda

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/abi"
)

// TestFakeDriverTextures runs the texture, surface and cooperative-launch
// scenarios against the fake driver, which logs the calls they make.
func TestFakeDriverTextures(t *testing.T) {
	if os.Getenv(fakeDirEnv) != "" {
		t.Skip("in the child")
	}
	if _, err := os.Stat("/usr/bin/gcc"); err != nil {
		t.Skip("no gcc")
	}
	dir := t.TempDir()
	buildFake(t, dir, "hopper.so")
	runChild(t, "TestTexturesChild", dir, fakeLibEnv+"=hopper.so", fakeLogEnv+"="+filepath.Join(t.TempDir(), "calls.log"))
}

// callsLike returns the log lines from line from on that start with one
// of prefixes.
func callsLike(t *testing.T, from int, prefixes ...string) []string {
	t.Helper()
	var out []string
	for _, l := range fakeCalls(t, from) {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

func kinds(lines []string) string {
	var k []string
	for _, l := range lines {
		f := strings.Fields(l)
		k = append(k, strings.Join(f[:min(2, len(f))], " "))
	}
	return strings.Join(k, ", ")
}

func TestTexturesChild(t *testing.T) {
	b := childBackend(t, true)
	gc, err := b.Open(0, 256<<20)
	if err != nil {
		t.Fatal(err)
	}
	c := gc.(*Context)
	defer c.Close()
	f := vadd(t, c)
	p, err := c.MemAlloc(1 << 16)
	if err != nil {
		t.Fatal(err)
	}
	// An RGBA8 image of 13×9 texels, rows 64 bytes apart.
	img := abi.TexObject{Ptr: p, Format: abi.ArrayFormatU8, Channels: 4, Dims: 2, Width: 13, Height: 9, Depth: 1,
		Pitch: 64, FilterMode: 1, Flags: abi.TexNormalizedCoords}
	ext, _ := img.Extent()
	used := c.MemUsed()

	// A texture makes the array; a surface over the same image shares it.
	from := len(fakeCalls(t, 0))
	tex, err := c.TexObjectCreate(img)
	if err != nil {
		t.Fatal(err)
	}
	simg := img
	simg.Surface, simg.FilterMode, simg.Flags = true, 0, 0
	surf, err := c.TexObjectCreate(simg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(callsLike(t, from, "array", "texture", "surface")), "array create, texture 1, surface 2"; got != want {
		t.Fatalf("calls %q, want %s", got, want)
	}
	if l := callsLike(t, from, "array create")[0]; !strings.HasSuffix(l, " 13x9x0 flags=2") {
		t.Errorf("array made as %q, want 13x9x0 with CUDA_ARRAY3D_SURFACE_LDST", l)
	}
	if got := c.MemUsed() - used; got != ext {
		t.Errorf("the array charged %d bytes, want the image's %d", got, ext)
	}

	// A launch refreshes the array before the kernel and, the image
	// having a surface, writes it back after.
	from = len(fakeCalls(t, 0))
	if err := c.Launch(f, fakeLaunch, make([]byte, 28), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(callsLike(t, from, "array", "launch")), "array copy, launch stream=(nil), array copy"; got != want {
		t.Fatalf("calls %q, want %s", got, want)
	}
	copies := callsLike(t, from, "array copy")
	if !strings.HasPrefix(copies[0], "array copy in ") || !strings.HasPrefix(copies[1], "array copy out ") ||
		!strings.Contains(copies[0], " pitch=64 row=52 rows=9 slices=1 ") {
		t.Errorf("copies %q", copies)
	}

	// Without the surface, nothing is written back.
	if err := c.TexObjectDestroy(surf, true); err != nil {
		t.Fatal(err)
	}
	from = len(fakeCalls(t, 0))
	if err := c.Launch(f, fakeLaunch, make([]byte, 28), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(callsLike(t, from, "array", "launch")), "array copy, launch stream=(nil)"; got != want {
		t.Fatalf("calls %q, want %s", got, want)
	}

	// A texture over linear memory reads it directly.
	lin := abi.TexObject{Linear: true, Ptr: p + 4096, Format: abi.ArrayFormatS32, Channels: 1, Dims: 1, Width: 16, Height: 1,
		Depth: 1, Pitch: 64, AddressMode: [3]uint32{3, 3, 3}}
	from = len(fakeCalls(t, 0))
	ltex, err := c.TexObjectCreate(lin)
	if err != nil {
		t.Fatal(err)
	}
	if got := callsLike(t, from, "array", "texture"); len(got) != 1 || !strings.Contains(got[0], "linear ptr=") || !strings.HasSuffix(got[0], " size=64") {
		t.Errorf("linear texture: calls %q", got)
	}

	// Refusals: memory that is not the tenant's, unknown objects, the
	// wrong kind, a cooperative grid too large.
	out := img
	out.Ptr = p + 1<<16 - 64
	bad := map[string]func() error{
		"image outside allocations": func() error { _, err := c.TexObjectCreate(out); return err },
		"unknown object":            func() error { return c.TexObjectDestroy(tex+100, false) },
		"texture as surface":        func() error { return c.TexObjectDestroy(tex, true) },
		"bad descriptor":            func() error { o := img; o.Channels = 3; _, err := c.TexObjectCreate(o); return err },
	}
	for name, fn := range bad {
		if err := fn(); abi.ResultOf(err) != abi.ErrInvalidValue {
			t.Errorf("%s: %v, want CUDA_ERROR_INVALID_VALUE", name, err)
		}
	}
	from = len(fakeCalls(t, 0))
	coop := fakeLaunch
	coop.Grid.X = 8
	if err := c.LaunchCooperative(f, coop, make([]byte, 28), nil); err != nil {
		t.Fatal(err)
	}
	if len(callsLike(t, from, "cooperative")) != 1 {
		t.Errorf("no cooperative launch: %q", fakeCalls(t, from))
	}
	coop.Grid.X = 1000
	if err := c.LaunchCooperative(f, coop, make([]byte, 28), nil); abi.ResultOf(err) != abi.ErrCooperativeTooLarge {
		t.Errorf("1000 blocks: %v, want CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE", err)
	}
	if err := c.Synchronize(); err != nil {
		t.Fatalf("a refused cooperative launch poisoned the context: %v", err)
	}

	// Freed memory is no longer copied into the array; the last object
	// gone, the array goes and its quota comes back.
	if err := c.MemFree(p); err != nil {
		t.Fatal(err)
	}
	from = len(fakeCalls(t, 0))
	if err := c.Launch(f, fakeLaunch, make([]byte, 28), nil); err != nil {
		t.Fatal(err)
	}
	if got := callsLike(t, from, "array"); len(got) != 0 {
		t.Errorf("freed image copied: %q", got)
	}
	for _, o := range []uint64{tex, ltex} {
		if err := c.TexObjectDestroy(o, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.MemUsed(); got != used-1<<16 {
		t.Errorf("%d bytes used after the objects went, want %d", got, used-1<<16)
	}
	if len(callsLike(t, 0, "array destroy")) != 1 {
		t.Errorf("array not destroyed: %q", fakeCalls(t, 0))
	}
}
