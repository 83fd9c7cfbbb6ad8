package gpu_test

import (
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/gpu"
)

func wantOOM(t *testing.T, what string, err error) {
	t.Helper()
	var ae *abi.Error
	if !errors.As(err, &ae) || ae.Code != abi.ErrOutOfMemory {
		t.Fatalf("%s: %v, want CUDA_ERROR_OUT_OF_MEMORY", what, err)
	}
}

func wantInfo(t *testing.T, q *gpu.Quota, free, total uint64) {
	t.Helper()
	if f, tot := q.MemInfo(); f != free || tot != total {
		t.Fatalf("MemInfo = %d, %d; want %d, %d", f, tot, free, total)
	}
}

func TestQuotaResolvesLimit(t *testing.T) {
	for _, tc := range []struct {
		name                string
		limit, device, want uint64
	}{
		{"zero is the device", 0, 80, 80},
		{"over the device is the device", 100, 80, 80},
		{"under the device stays", 30, 80, 30},
		{"equal to the device", 80, 80, 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := gpu.NewQuota(tc.limit, tc.device)
			wantInfo(t, q, tc.want, tc.want)
			if err := q.SetLimit(tc.limit); err != nil {
				t.Fatal(err)
			}
			wantInfo(t, q, tc.want, tc.want)
		})
	}
}

func TestQuotaReserveRelease(t *testing.T) {
	q := gpu.NewQuota(100, 1000)
	if err := q.Reserve(64, "a"); err != nil {
		t.Fatal(err)
	}
	wantOOM(t, "past the limit", q.Reserve(37, "b"))
	wantOOM(t, "huge", q.Reserve(math.MaxUint64, "c"))
	if err := q.Reserve(36, "exact fit"); err != nil {
		t.Fatal(err)
	}
	wantInfo(t, q, 0, 100)
	wantOOM(t, "one more byte", q.Reserve(1, "d"))
	if err := q.Reserve(0, "nothing"); err != nil {
		t.Fatalf("a zero charge on a full quota: %v", err)
	}
	q.Release(36)
	wantInfo(t, q, 36, 100)
	q.Release(math.MaxUint64) // over-release empties, never wraps
	if q.Used() != 0 {
		t.Fatalf("used %d after over-release", q.Used())
	}
	wantInfo(t, q, 100, 100)
}

func TestQuotaSetLimit(t *testing.T) {
	q := gpu.NewQuota(100, 1000)
	if err := q.Reserve(60, "a"); err != nil {
		t.Fatal(err)
	}
	wantOOM(t, "shrink below use", q.SetLimit(59))
	wantInfo(t, q, 40, 100) // the old limit stays
	if err := q.SetLimit(60); err != nil {
		t.Fatalf("shrink to use: %v", err)
	}
	wantInfo(t, q, 0, 60)
	if err := q.SetLimit(500); err != nil {
		t.Fatal(err)
	}
	wantInfo(t, q, 440, 500)
	if err := q.SetLimit(0); err != nil {
		t.Fatal(err)
	}
	wantInfo(t, q, 940, 1000)
	if err := q.SetLimit(math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	wantInfo(t, q, 940, 1000)
}

// Concurrent reservations never overcommit: exactly limit/n of them win.
func TestQuotaConcurrentReserve(t *testing.T) {
	const limit, n, workers = 1 << 20, 4096, 8
	q := gpu.NewQuota(limit, limit)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		won int
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q.Reserve(n, "worker") == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != limit/n || q.Used() != limit {
		t.Fatalf("%d reservations won, %d bytes used; want %d, %d", won, q.Used(), limit/n, limit)
	}
	for range won {
		wg.Add(1)
		go func() { defer wg.Done(); q.Release(n) }()
	}
	wg.Wait()
	wantInfo(t, q, limit, limit)
}

func TestAlignUp(t *testing.T) {
	for _, tc := range []struct {
		n, align, want uint64
		ok             bool
	}{
		{0, 256, 0, true},
		{1, 256, 256, true},
		{256, 256, 256, true},
		{257, 256, 512, true},
		{math.MaxUint64 - 255, 256, math.MaxUint64 - 255, true},
		{math.MaxUint64 - 254, 256, 0, false},
		{math.MaxUint64, 2 << 20, 0, false},
	} {
		got, ok := gpu.AlignUp(tc.n, tc.align)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("AlignUp(%d, %d) = %d, %v; want %d, %v", tc.n, tc.align, got, ok, tc.want, tc.ok)
		}
	}
}
