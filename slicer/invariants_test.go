package slicer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/internal/clock"
)

// checkInvariants fails t if s's state is inconsistent: over-committed
// GPUs, slices held by no live lease or by two, leases whose slices are
// gone, held slices below their grant, charges that are not the grants,
// tenants past their limit.
func checkInvariants(t testing.TB, s *Slicer, ctl *fakeControl) {
	t.Helper()
	st := s.Status()
	live := map[LeaseID]Lease{}
	owner := map[SliceID]LeaseID{}
	charged := map[string]float64{}
	for _, l := range st.Leases {
		live[l.ID] = l
		charged[l.Tenant] += l.Charge
		for _, id := range l.Slices {
			if other, ok := owner[id]; ok {
				t.Fatalf("slice %s is in leases %s and %s", id, other, l.ID)
			}
			owner[id] = l.ID
		}
	}
	for tenant, c := range charged {
		if limit := s.policyOfLocked(tenant).MaxGPUs; limit > 0 && c > limit+fitTolerance {
			t.Fatalf("%s is charged %g GPUs, its limit is %g", tenant, c, limit)
		}
	}
	granted := map[LeaseID]float64{}
	held := map[SliceID]LeaseID{}
	for _, g := range st.Layout.GPUs {
		var mem uint64
		var share float64
		gpusOf := map[LeaseID]int{}
		for _, sl := range g.Slices {
			mem += sl.Memory
			share += sl.Share
			if !sl.Held() && sl.Grant != (Size{}) {
				t.Fatalf("free slice %s keeps a grant %+v", sl.ID, sl.Grant)
			}
			if sl.Held() {
				if sl.Grant.Memory == 0 || !sl.Size.covers(sl.Grant) || !sl.Target.covers(sl.Grant) {
					t.Fatalf("held slice %s below its grant: %+v", sl.ID, sl)
				}
				granted[sl.Lease] += fraction(sl.Grant, g.Usable)
				l, ok := live[sl.Lease]
				if !ok || l.Tenant != sl.Tenant {
					t.Fatalf("slice %s held by %s/%s, no such live lease", sl.ID, sl.Tenant, sl.Lease)
				}
				held[sl.ID] = sl.Lease
				gpusOf[sl.Lease]++
				if ctl != nil && sl.Used > sl.Memory {
					t.Fatalf("slice %s limit %d under use %d", sl.ID, sl.Memory, sl.Used)
				}
			}
			if sl.Target.Memory > g.Usable {
				t.Fatalf("slice %s target beyond the GPU", sl.ID)
			}
		}
		if mem > g.Usable || share > 1+1e-9 {
			t.Fatalf("gpu %d over-committed: %d of %d bytes, share %g", g.GPU.Index, mem, g.Usable, share)
		}
		for id, n := range gpusOf {
			if n > 1 {
				t.Fatalf("lease %s has %d slices on gpu %d", id, n, g.GPU.Index)
			}
		}
	}
	for _, l := range st.Leases {
		for _, id := range l.Slices {
			if held[id] != l.ID {
				t.Fatalf("lease %s lost slice %s", l.ID, id)
			}
		}
		if math.Abs(granted[l.ID]-l.Charge) > 1e-9 {
			t.Fatalf("lease %s charged %g, its slices were granted %g", l.ID, l.Charge, granted[l.ID])
		}
	}
}

// policyOfLocked is policyOf for tests.
func (s *Slicer) policyOfLocked(tenant string) Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policyOf(tenant)
}

// TestRandomOperations runs random allocations, reports, releases,
// re-slicing and reclaims, checking the invariants after each.
func TestRandomOperations(t *testing.T) {
	profiles := []string{"uniform-20", "uniform-10", "mixed-2x25-5x10", "whole", "odd"}
	odd := Profile{Name: "odd", Slices: []SliceSpec{{Fraction: 0.5, Share: 0.3}, {Memory: 3 * GiB, Share: 0.3}, {Fraction: 0.15}}}
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			ctl := newControl()
			c := clock.NewFake(time.Time{})
			s := newSlicer(t, Config{GPUs: mixedNode(), Reserve: DefaultReserve, Control: ctl, Clock: c, Profiles: []Profile{odd},
				DefaultPolicy: Policy{MaxGPUs: 2, IdleTimeout: time.Minute}})
			var leases []Lease
			granted, carved, pendingSeen, reclaimed, rejected := 0, 0, 0, 0, 0
			for range 1500 {
				switch op := rng.IntN(10); {
				case op < 4:
					req := Request{Tenant: fmt.Sprint("t", rng.IntN(5)), N: 1 + rng.IntN(3), Fraction: []float64{0, 0.1, 0.2, 0.25, 0.5, 0.05, 0.35, 0.15, 0.7}[rng.IntN(9)]}
					switch rng.IntN(8) {
					case 0, 1:
						req.Fraction, req.Memory = 0, uint64(1+rng.IntN(8))*GiB
					case 2:
						req.Fraction, req.AnySlice = 0, true
					}
					l, err := s.TryAllocate(req)
					switch {
					case err == nil:
						leases = append(leases, l)
						granted++
						if sl := sliceOf(s.Status().Layout, l.Slices[0]); sl.Orphan {
							carved++
						}
					case errors.Is(err, ErrNoCapacity), errors.Is(err, ErrLimit), errors.Is(err, ErrUnsatisfiable):
					default:
						t.Fatal(err)
					}
				case op < 7 && len(leases) > 0:
					l := leases[rng.IntN(len(leases))]
					id := l.Slices[rng.IntN(len(l.Slices))]
					sl := sliceOf(s.Status().Layout, id)
					if sl == nil || sl.Lease != l.ID {
						continue // reclaimed or released
					}
					used := uint64(rng.Int64N(int64(sl.Memory) + 1))
					ctl.mu.Lock()
					ctl.real[id] = used
					ctl.mu.Unlock()
					if err := s.Report(l.ID, id, Usage{MemUsed: used, Calls: rng.Uint64()}); err != nil && !errors.Is(err, ErrReclaimed) {
						t.Fatal(err)
					}
				case op < 8 && len(leases) > 0:
					i := rng.IntN(len(leases))
					if err := s.Release(leases[i].ID); err != nil && !errors.Is(err, ErrReclaimed) && !errors.Is(err, ErrUnknownLease) {
						t.Fatal(err)
					}
					leases = append(leases[:i], leases[i+1:]...)
				case op < 9:
					p, err := s.ApplyProfile(profiles[rng.IntN(len(profiles))], ApplyOptions{RejectPending: rng.IntN(2) == 0, Force: rng.IntN(3) == 0})
					switch {
					case errors.Is(err, ErrPending):
						rejected++
					case err != nil:
						t.Fatal(err)
					case len(p.Pending) > 0:
						pendingSeen++
					}
				default:
					c.Advance(time.Duration(rng.IntN(30)) * time.Second)
					reclaimed += len(s.Reclaim())
				}
				checkInvariants(t, s, ctl)
			}
			t.Logf("granted %d (carved %d), applies with pending %d, rejected %d, reclaimed %d", granted, carved, pendingSeen, rejected, reclaimed)
			if granted == 0 || carved == 0 || pendingSeen == 0 || rejected == 0 || reclaimed == 0 {
				t.Fatal("the random walk missed a path")
			}
			for _, l := range leases {
				s.Release(l.ID)
			}
			if st := s.Status(); len(st.Pending) != 0 || len(st.Leases) != 0 {
				t.Fatalf("after releasing everything: pending %+v", st.Pending)
			}
		})
	}
}

// TestConcurrentUse exercises the Slicer from many goroutines under -race.
func TestConcurrentUse(t *testing.T) {
	ctl := newControl()
	s := newSlicer(t, Config{GPUs: gpus(4, "A100", 40*GiB), Reserve: noReserve, Control: ctl})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				req := Request{Tenant: fmt.Sprint("t", w), N: 1 + i%2, Fraction: 0.1}
				l, err := s.TryAllocate(req)
				if err != nil {
					continue
				}
				s.Report(l.ID, l.Slices[0], Usage{MemUsed: MiB, Calls: uint64(i)})
				if i%25 == 0 {
					s.ApplyProfile([]string{"uniform-10", "uniform-20", "mixed-2x25-5x10"}[i%3], ApplyOptions{})
				}
				s.Status()
				if err := s.Release(l.ID); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	checkInvariants(t, s, nil)
}
