package pool

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Node is one member's entry in the node inventory.
type Node struct {
	Name string `json:"name"`
	QUIC string `json:"quic,omitempty"` // where tenants reach it
	// Fingerprint is its QUIC certificate's, which tenants pin.
	Fingerprint string    `json:"fingerprint,omitempty"`
	HTTP        string    `json:"http,omitempty"` // its operator API
	Profile     string    `json:"profile,omitempty"`
	Site        string    `json:"site,omitempty"` // its site (ingest.site), "" none
	GPUs        []GPU     `json:"gpus"`
	Updated     time.Time `json:"updated"`
}

// GPU is one GPU of a node and its layout.
type GPU struct {
	Index  int    `json:"index"`
	Name   string `json:"name"`
	Memory uint64 `json:"memory"`
	// Usable is the memory slices may share (Memory less the slicer's
	// reserve): what a request by memory is a part of. 0: not published,
	// Memory is used.
	Usable uint64  `json:"usable,omitempty"`
	Slices []Slice `json:"slices,omitempty"`
}

// Slice is one slice of a GPU's layout.
type Slice struct {
	ID     string  `json:"id"`
	Share  float64 `json:"share"`
	Memory uint64  `json:"memory"`
	Tenant string  `json:"tenant,omitempty"` // empty: free
}

// Lease is one lease in the ledger: a tenant's slices on GPUs of one node.
// Charge is the GPUs it counts against the tenant's limit, spread evenly
// over its GPUs.
type Lease struct {
	ID      string    `json:"id"`
	Tenant  string    `json:"tenant"`
	Node    string    `json:"node"`
	GPUs    []int     `json:"gpus"`
	Charge  float64   `json:"charge"`
	Granted time.Time `json:"granted"`
	// Expires is set on a reservation made by Place for the owning node:
	// it is given back then unless taken up.
	Expires time.Time `json:"expires,omitzero"`
	// Memory is, on a reservation by memory, the bytes each slice asked
	// for: the owning node grants at least that much.
	Memory uint64 `json:"memory,omitempty"`
}

// perGPU is the part of one GPU the lease holds on each of its GPUs.
func (l Lease) perGPU() float64 { return l.Charge / float64(len(l.GPUs)) }

// Ledger is leases of the pool: those of one member, as its lease bucket
// keeps them (one document, so that one compare-and-set checks the room
// of each of its GPUs), or every member's together, as placement and the
// tenant's limit read them.
type Ledger struct {
	Leases []Lease `json:"leases"`
}

// Request asks the pool for Count slices on Count distinct GPUs of one
// node, each of Fraction of a GPU and at least Memory bytes (at least
// one of the two), on GPUs whose model contains Model (case-insensitive;
// "": any) with at least MinMemory bytes, as a node's slicer places them.
type Request struct {
	Tenant    string
	Count     int
	Fraction  float64
	Memory    uint64
	MinMemory uint64
	Model     string
	// Prefer names a member tried before the others (the one a tenant
	// reached, so that it need not go elsewhere); "": none.
	Prefer string
}

// epsilon absorbs rounding when shares are summed.
const epsilon = 1e-9

// ErrNoCapacity: no node of the pool has the room a request asks for.
var ErrNoCapacity = errors.New("no capacity in the pool")

// ErrLimit: the tenant would hold more than its limit across the pool.
var ErrLimit = errors.New("over the tenant's limit across the pool")

// used is the part of GPU gpu of node the ledger holds.
func (l *Ledger) used(node string, gpu int) float64 {
	var u float64
	for _, x := range l.Leases {
		if x.Node == node && slices.Contains(x.GPUs, gpu) {
			u += x.perGPU()
		}
	}
	return u
}

// charge is what tenant holds across the pool.
func (l *Ledger) charge(tenant string) float64 {
	var c float64
	for _, x := range l.Leases {
		if x.Tenant == tenant {
			c += x.Charge
		}
	}
	return c
}

// Find returns the lease called id on node ("": on any node). A lease is
// named by its node and ID together: each node numbers its own.
func (l *Ledger) Find(node, id string) (Lease, bool) {
	for _, x := range l.Leases {
		if x.ID == id && (node == "" || x.Node == node) {
			return x, true
		}
	}
	return Lease{}, false
}

// checkLimit refuses x when its tenant would hold more than limit GPUs
// across the pool (0: no limit).
func (l *Ledger) checkLimit(x Lease, limit float64) error {
	if limit <= 0 {
		return nil
	}
	if held := l.charge(x.Tenant); held+x.Charge > limit+epsilon {
		return fmt.Errorf("%w: tenant %s holds %.2f GPU across the pool, asks for %.2f more, limit %.2f", ErrLimit, x.Tenant, held, x.Charge, limit)
	}
	return nil
}

// Admit adds x, a lease a node granted on its own GPUs, when every one of
// its GPUs has room left in the ledger and the tenant stays within limit.
func (l *Ledger) Admit(x Lease, limit float64) error {
	if len(x.GPUs) == 0 || x.Charge <= 0 {
		return fmt.Errorf("lease %s: no GPUs or no charge", x.ID)
	}
	if _, ok := l.Find(x.Node, x.ID); ok {
		return fmt.Errorf("lease %s of %s is already in the ledger", x.ID, x.Node)
	}
	if err := l.checkLimit(x, limit); err != nil {
		return err
	}
	for _, g := range x.GPUs {
		if u := l.used(x.Node, g); u+x.perGPU() > 1+epsilon {
			return fmt.Errorf("%w: GPU %d of %s has %.2f left in the ledger, lease %s needs %.2f", ErrNoCapacity, g, x.Node, 1-u, x.ID, x.perGPU())
		}
	}
	l.Leases = append(l.Leases, x)
	return nil
}

// mib is the slicer's unit of slice memory.
const mib = 1 << 20

// need is the part of g one slice of r takes, as g's slicer would cut it:
// r.Fraction, or more when r.Memory is more of g's usable memory (rounded
// up to a MiB). ok is false when g is not of r.Model, has less than
// r.MinMemory, or is too small for r.Memory.
func (r Request) need(g GPU) (f float64, ok bool) {
	if r.Model != "" && !strings.Contains(strings.ToLower(g.Name), strings.ToLower(r.Model)) || g.Memory < r.MinMemory {
		return 0, false
	}
	f = r.Fraction
	if r.Memory > 0 {
		usable := g.Usable
		if usable == 0 {
			usable = g.Memory
		}
		m := max((r.Memory+mib-1)&^(mib-1), mib)
		if usable == 0 || m > usable {
			return 0, false
		}
		f = max(f, float64(m)/float64(usable))
	}
	return f, f > 0 && f <= 1+epsilon
}

// String says what r asks for, as refusals name it.
func (r Request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ×", r.Count)
	if r.Fraction > 0 {
		fmt.Fprintf(&b, " %.2f of a GPU", r.Fraction)
	}
	if r.Memory > 0 {
		if r.Fraction > 0 {
			b.WriteString(" and")
		}
		fmt.Fprintf(&b, " %d MiB", (r.Memory+mib-1)/mib)
	}
	if r.Model != "" {
		fmt.Fprintf(&b, " on a %s", r.Model)
	}
	if r.MinMemory > 0 {
		fmt.Fprintf(&b, " with at least %d MiB", r.MinMemory/mib)
	}
	return b.String()
}

// Place picks, for r, r.Prefer if it fits, else the first node by name
// among nodes (live members only), with r.Count distinct GPUs that match
// r and each have what r needs of it free, and adds a reservation there
// that expires at expires. The GPUs picked are the fullest that fit, so
// that whole GPUs stay free for larger requests; the reservation charges
// each the most any of them needs.
func (l *Ledger) Place(r Request, nodes []Node, id string, now, expires time.Time, limit float64) (Lease, error) {
	if r.Count < 1 || r.Fraction < 0 || r.Fraction > 1 || r.Fraction == 0 && r.Memory == 0 {
		return Lease{}, fmt.Errorf("want at least one slice of more than 0, at most 1 GPU, or of some memory (asked for %d × %g)", r.Count, r.Fraction)
	}
	x := Lease{ID: id, Tenant: r.Tenant, Granted: now, Expires: expires, Memory: r.Memory}
	// The tenant's limit is checked on the least the request can cost,
	// then on what it costs where it is placed.
	least := r.Fraction
	if r.Memory > 0 {
		least = 0
		for _, n := range nodes {
			for _, g := range n.GPUs {
				if f, ok := r.need(g); ok && (least == 0 || f < least) {
					least = f
				}
			}
		}
	}
	if err := l.checkLimit(Lease{Tenant: r.Tenant, Charge: float64(r.Count) * least}, limit); err != nil {
		return Lease{}, err
	}
	nodes = slices.Clone(nodes)
	sort.Slice(nodes, func(i, j int) bool {
		if (nodes[i].Name == r.Prefer) != (nodes[j].Name == r.Prefer) {
			return nodes[i].Name == r.Prefer
		}
		return nodes[i].Name < nodes[j].Name
	})
	var free []string
	for _, n := range nodes {
		type room struct {
			gpu        int
			left, need float64
		}
		var fit []room
		best, matching := 0.0, false
		for _, g := range n.GPUs {
			need, ok := r.need(g)
			if !ok {
				continue
			}
			matching = true
			left := 1 - l.used(n.Name, g.Index)
			best = max(best, left)
			if left+epsilon >= need {
				fit = append(fit, room{g.Index, left, need})
			}
		}
		if !matching {
			free = append(free, n.Name+" no GPU that fits")
			continue
		}
		free = append(free, fmt.Sprintf("%s %.2f", n.Name, best))
		if len(fit) < r.Count {
			continue
		}
		sort.SliceStable(fit, func(i, j int) bool { return fit[i].left < fit[j].left })
		per := 0.0
		for _, f := range fit[:r.Count] {
			per = max(per, f.need)
		}
		if fit[0].left+epsilon < per { // GPUs of different sizes: the fullest lacks the most any needs
			continue
		}
		x.Node = n.Name
		for _, f := range fit[:r.Count] {
			x.GPUs = append(x.GPUs, f.gpu)
		}
		x.Charge = float64(r.Count) * per
		if l.checkLimit(x, limit) != nil {
			// The room here costs more than the tenant's limit leaves;
			// on larger GPUs it costs less.
			free[len(free)-1] += " (over the tenant's limit there)"
			x.Node, x.GPUs = "", nil
			continue
		}
		sort.Ints(x.GPUs)
		l.Leases = append(l.Leases, x)
		return x, nil
	}
	return Lease{}, fmt.Errorf("%w: %s on one node; the most free on one GPU of each live node: %s", ErrNoCapacity, r, strings.Join(free, ", "))
}

// ErrNoReservation: the reservation a tenant brought is not in the
// ledger (it expired, or was never made for this node and tenant).
var ErrNoReservation = errors.New("no such reservation")

// Reservation returns the reservation id that Place made on node for
// tenant, unexpired at now.
func (l *Ledger) Reservation(node, tenant, id string, now time.Time) (Lease, error) {
	x, ok := l.Find(node, id)
	if !ok || x.Expires.IsZero() || x.Tenant != tenant || now.After(x.Expires) {
		return Lease{}, fmt.Errorf("%w: %s for tenant %s on %s (reservations expire unless taken up in time)", ErrNoReservation, id, tenant, node)
	}
	return x, nil
}

// TakeUp replaces reservation id with x, the lease its node granted for
// it: the same tenant, on the reservation's GPUs, charged no more than it.
// The room the reservation held is x's, whatever else the ledger holds.
func (l *Ledger) TakeUp(id string, x Lease, now time.Time) error {
	r, err := l.Reservation(x.Node, x.Tenant, id, now)
	if err != nil {
		return err
	}
	if !slices.Equal(r.GPUs, x.GPUs) || x.Charge > r.Charge+epsilon {
		return fmt.Errorf("lease %s (GPUs %v, %.2f GPU) does not match reservation %s (GPUs %v, %.2f GPU)", x.ID, x.GPUs, x.Charge, id, r.GPUs, r.Charge)
	}
	if _, ok := l.Find(x.Node, x.ID); ok {
		return fmt.Errorf("lease %s of %s is already in the ledger", x.ID, x.Node)
	}
	l.Remove(func(y Lease) bool { return y.Node == r.Node && y.ID == id })
	l.Leases = append(l.Leases, x)
	return nil
}

// Remove drops the leases keep says no; it reports whether any went.
func (l *Ledger) Remove(drop func(Lease) bool) bool {
	n := len(l.Leases)
	l.Leases = slices.DeleteFunc(l.Leases, drop)
	return len(l.Leases) != n
}
