package slicer

import (
	"fmt"
	"math"
	"strings"

	"github.com/kerf-edge/kerf/gpu"
)

// MiB is the granularity of slice memory.
const MiB = 1 << 20

// eps absorbs float rounding when fractions and shares are compared.
const eps = 1e-6

// GPU is one physical GPU of this node, as discovery fills it.
type GPU struct {
	Index    int    `json:"index"`
	UUID     string `json:"uuid"`
	Model    string `json:"model"`
	Memory   uint64 `json:"memory"`
	SMs      int    `json:"sms"`
	Emulated bool   `json:"emulated,omitempty"`
}

// FromDevice describes backend device ordinal i.
func FromDevice(i int, d gpu.DeviceInfo) GPU {
	u := d.UUID
	return GPU{
		Index:    i,
		UUID:     fmt.Sprintf("GPU-%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]),
		Model:    d.Name,
		Memory:   d.TotalMem,
		SMs:      d.SMs,
		Emulated: d.Emulated,
	}
}

// Reserve is the memory kept back from slicing on every GPU: the larger of
// Fraction of its memory and Bytes.
type Reserve struct {
	Fraction float64 `json:"fraction"`
	Bytes    uint64  `json:"bytes"`
}

// DefaultReserve keeps 5% of each GPU, at least 512 MiB.
var DefaultReserve = Reserve{Fraction: 0.05, Bytes: 512 * MiB}

// Usable is the memory of g that slices may share, MiB-aligned.
func (r Reserve) Usable(g GPU) uint64 {
	res := max(uint64(r.Fraction*float64(g.Memory)), r.Bytes)
	if res >= g.Memory {
		return 0
	}
	return alignDown(g.Memory - res)
}

func alignDown(b uint64) uint64 { return b &^ (MiB - 1) }

func alignUp(b uint64) uint64 { return alignDown(b + MiB - 1) }

// Size is a slice's memory quota and compute share (0..1 of the GPU).
type Size struct {
	Memory uint64  `json:"memory"`
	Share  float64 `json:"share"`
}

// SliceID names a slice; it is stable while the slice exists.
type SliceID string

// LeaseID names one granted request.
type LeaseID string

// Slice is one slice of a layout.
type Slice struct {
	ID  SliceID `json:"id"`
	GPU int     `json:"gpu"`
	// Size is in force now: the memory limit and share its tenant has.
	Size
	// Target is where re-slicing takes it; equal to Size when settled.
	// A slice being created has a zero Size until it fits.
	Target Size `json:"target"`
	// Grant is what its tenant was granted and keeps: the memory quota
	// and compute share it asked for, or the profile slice it took. A
	// re-slice never takes a held slice below its grant unless forced
	// (ApplyOptions.Force). Zero while free.
	Grant Size `json:"grant,omitzero"`
	// Orphan: held, but not one of the active profile's slices (carved on
	// demand to a request's size, or left over by a re-slice); removed
	// when freed.
	Orphan bool    `json:"orphan,omitempty"`
	Tenant string  `json:"tenant,omitempty"`
	Lease  LeaseID `json:"lease,omitempty"`
	// Used is the tenant's memory use as its worker last reported.
	Used uint64 `json:"used,omitempty"`
	// Err is the last Control failure on this slice, retried later.
	Err string `json:"err,omitempty"`
}

// covers reports whether a is at least b in memory and share.
func (a Size) covers(b Size) bool { return a.Memory >= b.Memory && a.Share >= b.Share-eps }

// Held reports whether a tenant holds s.
func (s *Slice) Held() bool { return s.Tenant != "" }

// Settled reports whether s is at its target.
func (s *Slice) Settled() bool { return s.Size == s.Target }

// free reports whether s may be given to a request.
func (s *Slice) free() bool { return !s.Held() && !s.Orphan && s.Settled() && s.Memory > 0 }

// fraction is how much of a GPU s counts as: the larger of its share and
// its part of usable memory. Requests are matched and charged by it.
func fraction(sz Size, usable uint64) float64 {
	f := sz.Share
	if usable > 0 {
		f = max(f, float64(sz.Memory)/float64(usable))
	}
	return math.Min(f, 1)
}

// GPULayout is one GPU and its slices.
type GPULayout struct {
	GPU    GPU     `json:"gpu"`
	Usable uint64  `json:"usable"`
	Slices []Slice `json:"slices"`
}

// Layout is the set of slices on each GPU of the node. Seq numbers new
// slice IDs.
type Layout struct {
	GPUs []GPULayout `json:"gpus"`
	Seq  uint64      `json:"seq"`
}

// Clone returns a deep copy of l.
func (l Layout) Clone() Layout {
	out := Layout{Seq: l.Seq, GPUs: make([]GPULayout, len(l.GPUs))}
	for i, g := range l.GPUs {
		g.Slices = append([]Slice(nil), g.Slices...)
		out.GPUs[i] = g
	}
	return out
}

// fmtBytes formats b in GiB or MiB for messages.
func fmtBytes(b uint64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", b/MiB)
}

func pct(f float64) string {
	s := fmt.Sprintf("%.2f", f*100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

// FreeCapacity sums g's free slices: how many, their sum as a fraction of
// the GPU (counted as requests are), and the largest of them, as a
// fraction and in bytes.
func (g GPULayout) FreeCapacity() (n int, total, largest float64, largestMemory uint64) {
	for i := range g.Slices {
		s := &g.Slices[i]
		if !s.free() {
			continue
		}
		f := fraction(s.Size, g.Usable)
		n, total = n+1, total+f
		if f > largest {
			largest, largestMemory = f, s.Memory
		}
	}
	return n, math.Min(total, 1), largest, largestMemory
}
