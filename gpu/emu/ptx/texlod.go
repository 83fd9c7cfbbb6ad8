package ptx

import "math"

// Cube maps and mipmaps. A cube map lookup picks the face the direction
// (x, y, z) points to by its largest component, as the CUDA C++
// Programming Guide's table of cubemap faces gives it, and reads that
// face as a 2D layer with normalised coordinates clamped to the face:
// filtering does not reach across to the neighbouring face. A tie
// between components goes to x, then y.
//
// tex.level reads the level of detail from an operand; tex.grad derives
// it from the gradients as log2 of the longer of dP/dx and dP/dy in
// texels of level 0; plain tex reads level 0. The level of detail is
// biased and clamped as the texture says, and point mipmap filtering
// reads the nearest level; linear mipmap filtering mixes the two levels
// around it, the weight of the upper one held, like linear filtering's,
// as 8 fractional bits.

// valid reports whether the texture's image and mipmap levels lie
// inside their data and each level halves the one before.
func (t *Texture) valid() bool {
	if !t.Image.valid() {
		return false
	}
	prev := &t.Image
	for i := range t.Mipmaps {
		m := &t.Mipmaps[i]
		if !m.valid() || m.Format != t.Format || m.Channels != t.Channels || m.Dims != t.Dims ||
			m.Layers != t.Layers || m.Cube != t.Cube || m.Width != max(prev.Width/2, 1) ||
			m.Height != max(prev.Height/2, 1) || m.Depth != max(prev.Depth/2, 1) {
			return false
		}
		prev = m
	}
	return true
}

// cubeFace maps direction xyz to a face and the normalised coordinates
// (s, t) on it.
func cubeFace(xyz [3]float32) ([3]float32, uint32) {
	x, y, z := xyz[0], xyz[1], xyz[2]
	ax, ay, az := abs32(x), abs32(y), abs32(z)
	var face uint32
	var s, t, m float32
	switch {
	case ax >= ay && ax >= az:
		m = ax
		if x >= 0 {
			face, s, t = 0, -z, -y
		} else {
			face, s, t = 1, z, -y
		}
	case ay >= az:
		m = ay
		if y >= 0 {
			face, s, t = 2, x, z
		} else {
			face, s, t = 3, x, -z
		}
	default:
		m = az
		if z >= 0 {
			face, s, t = 4, x, -y
		} else {
			face, s, t = 5, -x, -y
		}
	}
	return [3]float32{(s/m + 1) / 2, (t/m + 1) / 2}, face
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// faces is the texture as a cube map's faces are read: normalised
// coordinates, clamped.
func (t *Texture) faces() *Texture {
	v := *t
	v.NormalizedCoords = true
	v.Address = [3]AddressMode{AddressClamp, AddressClamp, AddressClamp}
	return &v
}

// gradLod is the level of detail of gradients g (dP/dx, dP/dy) over n
// dimensions.
func (t *Texture) gradLod(g [2][3]float32, n int) float32 {
	var rho float64
	for i := range g {
		var s float64
		for d := range n {
			v := float64(g[i][d])
			if t.NormalizedCoords {
				v *= float64(t.size(d))
			}
			s += v * v
		}
		rho = max(rho, math.Sqrt(s))
	}
	return float32(math.Log2(rho))
}

// levels picks the mipmap levels that level of detail lod reads and the
// weight of the second: linear mixes two levels, otherwise the nearest
// is read.
func (t *Texture) levels(lod float32, linear bool) (int, int, float32) {
	last := len(t.Mipmaps)
	if last == 0 {
		return 0, 0, 0
	}
	lod += t.MipmapLevelBias
	if lod != lod {
		lod = 0
	}
	lod = min(max(lod, t.MinMipmapLevelClamp), t.MaxMipmapLevelClamp)
	lod = min(max(lod, 0), float32(last))
	if !linear {
		i := int(math.Floor(float64(lod) + 0.5))
		return i, i, 0
	}
	i := int(lod)
	return i, min(i+1, last), linearWeight(lod, int64(i))
}

// atLevel is the texture as it reads mipmap level i, and xyz in that
// level's coordinates (unnormalised coordinates count level 0's texels).
func (t *Texture) atLevel(i int, xyz [3]float32, n int) (*Texture, [3]float32) {
	if i == 0 {
		return t, xyz
	}
	v := *t
	v.Image = t.Mipmaps[i-1]
	if !t.NormalizedCoords {
		for d := range n {
			xyz[d] *= float32(v.size(d)) / float32(t.size(d))
		}
	}
	return &v, xyz
}

// sampleLod reads the texture at xyz and level of detail lod, as floats
// or as integers (point sampled, from the nearest level).
func (t *Texture) sampleLod(xyz [3]float32, n int, layer uint32, lod float32, asFloat bool) [4]uint32 {
	var res [4]uint32
	lo, hi, f := t.levels(lod, asFloat && t.MipmapFilter == FilterLinear)
	v, c := t.atLevel(lo, xyz, n)
	if !asFloat {
		fp := v.footprint(c, n, false)
		return v.texelInts(v.corner(&fp, 0, layer))
	}
	s := v.sampleFloat(c, n, layer)
	if f != 0 {
		v, c = t.atLevel(hi, xyz, n)
		s1 := v.sampleFloat(c, n, layer)
		for k := range s {
			s[k] = s[k]*(1-f) + s1[k]*f
		}
	}
	for k := range res {
		res[k] = math.Float32bits(s[k])
	}
	return res
}
