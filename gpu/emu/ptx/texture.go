package ptx

import (
	"math"
)

// Texture sampling follows the CUDA C++ Programming Guide's appendix on
// texture fetching: point sampling reads T[floor(x)]; linear filtering
// reads the two (2D: four, 3D: eight) texels around x-0.5 and weights
// them with the fraction stored in 9-bit fixed point, 8 bits of it
// fractional. Addresses outside the image follow the texture's address
// mode per dimension; wrap and mirror apply to normalised coordinates
// only (with unnormalised ones they act as clamp, as on a GPU).

// texture geometries, in instr.mod
const (
	geom1D uint8 = iota + 1
	geom2D
	geom3D
	geomA1D
	geomA2D
	geomCube
	geomACube
)

var geomNames = map[string]uint8{"1d": geom1D, "2d": geom2D, "3d": geom3D, "a1d": geomA1D, "a2d": geomA2D,
	"cube": geomCube, "acube": geomACube}

// geomCoords is how many coordinate registers each geometry takes (a
// layered one's first is the layer; 3D, a2d and the cube geometries
// take a 4-vector).
var geomCoords = [...]int{geom1D: 1, geom2D: 2, geom3D: 4, geomA1D: 2, geomA2D: 4, geomCube: 4, geomACube: 4}

// geomDims is the spatial dimensions of each geometry's image (a cube
// map's faces are 2D).
var geomDims = [...]int{geom1D: 1, geom2D: 2, geom3D: 3, geomA1D: 1, geomA2D: 2, geomCube: 2, geomACube: 2}

// layered reports whether geometry g's first coordinate is a layer.
func layered(g uint8) bool { return g == geomA1D || g == geomA2D || g == geomACube }

// texelSize is the bytes of one texel.
func (im *Image) texelSize() uint64 { return uint64(im.Format.Size()) * uint64(im.Channels) }

// slices is the number of 2D slices: depth, or layers.
func (im *Image) slices() uint64 {
	if im.Layers > 0 {
		return uint64(im.Layers)
	}
	return uint64(im.Depth)
}

// valid reports whether the image's extent lies inside Data and its
// shape is one the interpreter reads.
func (im *Image) valid() bool {
	if im.Format.Size() == 0 || (im.Channels != 1 && im.Channels != 2 && im.Channels != 4) ||
		im.Width == 0 || im.Height == 0 || im.Depth == 0 || im.Dims < 1 || im.Dims > 3 {
		return false
	}
	if im.Cube && (im.Dims != 2 || im.Width != im.Height || im.Layers == 0 || im.Layers%6 != 0) {
		return false
	}
	row := uint64(im.Width) * im.texelSize()
	if row > im.Pitch && im.Height > 1 || row > uint64(len(im.Data)) {
		return false
	}
	last := (im.slices()-1)*im.SlicePitch + uint64(im.Height-1)*im.Pitch
	if im.slices() > 1 && im.SlicePitch < uint64(im.Height)*im.Pitch {
		return false
	}
	return last <= uint64(len(im.Data)) && uint64(len(im.Data))-last >= row
}

// shapeMatches reports whether an instruction of geometry g may read im.
func (im *Image) shapeMatches(g uint8) bool {
	switch {
	case g == geomCube:
		return im.Cube && im.Layers == 6
	case g == geomACube:
		return im.Cube
	case im.Cube:
		return false
	}
	if (g == geomA1D || g == geomA2D) != (im.Layers > 0) {
		return false
	}
	return geomDims[g] == int(im.Dims)
}

// offset is where texel (x, y, z) starts in Data; z is a depth slice or
// a layer.
func (im *Image) offset(x, y, z uint32) uint64 {
	return uint64(z)*im.SlicePitch + uint64(y)*im.Pitch + uint64(x)*im.texelSize()
}

// size is the image's extent along dimension d.
func (im *Image) size(d int) uint32 {
	switch d {
	case 0:
		return im.Width
	case 1:
		return im.Height
	}
	return im.Depth
}

// raw returns channel c of the texel at off, widened to 32 bits (signed
// formats sign-extended; f16 as its bits).
func (im *Image) raw(off uint64, c int) uint32 {
	sz := uint64(im.Format.Size())
	p := im.Data[off+uint64(c)*sz:]
	switch im.Format {
	case FormatU8:
		return uint32(p[0])
	case FormatS8:
		return uint32(int32(int8(p[0])))
	case FormatU16, FormatF16:
		return uint32(p[0]) | uint32(p[1])<<8
	case FormatS16:
		return uint32(int32(int16(uint16(p[0]) | uint16(p[1])<<8)))
	}
	return uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
}

// readsFloat reports whether the texture returns floats (float channels,
// or 8- and 16-bit integers normalised) rather than integers.
func (t *Texture) readsFloat() bool {
	switch t.Format {
	case FormatF16, FormatF32:
		return true
	case FormatU32, FormatS32:
		return false
	}
	return !t.ReadAsInteger
}

// channelFloat returns channel c of the texel at off as the float the
// texture reads.
func (t *Texture) channelFloat(off uint64, c int) float32 {
	v := t.raw(off, c)
	switch t.Format {
	case FormatF32:
		return math.Float32frombits(v)
	case FormatF16:
		return float32(fmtF16.decode(uint16(v)))
	case FormatU8:
		return float32(v) / 255
	case FormatU16:
		return float32(v) / 65535
	case FormatS8:
		return max(float32(int32(v))/127, -1)
	case FormatS16:
		return max(float32(int32(v))/32767, -1)
	}
	return 0
}

// texelFloats returns the four channels of a texel as the texture reads
// them: missing channels read 0, alpha 1; a border texel reads the
// border colour.
func (t *Texture) texelFloats(off uint64, border bool) [4]float32 {
	if border {
		return t.Border
	}
	v := [4]float32{0, 0, 0, 1}
	for c := 0; c < t.Channels; c++ {
		v[c] = t.channelFloat(off, c)
	}
	return v
}

func (t *Texture) texelInts(off uint64, border bool) [4]uint32 {
	if border {
		var v [4]uint32
		for c, b := range t.Border {
			v[c] = uint32(int32(b))
		}
		return v
	}
	v := [4]uint32{0, 0, 0, 1}
	for c := 0; c < t.Channels; c++ {
		v[c] = t.raw(off, c)
	}
	return v
}

// wrapCoord applies a normalised coordinate's address mode.
func wrapCoord(u float32, mode AddressMode) float32 {
	switch mode {
	case AddressWrap:
		return u - float32(math.Floor(float64(u)))
	case AddressMirror:
		f := math.Floor(float64(u))
		fr := u - float32(f)
		if int64(f)&1 != 0 {
			return 1 - fr
		}
		return fr
	}
	return u
}

// texIndex maps index i along a dimension of size n to a texel index,
// or reports that it reads the border.
func texIndex(i int64, n uint32, mode AddressMode, normalized bool) (uint32, bool) {
	if !normalized && (mode == AddressWrap || mode == AddressMirror) {
		mode = AddressClamp
	}
	N := int64(n)
	switch mode {
	case AddressWrap:
		i %= N
		if i < 0 {
			i += N
		}
	case AddressMirror:
		i %= 2 * N
		if i < 0 {
			i += 2 * N
		}
		if i >= N {
			i = 2*N - 1 - i
		}
	case AddressBorder:
		if i < 0 || i >= N {
			return 0, true
		}
	default:
		i = min(max(i, 0), N-1)
	}
	return uint32(i), false
}

// floorIndex is floor(x) as an index, with NaN read as 0 and huge values
// held where any address mode still maps them consistently.
func floorIndex(x float32) int64 {
	if x != x {
		return 0
	}
	return int64(math.Floor(float64(min(max(x, -1<<40), 1<<40))))
}

// linearWeight is frac(x) in 9-bit fixed point with 8 fractional bits,
// rounded to nearest.
func linearWeight(x float32, i int64) float32 {
	f := float64(x) - float64(i)
	return float32(math.Floor(f*256+0.5)) / 256
}

// footprint is the texels a sample reads along each dimension: two
// indices (one for point sampling), whether each is outside (border),
// and the weight of the second.
type footprint struct {
	idx    [3][2]uint32
	border [3][2]bool
	alpha  [3]float32
	n      int // spatial dimensions
}

// footprint computes where coordinates xyz sample: linear picks the
// texels around x-0.5.
func (t *Texture) footprint(xyz [3]float32, n int, linear bool) footprint {
	fp := footprint{n: n}
	for d := 0; d < n; d++ {
		x, size, mode := xyz[d], t.size(d), t.Address[d]
		if t.NormalizedCoords {
			x = wrapCoord(x, mode) * float32(size)
		}
		if !linear {
			fp.idx[d][0], fp.border[d][0] = texIndex(floorIndex(x), size, mode, t.NormalizedCoords)
			continue
		}
		xb := x - 0.5
		i := floorIndex(xb)
		fp.alpha[d] = linearWeight(xb, i)
		if xb != xb {
			fp.alpha[d] = 0
		}
		fp.idx[d][0], fp.border[d][0] = texIndex(i, size, mode, t.NormalizedCoords)
		fp.idx[d][1], fp.border[d][1] = texIndex(i+1, size, mode, t.NormalizedCoords)
	}
	return fp
}

// corner is the offset and border flag of footprint corner c (bit d
// picks the second texel along dimension d).
func (t *Texture) corner(fp *footprint, c int, layer uint32) (uint64, bool) {
	var ix [3]uint32
	border := false
	for d := 0; d < fp.n; d++ {
		s := c >> d & 1
		ix[d] = fp.idx[d][s]
		border = border || fp.border[d][s]
	}
	if fp.n == 3 {
		return t.offset(ix[0], ix[1], ix[2]), border
	}
	return t.offset(ix[0], ix[1], layer), border
}

// sampleFloat returns the filtered channels at xyz.
func (t *Texture) sampleFloat(xyz [3]float32, n int, layer uint32) [4]float32 {
	linear := t.Filter == FilterLinear
	fp := t.footprint(xyz, n, linear)
	if !linear {
		off, b := t.corner(&fp, 0, layer)
		return t.texelFloats(off, b)
	}
	// the sum starts with the first term, not 0, so that -0 stays -0
	var sum [4]float32
	for c := 0; c < 1<<n; c++ {
		w := float32(1)
		for d := 0; d < n; d++ {
			if c>>d&1 != 0 {
				w *= fp.alpha[d]
			} else {
				w *= 1 - fp.alpha[d]
			}
		}
		off, b := t.corner(&fp, c, layer)
		v := t.texelFloats(off, b)
		for k := range sum {
			if c == 0 {
				sum[k] = w * v[k]
			} else {
				sum[k] += w * v[k]
			}
		}
	}
	return sum
}

// gather returns component comp of the four texels that bilinear
// filtering at (x, y) reads, in tld4's order: (i, j+1), (i+1, j+1),
// (i+1, j), (i, j).
func (t *Texture) gather(xy [3]float32, comp int, layer uint32, asFloat bool) [4]uint32 {
	fp := t.footprint(xy, 2, true)
	var out [4]uint32
	for k, c := range [4]int{2, 3, 1, 0} {
		off, b := t.corner(&fp, c, layer)
		if asFloat {
			out[k] = math.Float32bits(t.texelFloats(off, b)[comp])
		} else {
			out[k] = t.texelInts(off, b)[comp]
		}
	}
	return out
}

// layerIndex clamps a layer coordinate to the image's layers.
func (im *Image) layerIndex(v uint32) uint32 {
	return min(v, im.Layers-1)
}
