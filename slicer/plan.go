package slicer

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
)

// Control changes a live slice in place. kerfd implements it by messaging
// the worker that serves the slice (which calls gpu.Context.SetMemLimit)
// and by updating the GPU's Arbiter; a slice with no live worker yet
// returns nil and gets the new size when its worker starts. Calls are made
// with the Slicer's lock held: they must not call back into the Slicer and
// should time out quickly. The shrinks of one GPU's slices are made
// concurrently (each may wait for its worker), so SetMemLimit must be safe
// to call from several goroutines. A refused shrink (the tenant grew
// meanwhile) is retried on the next Report.
type Control interface {
	SetMemLimit(slice SliceID, bytes uint64) error
	SetShare(slice SliceID, share float64) error
}

// Step is what a plan does to one slice.
type Step struct {
	// Op is keep, create, remove, resize or orphan (held, not in the
	// profile, left as it is).
	Op     string  `json:"op"`
	GPU    int     `json:"gpu"`
	Slice  SliceID `json:"slice"`
	Tenant string  `json:"tenant,omitempty"`
	From   Size    `json:"from"`
	// To is in force once the plan is applied; Target is where the slice
	// ends when its pending part is done.
	To     Size `json:"to"`
	Target Size `json:"target"`
}

// Pending is work a layout has not finished: a shrink waiting for its
// tenant to free memory, a grow or a new slice waiting for room, a slice
// outside the profile waiting for release.
type Pending struct {
	GPU    int     `json:"gpu"`
	Slice  SliceID `json:"slice"`
	Tenant string  `json:"tenant,omitempty"`
	// Kind is shrink, grow, create, resize or orphan.
	Kind   string `json:"kind"`
	Size   Size   `json:"size"`
	Target Size   `json:"target"`
	Used   uint64 `json:"used,omitempty"`
	Reason string `json:"reason"`
}

// Plan is a dry run of moving a layout to a profile.
type Plan struct {
	Profile string `json:"profile"`
	// Base is the Slicer generation the plan was made at (0 from MakePlan).
	Base    uint64    `json:"base"`
	Steps   []Step    `json:"steps"`
	Pending []Pending `json:"pending,omitempty"`
	// Result is the layout once applied, pending parts not yet done.
	Result Layout `json:"result"`
}

// ErrPending is returned, wrapped in a *PlanError, when an apply that
// must complete at once (ApplyOptions.RejectPending) cannot.
var ErrPending = errors.New("plan leaves work pending")

// PlanError explains why a plan was rejected.
type PlanError struct {
	Profile string
	Pending []Pending
}

func (e *PlanError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "profile %q cannot be applied completely now", e.Profile)
	for _, p := range e.Pending {
		fmt.Fprintf(&b, "; gpu %d slice %s: %s", p.GPU, p.Slice, p.Reason)
	}
	return b.String()
}

func (e *PlanError) Unwrap() error { return ErrPending }

// MakePlan computes, without side effects, how cur would move to profile
// p: slices held by tenants are kept (matched to the profile's slice of
// the closest size) and resized, free slices are re-cut. Shrinks never go
// below a tenant's reported use and grows only into free room; the rest
// is listed as pending. An invalid profile is an error naming the problem.
func MakePlan(cur Layout, p Profile, opts ApplyOptions) (*Plan, error) {
	l := cur.Clone()
	if err := retarget(&l, &p, opts.Force); err != nil {
		return nil, err
	}
	reconcile(&l, nil)
	return &Plan{Profile: p.Name, Steps: diff(cur, l), Pending: pendingOf(l, p.Name), Result: l}, nil
}

// retarget sets every slice's target to profile p, in place. Held
// slices, the largest grant first, take the unclaimed profile slice
// closest to their size among those that cover their grant (force: among
// all, and the grant shrinks to it); one that none covers is an orphan
// and keeps its grant.
func retarget(l *Layout, p *Profile, force bool) error {
	for gi := range l.GPUs {
		gl := &l.GPUs[gi]
		sizes, err := p.resolve(gl.GPU, gl.Usable)
		if err != nil {
			return err
		}
		taken := make([]bool, len(sizes))
		held := make([]int, 0, len(gl.Slices))
		for i := range gl.Slices {
			if s := &gl.Slices[i]; s.Held() {
				if s.Grant == (Size{}) {
					s.Grant = s.Size
				}
				held = append(held, i)
			}
		}
		sort.SliceStable(held, func(a, b int) bool {
			x, y := &gl.Slices[held[a]], &gl.Slices[held[b]]
			if x.Grant.Memory != y.Grant.Memory {
				return x.Grant.Memory > y.Grant.Memory
			}
			return x.Memory > y.Memory
		})
		for _, i := range held {
			s := &gl.Slices[i]
			best := -1
			for k, sz := range sizes {
				if taken[k] || !force && !sz.covers(s.Grant) {
					continue
				}
				if best < 0 || absDiff(sz.Memory, s.Memory) < absDiff(sizes[best].Memory, s.Memory) {
					best = k
				}
			}
			if best < 0 {
				s.Orphan, s.Target = true, s.Grant
				continue
			}
			taken[best] = true
			s.Orphan, s.Target = false, sizes[best]
			if force {
				s.Grant = Size{min(s.Grant.Memory, s.Target.Memory), math.Min(s.Grant.Share, s.Target.Share)}
			}
		}
		// Free slices already cut to a remaining slot stay; the others go.
		kept := gl.Slices[:0]
		for _, s := range gl.Slices {
			if !s.Held() {
				k := slotFor(sizes, taken, s.Target)
				if k < 0 {
					continue
				}
				taken[k] = true
				s.Orphan = false
			}
			kept = append(kept, s)
		}
		gl.Slices = kept
		for k, sz := range sizes {
			if !taken[k] {
				l.Seq++
				gl.Slices = append(gl.Slices, Slice{ID: SliceID(fmt.Sprintf("g%d.s%d", gl.GPU.Index, l.Seq)), GPU: gl.GPU.Index, Target: sz})
			}
		}
	}
	return nil
}

func slotFor(sizes []Size, taken []bool, want Size) int {
	for k, sz := range sizes {
		if !taken[k] && sz == want {
			return k
		}
	}
	return -1
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// reconcile moves every slice toward its target as far as use and room
// allow: free orphans go, shrinks first (never below a tenant's use), then
// grows and new slices into the room left. ctl is told about held slices;
// nil means a dry run. It reports whether anything changed.
func reconcile(l *Layout, ctl Control) bool {
	changed := false
	for gi := range l.GPUs {
		gl := &l.GPUs[gi]
		kept := gl.Slices[:0]
		for _, s := range gl.Slices {
			if s.Orphan && !s.Held() {
				changed = true
				continue
			}
			kept = append(kept, s)
		}
		gl.Slices = kept
		// Shrinks. A live slice's shrink waits for its tenant's worker to
		// accept it, so they are asked of every worker at once.
		type shrink struct {
			s   *Slice
			m   uint64
			err error
		}
		var shrinks []*shrink
		for i := range gl.Slices {
			s := &gl.Slices[i]
			if s.Target.Memory < s.Memory {
				m := s.Target.Memory
				if s.Held() {
					m = max(m, s.Used)
				}
				if m < s.Memory {
					shrinks = append(shrinks, &shrink{s: s, m: m})
				}
			}
		}
		var wg sync.WaitGroup
		for _, sh := range shrinks {
			if sh.s.Held() && ctl != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sh.err = ctl.SetMemLimit(sh.s.ID, sh.m)
				}()
			}
		}
		wg.Wait()
		for _, sh := range shrinks {
			if sh.err != nil {
				sh.s.Err = sh.err.Error()
				continue
			}
			if sh.s.Held() && ctl != nil {
				sh.s.Err = ""
			}
			sh.s.Memory, changed = sh.m, true
		}
		for i := range gl.Slices {
			s := &gl.Slices[i]
			if s.Target.Share < s.Share && call(s, ctl, func() error { return ctl.SetShare(s.ID, s.Target.Share) }) {
				s.Share, changed = s.Target.Share, true
			}
		}
		// Grows, live slices first; new slices only whole.
		var mem uint64
		var share float64
		for _, s := range gl.Slices {
			mem += s.Memory
			share += s.Share
		}
		room := uint64(0)
		if gl.Usable > mem {
			room = gl.Usable - mem
		}
		shareRoom := 1 - share
		// Pass 0: live slices; 1: free ones being resized; 2: new ones.
		for pass := 0; pass < 3; pass++ {
			for i := range gl.Slices {
				s := &gl.Slices[i]
				creating := !s.Held() && s.Memory == 0
				kind := 1
				switch {
				case s.Held():
					kind = 0
				case creating:
					kind = 2
				}
				if s.Settled() || kind != pass {
					continue
				}
				if creating {
					if s.Target.Memory <= room && s.Target.Share <= shareRoom+eps {
						s.Size, changed = s.Target, true
						room -= s.Target.Memory
						shareRoom -= s.Target.Share
					}
					continue
				}
				if s.Target.Memory > s.Memory && room > 0 {
					m := min(s.Target.Memory, s.Memory+room)
					if call(s, ctl, func() error { return ctl.SetMemLimit(s.ID, m) }) {
						room -= m - s.Memory
						s.Memory, changed = m, true
					}
				}
				if s.Target.Share > s.Share && shareRoom > eps {
					sh := min(s.Target.Share, s.Share+shareRoom)
					if sh > s.Target.Share-eps {
						sh = s.Target.Share
					}
					if call(s, ctl, func() error { return ctl.SetShare(s.ID, sh) }) {
						shareRoom -= sh - s.Share
						s.Share, changed = sh, true
					}
				}
			}
		}
	}
	return changed
}

// call runs a Control call for a held slice, recording its failure.
func call(s *Slice, ctl Control, f func() error) bool {
	if !s.Held() || ctl == nil {
		return true
	}
	if err := f(); err != nil {
		s.Err = err.Error()
		return false
	}
	s.Err = ""
	return true
}

// diff lists what moving from a to b does to each slice.
func diff(a, b Layout) []Step {
	type was struct{ size, target Size }
	n := 0
	for _, g := range a.GPUs {
		n += len(g.Slices)
	}
	before := make(map[SliceID]was, n)
	for _, g := range a.GPUs {
		for _, s := range g.Slices {
			before[s.ID] = was{s.Size, s.Target}
		}
	}
	steps := make([]Step, 0, n)
	for _, g := range b.GPUs {
		for _, s := range g.Slices {
			st := Step{Op: "create", GPU: s.GPU, Slice: s.ID, Tenant: s.Tenant, To: s.Size, Target: s.Target}
			if old, ok := before[s.ID]; ok {
				delete(before, s.ID)
				st.From = old.size
				switch {
				case s.Orphan:
					st.Op = "orphan"
				case old.size == s.Size && old.target == s.Target:
					st.Op = "keep"
				default:
					st.Op = "resize"
				}
			}
			steps = append(steps, st)
		}
	}
	for _, g := range a.GPUs {
		for _, s := range g.Slices {
			if _, ok := before[s.ID]; ok {
				steps = append(steps, Step{Op: "remove", GPU: s.GPU, Slice: s.ID, From: s.Size})
			}
		}
	}
	return steps
}

// pendingOf lists the unfinished work of l, with reasons.
func pendingOf(l Layout, profile string) []Pending {
	var out []Pending
	for _, g := range l.GPUs {
		for _, s := range g.Slices {
			p := Pending{GPU: s.GPU, Slice: s.ID, Tenant: s.Tenant, Size: s.Size, Target: s.Target, Used: s.Used}
			switch {
			case s.Orphan:
				p.Kind = "orphan"
				p.Reason = fmt.Sprintf("held by %s, not one of profile %q's slices (cut to its request, or left by a re-slice); its %s and %s return to the profile when it is released", s.Tenant, profile, fmtBytes(s.Memory), pct(s.Share))
			case s.Settled():
				continue
			case !s.Held() && s.Memory == 0:
				p.Kind = "create"
				p.Reason = fmt.Sprintf("profile slice of %s and %s waits for room held by live slices", fmtBytes(s.Target.Memory), pct(s.Target.Share))
			case s.Held() && s.Target.Memory < s.Memory:
				p.Kind = "shrink"
				p.Reason = fmt.Sprintf("%s uses %s; shrinking from %s to %s completes as it frees memory", s.Tenant, fmtBytes(s.Used), fmtBytes(s.Memory), fmtBytes(s.Target.Memory))
			case s.Held():
				p.Kind = "grow"
				p.Reason = fmt.Sprintf("growing %s from %s/%s to %s/%s waits for room", s.Tenant, fmtBytes(s.Memory), pct(s.Share), fmtBytes(s.Target.Memory), pct(s.Target.Share))
			default:
				p.Kind = "resize"
				p.Reason = fmt.Sprintf("free slice waits for room to become %s/%s", fmtBytes(s.Target.Memory), pct(s.Target.Share))
			}
			if s.Err != "" {
				p.Reason += " (last control error: " + s.Err + ")"
			}
			out = append(out, p)
		}
	}
	return out
}
