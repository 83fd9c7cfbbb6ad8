package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/auth"
	"github.com/kerf-edge/kerf/internal/atomicfile"
	"github.com/kerf-edge/kerf/pool"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/slicer"
	"github.com/kerf-edge/kerf/transport"
)

// newPool is this node's membership of its pool, nil outside one. The
// slicer's per-tenant GPU limit counts across the pool.
func newPool(cfg Config, log *slog.Logger) *pool.Pool {
	if !cfg.Pool.Enabled() {
		return nil
	}
	return pool.New(pool.Options{Config: cfg.Pool, Node: cfg.PoolNode(), Limit: cfg.Slicer.MaxGPUsPerTenant,
		JoinedPath: cfg.PoolJoinedPath(), Log: log})
}

// startPool joins the pool through the embedded broker.
func (a *Appliance) startPool(b *Broker) error {
	k := b.KerfdLogin()
	local := poolLocal{n: a.node, quic: a.published.QUIC, fingerprint: a.fp.String(), http: a.published.HTTP, site: a.cfg.Ingest.Site}
	return a.pool.Start(b.srv, pool.Login{User: k.Name, Password: k.Password}, pool.Login{User: b.system.Name, Password: b.system.Password},
		local, func(peer string) error {
			u, err := a.cfg.Pool.RouteURL(peer)
			if err != nil {
				return err
			}
			return b.addRoute(u)
		})
}

// publishedAddrs is where a member of a pool is reached, as it publishes
// it in its inventory entry (bundles and redirects name it): its QUIC
// listener's address, and its operator listener's ("" without one).
type publishedAddrs struct{ QUIC, HTTP string }

// advertised is where this member is reached: pool.advertise, else its
// listeners' bound addresses, a wildcard host replaced by the pool's
// (pool.Config.Advertised).
func (a *Appliance) advertised() (publishedAddrs, error) {
	var out publishedAddrs
	var err error
	if out.QUIC, err = a.cfg.Pool.Advertised(pool.AdvertiseQUIC, a.QUICAddr()); err != nil {
		return publishedAddrs{}, err
	}
	if h := a.HTTPAddr(); h != "" {
		if out.HTTP, err = a.cfg.Pool.Advertised(pool.AdvertiseHTTP, h); err != nil {
			return publishedAddrs{}, err
		}
	}
	return out, nil
}

// admitToPool records a lease the slicer just granted in the pool's
// ledger; refused there, it is released and the tenant gets the pool's
// reason. Without a quorum, or without room in the ledger, the tenant's
// launcher retries (CUDA_ERROR_OUT_OF_MEMORY).
func (al *allocator) admitToPool(l slicer.Lease) error {
	if al.pool == nil || l.Charge <= 0 {
		return nil
	}
	err := al.pool.Admit(pool.Lease{ID: string(l.ID), Tenant: l.Tenant, GPUs: l.GPUs, Charge: l.Charge, Granted: l.Granted})
	if err == nil {
		return nil
	}
	if rerr := al.sl.Release(l.ID); rerr != nil {
		al.log.Warn("releasing a lease the pool refused", "lease", l.ID, "err", rerr)
	}
	return poolRefusal(err)
}

// placesInPool reports whether the pool places req: a lease (not a
// session's own slice), by fraction, memory or GPU model, asked by a
// client that follows a redirect, or a reservation to take up. A request
// from an older client is placed on this node.
func (al *allocator) placesInPool(req transport.AllocRequest) bool {
	if al.pool == nil {
		return false
	}
	return req.Reservation != "" || req.Redirects && req.Device < 0
}

// allocateInPool places req in the pool: on this node if it has room in
// the ledger, else on the first live member with room. On this node the
// slicer grants it and the lease is recorded in this member's leases, one
// compare-and-set. On another member it is reserved there, by
// compare-and-set on that member's leases, and the tenant is redirected
// there, to take it up with a claim (req.Reservation).
func (al *allocator) allocateInPool(t auth.Tenant, req transport.AllocRequest) (transport.Lease, error) {
	if req.Reservation == "" {
		fraction := req.Fraction
		if fraction == 0 && req.Memory == 0 {
			fraction = 1 // neither a fraction nor memory: a whole GPU
		}
		pr := pool.Request{Tenant: t.ID, Count: req.Count, Fraction: fraction, Memory: req.Memory,
			MinMemory: req.MinMemory, Model: req.Model, Prefer: al.pool.Self()}
		x, err := al.pool.Plan(pr)
		if err != nil {
			return transport.Lease{}, poolRefusal(err)
		}
		if x.Node == al.pool.Self() {
			return al.grantHere(t, pr)
		}
		r, err := al.pool.Place(pr)
		if err != nil {
			return transport.Lease{}, poolRefusal(err)
		}
		if r.Node != al.pool.Self() {
			m, _ := al.pool.Member(r.Node)
			if m.QUIC == "" {
				al.pool.Cancel(r.ID) // not this node's: it expires
				return transport.Lease{}, abi.Errorf(abi.ErrOutOfMemory, "the pool placed the slices on %s, whose address is not known here yet", r.Node)
			}
			al.log.Debug("placed on another member", "tenant", t.ID, "node", r.Node, "reservation", r.ID)
			return transport.Lease{}, &transport.Redirect{Node: r.Node, Addr: m.QUIC, Reservation: r.ID}
		}
		return al.takeUp(t, r)
	}
	r, err := al.pool.Reservation(t.ID, req.Reservation)
	if err != nil {
		return transport.Lease{}, poolRefusal(err)
	}
	return al.takeUp(t, r)
}

// grantHere grants r, which the pool would place on this node: the
// slicer picks the GPUs, as on a node alone (it knows which slices are
// still being given back by a lease's last workers; the pool does not),
// and the lease is admitted to the pool, which may still refuse it (a
// reservation by another member on those GPUs, or the tenant's limit)
// and then it is released.
func (al *allocator) grantHere(t auth.Tenant, r pool.Request) (transport.Lease, error) {
	l, err := al.sl.TryAllocate(slicer.Request{Tenant: t.ID, N: r.Count, Fraction: r.Fraction, Memory: r.Memory, MinMemory: r.MinMemory, Model: r.Model})
	if err != nil {
		return transport.Lease{}, allocError(err)
	}
	if err := al.admitToPool(l); err != nil {
		return transport.Lease{}, err
	}
	return al.transportLease(l), nil
}

// takeUp grants reservation r, made on this node for t: the slicer
// grants its GPUs, and the ledger swaps the reservation for the lease.
// Refused either way, the reservation is dropped and the tenant retries.
func (al *allocator) takeUp(t auth.Tenant, r pool.Lease) (transport.Lease, error) {
	id := r.ID
	l, err := al.sl.TryAllocate(slicer.Request{Tenant: t.ID, N: len(r.GPUs), Fraction: r.Charge / float64(len(r.GPUs)), Memory: r.Memory, GPUs: r.GPUs})
	if err != nil {
		al.pool.Cancel(id)
		if errors.Is(err, slicer.ErrNoCapacity) {
			return transport.Lease{}, abi.Errorf(abi.ErrOutOfMemory, "reservation %s: %v", id, err)
		}
		return transport.Lease{}, allocError(err)
	}
	gpus := slices.Clone(l.GPUs)
	slices.Sort(gpus)
	if err := al.pool.TakeUp(id, pool.Lease{ID: string(l.ID), Tenant: l.Tenant, GPUs: gpus, Charge: l.Charge, Granted: l.Granted}); err != nil {
		if rerr := al.sl.Release(l.ID); rerr != nil {
			al.log.Warn("releasing a lease the pool refused", "lease", l.ID, "err", rerr)
		}
		al.pool.Cancel(id)
		return transport.Lease{}, poolRefusal(err)
	}
	return al.transportLease(l), nil
}

// poolRefusal is the tenant's error for a placement the pool refused: a
// limit is final; no quorum, no room and a lost reservation are retried
// (CUDA_ERROR_OUT_OF_MEMORY).
func poolRefusal(err error) error {
	if errors.Is(err, pool.ErrLimit) {
		return abi.Errorf(abi.ErrNotPermitted, "%v", err)
	}
	return abi.Errorf(abi.ErrOutOfMemory, "%v", err)
}

// poolLocal is what the pool reads of this node.
type poolLocal struct {
	n                             *node
	quic, fingerprint, http, site string
}

func (p poolLocal) Inventory() pool.Node {
	st := p.n.sl.Status()
	holder := map[slicer.SliceID]string{}
	for _, l := range st.Leases {
		for _, s := range l.Slices {
			holder[s] = l.Tenant
		}
	}
	out := pool.Node{QUIC: p.quic, Fingerprint: p.fingerprint, HTTP: p.http, Profile: st.Profile, Site: p.site}
	for i, d := range p.n.devices {
		g := pool.GPU{Index: i, Name: d.Name, Memory: d.TotalMem}
		for _, lg := range st.Layout.GPUs {
			if lg.GPU.Index != i {
				continue
			}
			g.Usable = lg.Usable
			for _, s := range lg.Slices {
				g.Slices = append(g.Slices, pool.Slice{ID: string(s.ID), Share: s.Size.Share, Memory: s.Size.Memory, Tenant: holder[s.ID]})
			}
		}
		out.GPUs = append(out.GPUs, g)
	}
	return out
}

func (p poolLocal) Holds(lease string) bool {
	for _, l := range p.n.sl.Status().Leases {
		if string(l.ID) == lease {
			return true
		}
	}
	return false
}

// poolReach is b, how a tenant reaches this member, with the pool's
// members added (withMembers): every other member in the inventory that
// published its QUIC address and certificate fingerprint (poolOthers).
func poolReach(p *pool.Pool, b auth.Bundle) auth.Bundle {
	return withMembers(b, p.Self(), poolOthers(p))
}

// poolOthers are the members of the inventory other than this one, live
// or not, that published their QUIC address and certificate fingerprint,
// by name, at the address they published (where redirects send tenants
// too).
func poolOthers(p *pool.Pool) []auth.PoolMember {
	var out []auth.PoolMember
	for _, m := range p.Status().Members { // by name
		if m.Name == p.Self() || m.QUIC == "" || m.Fingerprint == "" {
			continue
		}
		out = append(out, auth.PoolMember{Node: m.Name, QUIC: m.QUIC, Fingerprint: m.Fingerprint})
	}
	return out
}

// withMembers is b, how a tenant reaches this member (named self), naming
// the pool: this member first, then others, but for any named self. A
// tenant given it reaches the pool while this member is down.
func withMembers(b auth.Bundle, self string, others []auth.PoolMember) auth.Bundle {
	b.Pool = []auth.PoolMember{{Node: self, QUIC: b.QUIC, Fingerprint: b.Fingerprint}}
	for _, m := range others {
		if m.Node != self {
			b.Pool = append(b.Pool, m)
		}
	}
	return b
}

// poolMembersInterval is how often a member compares the pool's other
// members with those it remembers (rememberPoolMembers).
const poolMembersInterval = 2 * time.Second

// rememberPoolMembers keeps the pool's other members (poolOthers) in
// PoolMembersPath until ctx ends, rewritten when they change, so that a
// bundle issued while kerfd does not serve names them (IssueOffline). A
// round that finds none (the inventory not read yet) keeps the file as
// it is.
func (a *Appliance) rememberPoolMembers(ctx context.Context) {
	t := time.NewTicker(poolMembersInterval)
	defer t.Stop()
	last, _ := readPoolMembers(a.cfg.PoolMembersPath())
	for {
		if m := poolOthers(a.pool); len(m) > 0 && !slices.Equal(m, last) {
			if err := writePoolMembers(a.cfg.PoolMembersPath(), m); err != nil {
				a.log.Warn("the pool's members not remembered for bundles issued offline", "file", a.cfg.PoolMembersPath(), "err", err)
			} else {
				last = m
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readPoolMembers reads the members rememberPoolMembers wrote; none when
// the file does not exist (the node never served in a pool).
func readPoolMembers(path string) ([]auth.PoolMember, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m []auth.PoolMember
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func writePoolMembers(path string, m []auth.PoolMember) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// poolAPI is the operator API's view of the pool.
type poolAPI struct{ p *pool.Pool }

var _ profiles.Pool = poolAPI{}

func (a poolAPI) Status() api.PoolStatus {
	st := a.p.Status()
	out := api.PoolStatus{Pool: st.Pool, Node: st.Node, Quorum: st.Quorum, Size: st.Size, Needed: st.Needed, Leader: st.Leader,
		Replicas: st.Replicas, Live: st.Live, Problem: st.Problem, Members: []api.PoolMember{}, Leases: []api.PoolLease{}}
	for _, m := range st.Members {
		am := api.PoolMember{Name: m.Name, Live: m.Live, Self: m.Self, Quic: m.QUIC, HTTP: m.HTTP, Profile: m.Profile, Site: m.Site,
			Updated: m.Updated, LastSeen: m.LastSeen, HeldGPUs: m.Held, Leases: m.Leases, GPUs: []api.PoolGPU{}}
		for _, g := range m.GPUs {
			ag := api.PoolGPU{Index: g.Index, Name: g.Name, MemoryBytes: g.Memory, Slices: []api.PoolSlice{}}
			for _, s := range g.Slices {
				ag.Slices = append(ag.Slices, api.PoolSlice{ID: s.ID, Share: s.Share, MemoryBytes: s.Memory, Tenant: s.Tenant})
			}
			am.GPUs = append(am.GPUs, ag)
		}
		out.Members = append(out.Members, am)
	}
	for _, l := range st.Leases {
		out.Leases = append(out.Leases, apiPoolLease(l))
	}
	return out
}

func apiPoolLease(l pool.Lease) api.PoolLease {
	return api.PoolLease{ID: l.ID, Tenant: l.Tenant, Node: l.Node, GPUs: l.GPUs, Charge: l.Charge, Granted: l.Granted, Expires: l.Expires}
}

func (a poolAPI) Join(address string) error { return poolAPIError(a.p.Join(address)) }

func (a poolAPI) Leave(node string) error { return poolAPIError(a.p.Leave(node)) }

func (a poolAPI) Place(r api.PoolPlacementRequest) (api.PoolLease, error) {
	l, err := a.p.Place(pool.Request{Tenant: r.Tenant, Count: r.Count, Fraction: r.Fraction, Memory: r.MemoryBytes,
		MinMemory: r.MinMemoryBytes, Model: r.Model})
	if err != nil {
		return api.PoolLease{}, poolAPIError(err)
	}
	return apiPoolLease(l), nil
}

// poolAPIError gives the pool's errors the API's meaning.
func poolAPIError(err error) error {
	var nq *pool.NoQuorumError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nq), errors.Is(err, pool.ErrNotReady), errors.Is(err, pool.ErrNoMetaLeader):
		return fmt.Errorf("%w: %w", profiles.ErrUnavailable, err)
	case errors.Is(err, pool.ErrLimit):
		return fmt.Errorf("%w: %w", profiles.ErrOverLimit, err)
	case errors.Is(err, pool.ErrNoCapacity), errors.Is(err, pool.ErrContended), errors.Is(err, pool.ErrLive), errors.Is(err, pool.ErrAlreadyPeer):
		return fmt.Errorf("%w: %w", profiles.ErrInUse, err)
	}
	return err
}
