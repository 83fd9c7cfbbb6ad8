package slicer

import (
	"errors"
	"fmt"
	"sort"
)

// SliceSpec is one slice of a profile. Memory, when set, is an exact size;
// otherwise Fraction is a part of the GPU's usable memory. Share 0 means
// "the same part of compute as of memory".
type SliceSpec struct {
	Fraction float64 `json:"fraction,omitempty"`
	Memory   uint64  `json:"memory,omitempty"`
	Share    float64 `json:"share,omitempty"`
}

// Profile is a named layout template: Slices on every GPU, except those
// PerGPU names (by GPU index).
type Profile struct {
	Name   string              `json:"name"`
	Slices []SliceSpec         `json:"slices"`
	PerGPU map[int][]SliceSpec `json:"perGPU,omitempty"`
}

// ErrInvalidProfile wraps every profile validation failure.
var ErrInvalidProfile = errors.New("invalid profile")

func uniform(name string, n int, f float64) Profile {
	p := Profile{Name: name}
	for range n {
		p.Slices = append(p.Slices, SliceSpec{Fraction: f})
	}
	return p
}

// Builtin returns the profiles kerf ships: uniform-20 (20 slices of 5%),
// uniform-10 (10 of 10%), mixed-2x25-5x10 (2 of 25% and 5 of 10%) and
// whole (1 slice of 100%).
func Builtin() []Profile {
	mixed := Profile{Name: "mixed-2x25-5x10"}
	for range 2 {
		mixed.Slices = append(mixed.Slices, SliceSpec{Fraction: 0.25})
	}
	for range 5 {
		mixed.Slices = append(mixed.Slices, SliceSpec{Fraction: 0.10})
	}
	return []Profile{
		uniform("uniform-20", 20, 0.05),
		uniform("uniform-10", 10, 0.10),
		mixed,
		uniform("whole", 1, 1),
	}
}

// IsBuiltin reports whether name is one of Builtin's profiles.
func IsBuiltin(name string) bool {
	for _, p := range Builtin() {
		if p.Name == name {
			return true
		}
	}
	return false
}

// specsFor returns the slice specs p gives GPU index i.
func (p *Profile) specsFor(i int) []SliceSpec {
	if s, ok := p.PerGPU[i]; ok {
		return s
	}
	return p.Slices
}

// resolve turns p's specs for g into sizes, or explains why they do not
// fit g.
func (p *Profile) resolve(g GPU, usable uint64) ([]Size, error) {
	specs := p.specsFor(g.Index)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q on gpu %d (%s, %s): %s", ErrInvalidProfile, p.Name, g.Index, g.Model, fmtBytes(g.Memory), fmt.Sprintf(format, args...))
	}
	if len(specs) == 0 {
		return nil, bad("no slices")
	}
	sizes := make([]Size, len(specs))
	var mem uint64
	var share float64
	for i, s := range specs {
		var sz Size
		switch {
		case s.Memory > 0:
			sz.Memory = alignDown(s.Memory)
			if sz.Memory == 0 {
				return nil, bad("slice %d: memory %d bytes is under 1 MiB", i, s.Memory)
			}
		case s.Fraction > 0 && s.Fraction <= 1+eps:
			sz.Memory = alignDown(uint64(s.Fraction * float64(usable)))
			if sz.Memory == 0 {
				return nil, bad("slice %d: %s of %s is under 1 MiB", i, pct(s.Fraction), fmtBytes(usable))
			}
		default:
			return nil, bad("slice %d: fraction %g is outside (0, 1] and no memory is given", i, s.Fraction)
		}
		switch {
		case s.Share < 0 || s.Share > 1+eps:
			return nil, bad("slice %d: share %g is outside [0, 1]", i, s.Share)
		case s.Share > 0:
			sz.Share = s.Share
		case s.Memory == 0:
			sz.Share = s.Fraction
		case usable > 0:
			sz.Share = float64(sz.Memory) / float64(usable)
		}
		if sz.Share <= 0 {
			return nil, bad("slice %d: zero compute share", i)
		}
		sizes[i] = sz
		mem += sz.Memory
		share += sz.Share
	}
	if mem > usable {
		return nil, bad("slices need %s but only %s is usable (%s less the reserve)", fmtBytes(mem), fmtBytes(usable), fmtBytes(g.Memory))
	}
	if share > 1+eps {
		return nil, bad("compute shares sum to %s, more than 100%%", pct(share))
	}
	return sizes, nil
}

// Validate checks p against every GPU of the node; the error names the
// profile, the GPU and the problem.
func (p *Profile) Validate(gpus []GPU, r Reserve) error {
	if p.Name == "" {
		return fmt.Errorf("%w: no name", ErrInvalidProfile)
	}
	idx := map[int]bool{}
	for _, g := range gpus {
		idx[g.Index] = true
		if _, err := p.resolve(g, r.Usable(g)); err != nil {
			return err
		}
	}
	keys := make([]int, 0, len(p.PerGPU))
	for k := range p.PerGPU {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		if !idx[k] {
			return fmt.Errorf("%w %q: perGPU names gpu %d, which this node does not have", ErrInvalidProfile, p.Name, k)
		}
	}
	return nil
}
