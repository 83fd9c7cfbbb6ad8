package slicer

import (
	"errors"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/gpu"
)

func TestReserveUsable(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Reserve
		mem  uint64
		want uint64
	}{
		{"none", Reserve{}, 16 * GiB, 16 * GiB},
		{"5%", Reserve{Fraction: 0.05}, 20 * GiB, 19 * GiB},
		{"bytes win", DefaultReserve, 4 * GiB, 4*GiB - 512*MiB},
		{"fraction wins", DefaultReserve, 40 * GiB, 38 * GiB},
		{"all reserved", Reserve{Bytes: GiB}, GiB, 0},
		{"aligned down", Reserve{Bytes: 1}, 2 * MiB, MiB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Usable(GPU{Memory: tc.mem}); got != tc.want {
				t.Fatalf("usable %d, want %d", got, tc.want)
			}
		})
	}
}

func TestProfileValidate(t *testing.T) {
	g := gpus(2, "NVIDIA T4", 16*GiB)
	for _, tc := range []struct {
		name string
		p    Profile
		r    Reserve
		want string // "" is valid; else a fragment of the error
	}{
		{"uniform-20", Builtin()[0], DefaultReserve, ""},
		{"uniform-10", Builtin()[1], DefaultReserve, ""},
		{"mixed", Builtin()[2], DefaultReserve, ""},
		{"whole", Builtin()[3], DefaultReserve, ""},
		{"no name", Profile{Slices: []SliceSpec{{Fraction: 1}}}, noReserve, "no name"},
		{"no slices", Profile{Name: "x"}, noReserve, "no slices"},
		{"memory over reserve", Profile{Name: "big", Slices: []SliceSpec{{Memory: 8 * GiB}, {Memory: 8 * GiB}}}, DefaultReserve, "need 16.00 GiB but only 15.20 GiB is usable"},
		{"memory fits without reserve", Profile{Name: "big", Slices: []SliceSpec{{Memory: 8 * GiB}, {Memory: 8 * GiB}}}, noReserve, ""},
		{"shares over 100%", Profile{Name: "greedy", Slices: []SliceSpec{{Fraction: 0.5, Share: 0.7}, {Fraction: 0.5, Share: 0.5}}}, noReserve, "shares sum to 120%"},
		{"fractions over 100%", Profile{Name: "f", Slices: []SliceSpec{{Fraction: 0.6}, {Fraction: 0.6}}}, noReserve, "but only"},
		{"fraction out of range", Profile{Name: "f", Slices: []SliceSpec{{Fraction: 1.5}}}, noReserve, "slice 0: fraction 1.5 is outside (0, 1]"},
		{"negative share", Profile{Name: "s", Slices: []SliceSpec{{Fraction: 0.5, Share: -0.1}}}, noReserve, "share -0.1"},
		{"tiny", Profile{Name: "t", Slices: []SliceSpec{{Memory: 1000}}}, noReserve, "under 1 MiB"},
		{"perGPU unknown gpu", Profile{Name: "p", Slices: []SliceSpec{{Fraction: 1}}, PerGPU: map[int][]SliceSpec{7: {{Fraction: 1}}}}, noReserve, "gpu 7"},
		{"perGPU bad", Profile{Name: "p", Slices: []SliceSpec{{Fraction: 1}}, PerGPU: map[int][]SliceSpec{1: {{Fraction: 0.75}, {Fraction: 0.5}}}}, noReserve, "on gpu 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate(g, tc.r)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error with %q", tc.want)
			case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidProfile)):
				t.Fatalf("error %q; want ErrInvalidProfile naming %q", err, tc.want)
			}
		})
	}
}

func TestProfileSizes(t *testing.T) {
	g := GPU{Index: 0, Memory: 10 * GiB}
	p := Builtin()[2] // mixed-2x25-5x10
	sizes, err := p.resolve(g, 10*GiB)
	if err != nil {
		t.Fatal(err)
	}
	var mem uint64
	var share float64
	for _, s := range sizes {
		mem += s.Memory
		share += s.Share
		if s.Memory%MiB != 0 {
			t.Errorf("size %d not MiB-aligned", s.Memory)
		}
	}
	if len(sizes) != 7 || mem > 10*GiB || share > 1+eps || sizes[0].Share != 0.25 || sizes[6].Share != 0.1 {
		t.Fatalf("sizes %+v (mem %d, share %g)", sizes, mem, share)
	}
}

func TestFromDevice(t *testing.T) {
	d := gpu.DeviceInfo{Name: "Kerf Emulated GPU", UUID: [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, TotalMem: 2 * GiB, SMs: 4, Emulated: true}
	g := FromDevice(3, d)
	want := GPU{Index: 3, UUID: "GPU-deadbeef-0102-0304-0506-0708090a0b0c", Model: d.Name, Memory: 2 * GiB, SMs: 4, Emulated: true}
	if g != want {
		t.Fatalf("got %+v, want %+v", g, want)
	}
}
