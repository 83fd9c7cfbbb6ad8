package ptx

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"
)

// hostBinary compiles testdata/nvcc/name.cu as C++ for the host, into
// the test's temp dir. It skips the test when no host compiler is found.
func hostBinary(t *testing.T, name string) string {
	t.Helper()
	cc := ""
	for _, c := range []string{"clang-14", "clang", "g++"} {
		if _, err := exec.LookPath(c); err == nil {
			cc = c
			break
		}
	}
	if cc == "" {
		t.Skip("no host C++ compiler")
	}
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command(cc, "-x", "c++", "-O0", "-ffp-contract=off", "-frounding-math", "-o", bin, filepath.Join("testdata", "nvcc", name+".cu"), "-lm").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cc, err, out)
	}
	return bin
}

// specialBits are the edge values the differential inputs mix in: ±0,
// ±∞, NaNs, denormals, the extremes of each width, and ±1.
var (
	special32 = []uint64{0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001,
		1, 0x807fffff, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000, 0x4f000000, 0xcf000000,
		0xffffffff, 0x7fffffff, 0x8000, 0x7fff, 0xffff8000, 0x80, 0x7f}
	special64 = []uint64{0, 1 << 63, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001,
		1, 0x800fffffffffffff, 0x0010000000000000, 0x7fefffffffffffff, 0x3ff0000000000000, 0xbff0000000000000,
		0x43e0000000000000, 0xc3e0000000000000, math.MaxUint64, math.MaxInt64, 1 << 31, 0xffffffff}
)

// The emulator agrees bit for bit with the host compiler on the same
// element-wise code, on random inputs salted with edge values. NaNs
// compare equal whatever their payload, and min and max of ±0 may
// return either zero.
func TestNvccMatchesHost(t *testing.T) {
	bin := hostBinary(t, "diff_ops")
	m := loadNvcc(t, "diff_ops")["diff_ops"]
	r := rand.New(rand.NewPCG(17, 18))
	const n = 4096
	for _, c := range []struct {
		name  string
		wide  bool
		per   int
		float map[int]bool // outputs that are floats
		minmx map[int]bool // outputs of min or max
	}{
		{"f32ops", false, 12, map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 11: true}, map[int]bool{6: true, 7: true}},
		{"f64ops", true, 10, map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true}, map[int]bool{6: true}},
		{"i32ops", false, 14, nil, nil},
		{"i16ops", false, 6, nil, nil},
		{"i64ops", true, 5, nil, nil},
		{"f32rnd", false, 15, allFloat(15), nil},
		{"f64rnd", true, 15, allFloat(15), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, special := 4, special32
			if c.wide {
				w, special = 8, special64
			}
			in := [2][]uint64{make([]uint64, n), make([]uint64, n)}
			for _, v := range in {
				for i := range v {
					switch r.IntN(4) {
					case 0:
						v[i] = special[r.IntN(len(special))]
					case 1: // small values, where sums and products stay exact
						v[i] = uint64(math.Float32bits(float32(r.IntN(200) - 100)))
						if c.wide {
							v[i] = math.Float64bits(float64(r.IntN(200) - 100))
						}
					default:
						v[i] = r.Uint64()
					}
					if !c.wide {
						v[i] = uint64(uint32(v[i]))
					}
				}
			}
			// host
			var stdin bytes.Buffer
			binary.Write(&stdin, binary.LittleEndian, int32(n))
			for _, v := range in {
				for _, x := range v {
					stdin.Write(binary.LittleEndian.AppendUint64(nil, x)[:w])
				}
			}
			cmd := exec.Command(bin, c.name)
			cmd.Stdin = &stdin
			want, err := cmd.Output()
			if err != nil || len(want) != n*c.per*w {
				t.Fatalf("host run: %v (%d bytes)", err, len(want))
			}
			// emulator
			mem := newTestMem()
			da, db, do := mem.alloc(n*w), mem.alloc(n*w), mem.alloc(n*c.per*w)
			for j, v := range in {
				b := mem.bytes([]uint64{da, db}[j])
				for i, x := range v {
					putN(b[i*w:], w, x)
				}
			}
			k := mustKernel(t, m, c.name+"_k")
			if err := k.Run(launch(k, mem, [3]uint32{n / 128, 1, 1}, [3]uint32{128, 1, 1}, 0, packParams(t, k, da, db, do, n), 2)); err != nil {
				t.Fatal(err)
			}
			got := mem.bytes(do)
			bad := 0
			for e := 0; e < n*c.per; e++ {
				g, h := getN(got[e*w:], w), getN(want[e*w:], w)
				if g == h {
					continue
				}
				field := e % c.per
				if c.float[field] && isNaNBits(g, w) && isNaNBits(h, w) {
					continue
				}
				i := e / c.per
				if c.minmx[field] && isZeroBits(g, w) && isZeroBits(h, w) {
					continue
				}
				// the host's min and max make a signalling NaN operand
				// a NaN; PTX's return the other operand
				if c.minmx[field] && isNaNBits(h, w) && (g == in[0][i] && isNaNBits(in[1][i], w) || g == in[1][i] && isNaNBits(in[0][i], w)) {
					continue
				}
				t.Errorf("%s[%d] output %d: inputs %#x %#x: emulator %#x, host %#x", c.name, i, field, in[0][i], in[1][i], g, h)
				if bad++; bad > 10 {
					t.FailNow()
				}
			}
		})
	}
}

func allFloat(n int) map[int]bool {
	m := map[int]bool{}
	for i := range n {
		m[i] = true
	}
	return m
}

func isNaNBits(v uint64, w int) bool {
	if w == 4 {
		f := math.Float32frombits(uint32(v))
		return f != f
	}
	return math.IsNaN(math.Float64frombits(v))
}

func isZeroBits(v uint64, w int) bool {
	if w == 4 {
		return uint32(v)&0x7fffffff == 0
	}
	return v&^(1<<63) == 0
}
