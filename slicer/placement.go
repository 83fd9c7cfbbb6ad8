package slicer

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// asked is the slice r asks of a GPU with usable bytes: Fraction of its
// memory and of its compute, and at least Memory bytes (a request for
// memory alone gets the same part of compute). ok is false when the GPU
// is too small for it.
func (r *Request) asked(usable uint64) (sz Size, ok bool) {
	if usable == 0 {
		return Size{}, false
	}
	mem := max(alignDown(uint64(r.Fraction*float64(usable))), alignUp(r.Memory), MiB)
	if mem > usable {
		return Size{}, false
	}
	share := r.Fraction
	if share == 0 {
		share = float64(mem) / float64(usable)
	}
	return Size{Memory: mem, Share: math.Min(share, 1)}, true
}

// exact reports whether a profile slice of size slot serves ask as it
// is: at least as big, and no bigger than the MiB rounding of a profile.
func exact(slot, ask Size, usable uint64) bool {
	return slot.covers(ask) && fraction(slot, usable) <= fraction(ask, usable)+fitTolerance
}

// option is one way to serve a request on one GPU.
type option struct {
	gpu  int  // position in Layout.GPUs
	home int  // the slice the tenant takes; -1: a new slice is carved
	size Size // what the tenant gets
	// evict are free slices emptied to make room; they wait, as pending
	// creations, until the room is free again.
	evict []int
	moved uint64 // their memory
	free  Size   // capacity no tenant holds on the GPU, before
}

// unheld is the capacity of g that no tenant holds.
func unheld(g *GPULayout) Size { return left(g, (*Slice).Held) }

// room is the capacity of g that no slice has.
func room(g *GPULayout) Size { return left(g, func(*Slice) bool { return true }) }

// left is the capacity of g less the slices that count.
func left(g *GPULayout, counts func(*Slice) bool) Size {
	var mem uint64
	share := 0.0
	for i := range g.Slices {
		if s := &g.Slices[i]; counts(s) {
			mem += s.Memory
			share += s.Share
		}
	}
	r := Size{Share: math.Max(0, 1-share)}
	if g.Usable > mem {
		r.Memory = g.Usable - mem
	}
	return r
}

// optionOn finds how req is best served on GPU gi: a free profile slice
// of its size, else a slice carved from capacity no tenant holds.
func (s *Slicer) optionOn(gi int, req *Request) (option, bool) {
	g := &s.layout.GPUs[gi]
	o := option{gpu: gi, home: -1, free: unheld(g)}
	if req.AnySlice {
		for i := range g.Slices {
			sl := &g.Slices[i]
			if sl.free() && (o.home < 0 || fraction(sl.Size, g.Usable) < fraction(o.size, g.Usable)) {
				o.home, o.size = i, sl.Size
			}
		}
		return o, o.home >= 0
	}
	ask, ok := req.asked(g.Usable)
	if !ok || !o.free.covers(ask) {
		return o, false
	}
	// A profile slice of the asked size, the one with the most room
	// already (a free one needs none).
	for i := range g.Slices {
		sl := &g.Slices[i]
		if !sl.Held() && !sl.Orphan && exact(sl.Target, ask, g.Usable) && (o.home < 0 || sl.Memory > g.Slices[o.home].Memory) {
			o.home = i
		}
	}
	for _, home := range []int{o.home, -1} {
		final, cur := ask, Size{}
		if home >= 0 {
			final, cur = g.Slices[home].Target, g.Slices[home].Size
		}
		r := room(g)
		need := Size{Share: math.Max(0, final.Share-cur.Share-r.Share)}
		if final.Memory > cur.Memory+r.Memory {
			need.Memory = final.Memory - cur.Memory - r.Memory
		}
		if evict, ok := displace(g, home, need); ok {
			o.home, o.size, o.evict = home, final, evict
			for _, i := range evict {
				o.moved += g.Slices[i].Memory
			}
			return o, true
		}
		if home < 0 {
			break
		}
	}
	return o, false
}

// maxCombos bounds the search for the free slices to empty.
const maxCombos = 4096

// displace picks free slices of g (not skip) to empty so that need fits:
// those that leave the least room unused, then the fewest, then the
// smallest. ok is false when all of them are not enough.
func displace(g *GPULayout, skip int, need Size) (_ []int, ok bool) {
	if need.Memory == 0 && need.Share <= eps {
		return nil, true
	}
	// Free slices by size, smallest first.
	type class struct {
		size Size
		idx  []int
	}
	var classes []*class
	for i, sl := range g.Slices {
		if i == skip || sl.Held() || sl.Memory == 0 && sl.Share == 0 {
			continue
		}
		k := slices.IndexFunc(classes, func(c *class) bool { return c.size == sl.Size })
		if k < 0 {
			classes = append(classes, &class{size: sl.Size})
			k = len(classes) - 1
		}
		classes[k].idx = append(classes[k].idx, i)
	}
	sort.Slice(classes, func(a, b int) bool {
		x, y := classes[a].size, classes[b].size
		return x.Memory < y.Memory || x.Memory == y.Memory && x.Share < y.Share
	})
	type pick struct {
		counts []int
		waste  float64
		n      int
	}
	var best *pick
	consider := func(counts []int) {
		var got Size
		n := 0
		for c, k := range counts {
			got.Memory += uint64(k) * classes[c].size.Memory
			got.Share += float64(k) * classes[c].size.Share
			n += k
		}
		if !got.covers(need) {
			return
		}
		waste := float64(got.Memory-need.Memory)/float64(max(g.Usable, 1)) + got.Share - need.Share
		// Waste within a profile's MiB rounding counts as none.
		if best == nil || waste < best.waste-fitTolerance || waste < best.waste+fitTolerance && n < best.n {
			best = &pick{counts: slices.Clone(counts), waste: waste, n: n}
		}
	}
	combos := 1
	for _, c := range classes {
		combos *= len(c.idx) + 1
		if combos > maxCombos {
			break
		}
	}
	counts := make([]int, len(classes))
	if combos <= maxCombos {
		var walk func(c int)
		walk = func(c int) {
			if c == len(classes) {
				consider(counts)
				return
			}
			for k := 0; k <= len(classes[c].idx); k++ {
				counts[c] = k
				walk(c + 1)
			}
			counts[c] = 0
		}
		walk(0)
	} else {
		// Too many to try: the smallest first until they are enough.
		for c := range classes {
			for range classes[c].idx {
				counts[c]++
				if consider(counts); best != nil {
					break
				}
			}
			if best != nil {
				break
			}
		}
	}
	if best == nil {
		return nil, false
	}
	var out []int
	for c, k := range best.counts {
		idx := classes[c].idx
		out = append(out, idx[len(idx)-k:]...) // the newest of a size go first
	}
	return out, true
}

// place picks how each of N distinct matching GPUs serves req: GPUs
// where the least of the profile's free slices must be emptied first,
// then a profile slice before a carved one, then the smallest slice,
// then small GPUs (keeping big ones for big requests), then the GPU with
// the least unheld capacity (keeping others whole), then by index.
func (s *Slicer) place(req Request) ([]option, error) {
	var opts []option
	var matching []int
	possible := 0
	for gi := range s.layout.GPUs {
		g := &s.layout.GPUs[gi]
		if req.Model != "" && !strings.Contains(strings.ToLower(g.GPU.Model), strings.ToLower(req.Model)) {
			continue
		}
		if g.GPU.Memory < req.MinMemory || len(req.GPUs) > 0 && !slices.Contains(req.GPUs, g.GPU.Index) {
			continue
		}
		matching = append(matching, gi)
		if _, ok := req.asked(g.Usable); ok || req.AnySlice {
			possible++
		}
		if o, ok := s.optionOn(gi, &req); ok {
			opts = append(opts, o)
		}
	}
	if possible < req.N || len(opts) < req.N {
		return nil, s.refusal(req, matching, possible, len(opts))
	}
	sort.SliceStable(opts, func(a, b int) bool {
		x, y := opts[a], opts[b]
		gx, gy := &s.layout.GPUs[x.gpu], &s.layout.GPUs[y.gpu]
		switch {
		case x.moved != y.moved:
			return x.moved < y.moved
		case (x.home >= 0) != (y.home >= 0):
			return x.home >= 0
		}
		if fx, fy := fraction(x.size, gx.Usable), fraction(y.size, gy.Usable); fx != fy {
			return fx < fy
		}
		if x.size.Memory != y.size.Memory {
			return x.size.Memory < y.size.Memory
		}
		if fx, fy := fraction(x.free, gx.Usable), fraction(y.free, gy.Usable); fx != fy {
			return fx < fy
		}
		return gx.GPU.Index < gy.GPU.Index
	})
	return opts[:req.N], nil
}

// take carries out o for lease id of tenant and returns the slice.
func (s *Slicer) take(o option, tenant string, id LeaseID) SliceID {
	g := &s.layout.GPUs[o.gpu]
	for _, i := range o.evict {
		g.Slices[i].Size = Size{}
	}
	if o.home < 0 {
		s.layout.Seq++
		g.Slices = append(g.Slices, Slice{ID: SliceID(fmt.Sprintf("g%d.s%d", g.GPU.Index, s.layout.Seq)), GPU: g.GPU.Index,
			Size: o.size, Target: o.size, Orphan: true})
		o.home = len(g.Slices) - 1
	}
	sl := &g.Slices[o.home]
	sl.Size, sl.Grant, sl.Tenant, sl.Lease, sl.Used = o.size, o.size, tenant, id, 0
	return sl.ID
}

// Refusal explains a request that could not be placed: the kind
// (ErrNoCapacity or ErrUnsatisfiable, see Unwrap), what was asked, the
// room on each GPU that matched, and what would fit. Error is written
// for the tenant that asked: what other tenants hold is summed, never
// named. Detail names them, for the operator.
type Refusal struct {
	Kind   error
	Tenant string
	// Asked is the request in words ("2 slices of 50% of a GPU").
	Asked string
	// Why is the shortfall ("1 of the 2 GPUs needed has room").
	Why  string
	GPUs []Room
	// Fit is the most each slice could be now, as a part of a GPU
	// (Bytes set: of memory), on enough GPUs; 0 if there is none.
	Fit      float64
	FitBytes uint64
}

// Room is one GPU's capacity when a request was refused.
type Room struct {
	GPU    int
	Usable uint64
	// Free is the capacity no tenant holds: what a slice may be carved
	// from.
	Free Size
	// Slices are the sizes of its free profile slices.
	Slices []Size
	// Held is what each tenant holds there, as parts of the GPU.
	Held map[string]float64
}

func (r *Refusal) Unwrap() error { return r.Kind }

// Error is the refusal as the tenant that asked may read it.
func (r *Refusal) Error() string { return r.text(false) }

// Detail is the refusal for the operator: it names the other tenants.
func (r *Refusal) Detail() string { return r.text(true) }

func (r *Refusal) text(admin bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %s asked for; %s", r.Kind, r.Asked, r.Why)
	for _, g := range r.GPUs {
		fmt.Fprintf(&b, "; gpu %d: %s free (%s, %s of compute)", g.GPU, pctDown(fraction(g.Free, g.Usable)), fmtBytes(g.Free.Memory), pctDown(g.Free.Share))
		if len(g.Slices) > 0 {
			sizes := make([]string, len(g.Slices))
			for i, sz := range g.Slices {
				sizes[i] = pctDown(fraction(sz, g.Usable))
			}
			fmt.Fprintf(&b, ", free slices %s", strings.Join(sizes, " "))
		}
		if held := r.held(g, admin); held != "" {
			fmt.Fprintf(&b, ", %s", held)
		}
	}
	switch {
	case r.FitBytes > 0:
		fmt.Fprintf(&b, "; ask for at most %s per slice", fmtBytes(r.FitBytes))
	case r.Fit > 0:
		fmt.Fprintf(&b, "; ask for at most %s of a GPU per slice", pctDown(r.Fit))
	}
	if r.Kind == ErrNoCapacity {
		b.WriteString(", or wait until slices are released")
	}
	return b.String()
}

// held says who holds a GPU: by name for the operator, else the asking
// tenant's part and the others' sum.
func (r *Refusal) held(g Room, admin bool) string {
	names := make([]string, 0, len(g.Held))
	for t := range g.Held {
		names = append(names, t)
	}
	sort.Strings(names)
	var parts []string
	others := 0.0
	for _, t := range names {
		switch {
		case admin:
			parts = append(parts, fmt.Sprintf("%s holds %s", t, pctDown(g.Held[t])))
		case t == r.Tenant:
			parts = append(parts, fmt.Sprintf("you hold %s", pctDown(g.Held[t])))
		default:
			others += g.Held[t]
		}
	}
	if others > 0 {
		parts = append(parts, fmt.Sprintf("other tenants hold %s", pctDown(others)))
	}
	return strings.Join(parts, ", ")
}

// refusal explains why req found options on only some of the GPUs that
// match it, possible of which could ever serve it.
func (s *Slicer) refusal(req Request, matching []int, possible, served int) *Refusal {
	r := &Refusal{Kind: ErrNoCapacity, Tenant: req.Tenant, Asked: req.words()}
	var fits []float64
	var fitBytes []uint64
	for _, gi := range matching {
		g := &s.layout.GPUs[gi]
		room := Room{GPU: g.GPU.Index, Usable: g.Usable, Free: unheld(g), Held: map[string]float64{}}
		for _, sl := range g.Slices {
			if sl.free() {
				room.Slices = append(room.Slices, sl.Size)
			}
			if sl.Held() {
				room.Held[sl.Tenant] += fraction(sl.Size, g.Usable)
			}
		}
		r.GPUs = append(r.GPUs, room)
		fits = append(fits, math.Min(float64(room.Free.Memory)/float64(max(g.Usable, 1)), room.Free.Share))
		fitBytes = append(fitBytes, room.Free.Memory)
	}
	nth := func(n int) (float64, uint64) {
		if n > len(fits) || n < 1 {
			return 0, 0
		}
		f, b := slices.Clone(fits), slices.Clone(fitBytes)
		sort.Sort(sort.Reverse(sort.Float64Slice(f)))
		slices.Sort(b)
		slices.Reverse(b)
		return f[n-1], alignDown(b[n-1])
	}
	switch {
	case len(matching) < req.N:
		r.Kind = ErrUnsatisfiable
		r.Why = fmt.Sprintf("%d GPUs on this node match", len(matching))
	case possible < req.N:
		r.Kind = ErrUnsatisfiable
		r.Why = fmt.Sprintf("%d of the %d GPUs needed are big enough", possible, req.N)
		r.FitBytes = 0
		var usable []uint64
		for _, gi := range matching {
			usable = append(usable, s.layout.GPUs[gi].Usable)
		}
		slices.Sort(usable)
		r.FitBytes = usable[len(usable)-req.N]
		return r
	case req.AnySlice:
		r.Why = fmt.Sprintf("%d of the %d GPUs needed have a free slice", served, req.N)
	default:
		r.Why = fmt.Sprintf("%d of the %d GPUs needed have room", served, req.N)
	}
	if r.Kind == ErrNoCapacity && !req.AnySlice {
		if f, b := nth(req.N); req.Memory > 0 && req.Fraction == 0 {
			r.FitBytes = b
		} else if f >= 1e-3 {
			r.Fit = f
		}
	}
	return r
}

// words is the request in a refusal.
func (r *Request) words() string {
	n := fmt.Sprintf("%d slices", r.N)
	if r.N == 1 {
		n = "1 slice"
	}
	switch {
	case r.AnySlice:
		return n + " of any size"
	case r.Memory > 0 && r.Fraction > 0:
		return fmt.Sprintf("%s of %s and %s of a GPU", n, fmtBytes(r.Memory), pct(r.Fraction))
	case r.Memory > 0:
		return fmt.Sprintf("%s of %s", n, fmtBytes(r.Memory))
	}
	return fmt.Sprintf("%s of %s of a GPU", n, pct(r.Fraction))
}

// pctDown is f as a percentage, rounded down to a tenth of a percent.
func pctDown(f float64) string { return pct(math.Floor(f*1000+1e-6) / 1000) }
