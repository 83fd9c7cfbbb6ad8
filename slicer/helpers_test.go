package slicer

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

const GiB = 1 << 30

// fakeControl records Control calls and refuses shrinks below a slice's
// real use, as gpu.Context.SetMemLimit does.
type fakeControl struct {
	mu    sync.Mutex
	calls []string
	limit map[SliceID]uint64
	share map[SliceID]float64
	real  map[SliceID]uint64 // actual use, may exceed the last report
	fail  error
}

func newControl() *fakeControl {
	return &fakeControl{limit: map[SliceID]uint64{}, share: map[SliceID]float64{}, real: map[SliceID]uint64{}}
}

func (c *fakeControl) SetMemLimit(id SliceID, b uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	if b < c.real[id] {
		return fmt.Errorf("limit %d under use %d", b, c.real[id])
	}
	c.calls = append(c.calls, fmt.Sprintf("mem %s %d", id, b/MiB))
	c.limit[id] = b
	return nil
}

func (c *fakeControl) SetShare(id SliceID, sh float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.calls = append(c.calls, fmt.Sprintf("share %s %.2f", id, sh))
	c.share[id] = sh
	return nil
}

func (c *fakeControl) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

// gpus returns n identical GPUs of mem bytes.
func gpus(n int, model string, mem uint64) []GPU {
	out := make([]GPU, n)
	for i := range out {
		out[i] = GPU{Index: i, UUID: fmt.Sprintf("GPU-%04d", i), Model: model, Memory: mem, SMs: 108}
	}
	return out
}

// noReserve makes sizes round: usable = memory.
var noReserve = Reserve{}

// fifths is five 20% slices per GPU: round sizes for the tests.
var fifths = uniform("fifths", 5, 0.20)

func newSlicer(t testing.TB, cfg Config) *Slicer {
	t.Helper()
	cfg.Profiles = append(cfg.Profiles, fifths)
	if cfg.Profile == "" {
		cfg.Profile = fifths.Name
	}
	if cfg.GPUs == nil {
		cfg.GPUs = gpus(4, "NVIDIA A100", 40*GiB)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewFake(time.Time{})
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// sliceOf finds a slice in a layout.
func sliceOf(l Layout, id SliceID) *Slice {
	for gi := range l.GPUs {
		for i := range l.GPUs[gi].Slices {
			if l.GPUs[gi].Slices[i].ID == id {
				return &l.GPUs[gi].Slices[i]
			}
		}
	}
	return nil
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
