package ptx

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// satI32 converts an integral float64 to int32 with saturation, NaN to 0.
func satI32(f float64) uint32 {
	switch {
	case f != f:
		return 0
	case f >= math.MaxInt32:
		return math.MaxInt32
	case f <= math.MinInt32:
		return 1 << 31
	}
	return uint32(int32(f))
}

func satU32(f float64) uint32 {
	switch {
	case f != f || f <= 0:
		return 0
	case f >= math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(f)
}

func satI64(f float64) int64 {
	switch {
	case f != f:
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

func f32b(f float32) uint32 { return math.Float32bits(f) }

func miscRef(u uint32, y float32, q [4]float32, d float64, b0, b1 byte) [32]uint32 {
	var o [32]uint32
	x := u
	o[0] = uint32(bits.OnesCount32(x))
	o[1] = uint32(bits.LeadingZeros32(x | 1))
	o[2] = bits.Reverse32(x)
	o[3] = uint32(uint64(x) * 0x9e3779b9 >> 32)
	o[4] = uint32(int64(int32(x)) * -12345 >> 32)
	o[5] = prmt(x, 0x01234567, 0x3210^(x&0x7777))
	o[6] = (x >> 5) & 0x3ff
	ay := y
	if y < 0 {
		ay = -y
	}
	o[7] = f32b(float32(math.Sqrt(float64(ay))))
	o[8] = f32b(1 / y)
	o[9] = f32b(float32(math.Exp2(float64(y * 0.01))))
	o[10] = f32b(float32(math.Log2(float64(ay + 1))))
	o[11] = f32b(float32(float64(q[1])*float64(q[2])+float64(q[0])) - q[3])
	o[12] = satI32(math.RoundToEven(float64(y)))
	o[13] = satI32(math.Floor(float64(y)))
	o[14] = satI32(math.Ceil(float64(y)))
	o[15] = satU32(math.Trunc(float64(y)))
	s := y
	switch {
	case s != s || s <= 0:
		s = 0
	case s > 1:
		s = 1
	}
	o[16] = f32b(s)
	o[17] = f32b(float32(int32(x)))
	up, _ := new(big.Float).SetPrec(24).SetMode(big.ToPositiveInf).SetUint64(uint64(x)).Float32()
	o[18] = f32b(up)
	o[19] = f32b(float32(d))
	e := math.FMA(d, 1.5, float64(x)/3.0)
	eb := math.Float64bits(e)
	o[20], o[21] = uint32(eb), uint32(eb>>32)
	ll := uint64(satI64(math.Trunc(d)) * int64(int32(x)))
	o[22], o[23] = uint32(ll>>7), uint32(ll>>40)
	var loc [8]uint32
	for k := range loc {
		loc[k] = (x >> k) * uint32(k+1)
	}
	o[24] = loc[x&7] + loc[(x>>3)&7]
	o[27] = uint32(b0) + uint32(b1)<<8 + uint32(int32(int8(b0))<<16)
	o[28] = satI32(math.Trunc(d))
	o[29] = uint32(satI64(math.Trunc(-math.Abs(d))))
	o[30] = uint32(min(int32(x), int32(x>>1)) + max(-int32(x), 7))
	ax := int32(x)
	if ax < 0 {
		ax = -ax
	}
	var fl uint32
	if y > 2 {
		fl |= 1
	}
	if y != y {
		fl |= 2
	}
	if !(y <= 1) {
		fl |= 4
	}
	o[31] = uint32(ax) ^ fl
	return o
}

func TestMisc(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	special := []float32{0, float32(math.Copysign(0, -1)), 0.5, 1.5, 2.5, -2.5, -0.5, 1e10, -1e10,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1, 2, 4294967296, -3e9}
	for _, shape := range [][2]int{{1, 32}, {3, 48}, {2, 128}} {
		n := shape[0]*shape[1] - 5
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			mem := newTestMem()
			u := make([]uint32, n)
			f := make([]float32, n)
			v := make([]float32, 4*n)
			d := make([]float64, n)
			by := make([]byte, n)
			for i := range u {
				u[i] = r.Uint32()
				if i%3 == 0 {
					u[i] >>= r.IntN(32)
				}
				f[i] = float32(r.NormFloat64() * 100)
				if i < len(special) {
					f[i] = special[i]
				}
				d[i] = r.NormFloat64() * 1e6
				if i%11 == 0 {
					d[i] = r.NormFloat64() * 1e20
				}
				by[i] = byte(r.Uint32())
			}
			for i := range v {
				v[i] = float32(r.NormFloat64())
			}
			du, df, dv := mem.u32s(u), mem.f32s(f), mem.f32s(v)
			dd := mem.alloc(8 * n)
			for i, x := range d {
				binary.LittleEndian.PutUint64(mem.bytes(dd)[8*i:], math.Float64bits(x))
			}
			db := mem.alloc(n)
			copy(mem.bytes(db), by)
			dout := mem.alloc(4 * 32 * n)
			k := kernel(t, "misc", "misc")
			if k.LocalSize != 32 {
				t.Fatalf("LocalSize %d", k.LocalSize)
			}
			l := launch(k, mem, [3]uint32{uint32(shape[0]), 1, 1}, [3]uint32{uint32(shape[1]), 1, 1}, 0, packParams(t, k, du, df, dv, dd, db, dout, uint32(n)), 0)
			if err := k.Run(l); err != nil {
				t.Fatal(err)
			}
			out := mem.getU32(dout, 32*n)
			bs := shape[1]
			for i := 0; i < n; i++ {
				want := miscRef(u[i], f[i], [4]float32(v[4*i:4*i+4]), d[i], by[i], by[n-1-i])
				// votes over the thread's warp within its block
				blk, t0 := i/bs, i%bs
				w0 := blk*bs + t0/32*32
				wend := min(blk*bs+bs, w0+32)
				all := uint32(1)
				for j := w0; j < wend; j++ {
					if j >= n {
						all = 0
					} else if u[j]&1 != 0 {
						want[25] |= 1 << (j - w0)
					}
				}
				want[26] = all
				for j := range want {
					got := out[32*i+j]
					ok := got == want[j]
					if j == 9 || j == 10 { // approximations
						ok = closeF32(math.Float32frombits(got), math.Float32frombits(want[j]), 1e-6) || got == want[j]
					}
					if !ok {
						t.Fatalf("thread %d out[%d] = %#x, want %#x (u=%#x f=%v d=%v)", i, j, got, want[j], u[i], f[i], d[i])
					}
				}
			}
		})
	}
}
