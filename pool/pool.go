package pool

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kerf-edge/kerf/internal/atomicfile"
)

// NodesBucket is the node inventory, one key per member. Each member's
// leases have a bucket of their own (LeaseBucket); the operator's state
// has buckets of its own (state.go).
const NodesBucket = "kerf_pool_nodes"

// tick is how often a member publishes its inventory, refreshes what it
// knows of the others and tidies the ledger.
const tick = time.Second

// opTimeout bounds one operation on the buckets; without quorum they
// cannot complete.
const opTimeout = 5 * time.Second

// Local is what the pool asks of its own node.
type Local interface {
	// Inventory is the node's GPUs and layout now.
	Inventory() Node
	// Holds reports whether the node still holds a lease it granted.
	Holds(lease string) bool
}

// Login is a user on the embedded broker.
type Login struct{ User, Password string }

// Options configure a Pool.
type Options struct {
	Config Config
	Node   string
	// Limit is the GPUs one tenant may hold across the pool (0: none).
	Limit float64
	// JoinedPath keeps the peers joined at run time (Join).
	JoinedPath string
	Log        *slog.Logger
}

// Pool is this node's membership of the pool: the buckets, what it last
// read of them, and the majority rule.
type Pool struct {
	opts Options
	log  *slog.Logger

	srv      *server.Server
	local    Local
	addRoute func(peer string) error
	nc, sys  *nats.Conn
	js       jetstream.JetStream

	mu       sync.Mutex
	nodesKV  jetstream.KeyValue       // nil until the buckets exist
	nodes    map[string]Node          // the inventory as last read
	members  map[string]*memberLeases // each member's leases as last read or written
	released map[string]bool          // this member's leases released, not yet written
	release  chan struct{}            // signals released
	// ownWrites counts the writes of this member's leases, each of which
	// carries the releases made before it.
	ownWrites atomic.Uint64
	// releaseQuiet is the releaser's quiet period: the constant
	// releaseQuiet, another in tests.
	releaseQuiet time.Duration
	// doomed are reservations on this member whose write went
	// unanswered, by ID, until they expire: one that landed after all
	// is dropped by the next round of upkeep.
	doomed   map[string]time.Time
	lastSeen map[string]time.Time          // when each member was last live
	stateErr string                        // why the state could not be read, "" when it could
	left     map[string]bool               // members removed by Leave since start
	state    map[string]jetstream.KeyValue // the state buckets, by name; empty until they exist
	watch    map[string]Apply              // by state bucket
	applied  map[string]map[string]uint64  // by state bucket and key: the revision applied last
	rewatch  []chan struct{}               // one per watch of a state bucket: establish it again
	// noQuorum is set while a round of upkeep finds no quorum or no meta
	// leader: the watches are established again when both are back.
	noQuorum  bool
	following sync.WaitGroup // the watches of the state buckets
	// applyMu is held while a change of the state is applied, before mu.
	applyMu sync.Mutex

	cancel context.CancelFunc
	done   chan struct{}
}

// New is a pool not yet started: every placement is refused until Start.
func New(o Options) *Pool {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	return &Pool{opts: o, log: log.With("component", "pool"), nodes: map[string]Node{}, lastSeen: map[string]time.Time{}, left: map[string]bool{},
		applied: map[string]map[string]uint64{}, members: map[string]*memberLeases{}, released: map[string]bool{}, doomed: map[string]time.Time{}, release: make(chan struct{}, 1),
		releaseQuiet: releaseQuiet}
}

// Start joins the pool through srv, the broker's server (already
// configured by ClusterOptions): it connects as kerfd and as the system
// user, creates the buckets as soon as a quorum allows, and keeps this
// node's inventory and leases in them until Close. addRoute dials a peer
// joined at run time.
func (p *Pool) Start(srv *server.Server, kerfd, system Login, local Local, addRoute func(peer string) error) error {
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.UserInfo(kerfd.User, kerfd.Password), nats.Name("kerfd-pool"))
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	sys, err := nats.Connect("", nats.InProcessServer(srv), nats.UserInfo(system.User, system.Password), nats.Name("kerfd-pool-system"))
	if err != nil {
		nc.Close()
		return fmt.Errorf("pool: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		sys.Close()
		return fmt.Errorf("pool: %w", err)
	}
	p.srv, p.nc, p.sys, p.js, p.local, p.addRoute = srv, nc, sys, js, local, addRoute
	nc.SetReconnectHandler(func(*nats.Conn) { p.watchAgain() })
	nc.SetErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		if sub != nil { // a watch's consumer may be gone: establish them again
			p.log.Debug("pool subscription", "err", err)
			p.watchAgain()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	now := time.Now()
	p.mu.Lock()
	p.lastSeen[p.opts.Node] = now
	p.mu.Unlock()
	p.following.Add(1)
	go func() {
		defer p.following.Done()
		p.releaser(ctx)
	}()
	go p.run(ctx)
	return nil
}

// Close stops the pool's work on this node.
func (p *Pool) Close() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
	p.following.Wait()
	p.nc.Close()
	p.sys.Close()
}

func (p *Pool) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		p.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step is one round of upkeep. Without a quorum every write fails; what
// was last read stays.
func (p *Pool) step(ctx context.Context) {
	now := time.Now()
	live := p.liveMembers()
	p.mu.Lock()
	for _, n := range live {
		p.lastSeen[n] = now
		delete(p.left, n) // a member that left and joined again
	}
	ready := p.nodesKV != nil
	p.mu.Unlock()
	if !ready {
		if err := p.createBuckets(ctx); err != nil {
			p.setStateErr(fmt.Errorf("creating the pool's buckets: %w", err))
			return
		}
		p.log.Info("pool state ready", "buckets", append([]string{NodesBucket, LeaseBucket(p.opts.Node)}, stateBuckets...), "replicas", p.opts.Config.Replicas())
		p.followState(ctx)
	}
	p.noteQuorum()
	err := errors.Join(p.leadOwnBucket(ctx), p.publishInventory(ctx), p.readInventory(ctx), p.readAllLeases(ctx), p.tidyLedger(ctx, now))
	p.setStateErr(err)
}

// noteQuorum establishes the watches of the state again when a quorum,
// or JetStream's meta leader, comes back after a round without one: a
// watch may have lost its consumer meanwhile without saying so, and a
// consumer is made again only through the meta leader.
func (p *Pool) noteQuorum() {
	lost := p.Quorum() != nil || p.metaLeader() != nil
	p.mu.Lock()
	back := p.noQuorum && !lost
	p.noQuorum = lost
	p.mu.Unlock()
	if back {
		p.log.Info("quorum back: watching the pool's state anew")
		p.watchAgain()
	}
}

func (p *Pool) setStateErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := ""
	if err != nil {
		s = err.Error()
	}
	if s != p.stateErr && s != "" {
		p.log.Warn("pool state not reachable", "err", s)
	}
	p.stateErr = s
}

// createBuckets creates (or finds) the buckets, each with the pool's
// replicas, on file.
func (p *Pool) createBuckets(ctx context.Context) error {
	if err := p.metaLeader(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	all := append([]string{NodesBucket, LeaseBucket(p.opts.Node)}, stateBuckets...)
	kvs := make([]jetstream.KeyValue, len(all))
	for i, b := range all {
		var err error
		kvs[i], err = p.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b, History: 1,
			Replicas: p.opts.Config.Replicas(), Storage: jetstream.FileStorage})
		if err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
	}
	state := map[string]jetstream.KeyValue{}
	for i, b := range stateBuckets {
		state[b] = kvs[2+i]
	}
	m := p.member(p.opts.Node)
	p.mu.Lock()
	m.kv = kvs[1]
	p.mu.Unlock()
	if _, _, err := p.readLeases(ctx, p.opts.Node); err != nil {
		return err
	}
	p.mu.Lock()
	p.nodesKV, p.state = kvs[0], state
	p.mu.Unlock()
	return nil
}

// nodesBucket is the inventory's bucket, once the buckets exist.
func (p *Pool) nodesBucket() (jetstream.KeyValue, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nodesKV == nil {
		return nil, ErrNotReady
	}
	return p.nodesKV, nil
}

// publishInventory writes this node's entry when it changed, and at least
// every ten ticks so that its time stays recent.
func (p *Pool) publishInventory(ctx context.Context) error {
	kv, err := p.nodesBucket()
	if err != nil {
		return err
	}
	n := p.local.Inventory()
	n.Name = p.opts.Node
	p.mu.Lock()
	old, ok := p.nodes[n.Name]
	p.mu.Unlock()
	n.Updated = old.Updated
	if ok && reflect.DeepEqual(old, n) && time.Since(old.Updated) < 10*tick {
		return nil
	}
	n.Updated = time.Now().UTC()
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := kv.Put(ctx, n.Name, b); err != nil {
		return fmt.Errorf("publishing this node's inventory: %w", err)
	}
	p.mu.Lock()
	p.nodes[n.Name] = n
	p.mu.Unlock()
	return nil
}

// readInventory refreshes the inventory of every member.
func (p *Pool) readInventory(ctx context.Context) error {
	kv, err := p.nodesBucket()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("reading the inventory: %w", err)
	}
	nodes := map[string]Node{}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // deleted since listed
		}
		var n Node
		if err := json.Unmarshal(e.Value(), &n); err != nil {
			p.log.Warn("an inventory entry does not parse", "node", k, "err", err)
			continue
		}
		nodes[k] = n
	}
	p.mu.Lock()
	p.nodes = nodes
	for n := range p.members {
		if _, ok := nodes[n]; !ok && n != p.opts.Node {
			delete(p.members, n) // removed by Leave
		}
	}
	p.mu.Unlock()
	return nil
}

// ErrNotReady: this member has not yet created or found the pool's
// buckets (they need a quorum to be created).
var ErrNotReady = errors.New("the pool's state is not ready yet on this member (its buckets need a quorum to be created); try again shortly")

// errUnchanged: a change of the ledger found nothing to change.
var errUnchanged = errors.New("unchanged")

// tidyLedger drops, from this member's leases, those it no longer holds
// (released while they could not be written, or left by an earlier run)
// and expired reservations; and, from each other member's, every lease
// once the member has been out of the pool for longer than LeaseTimeout.
func (p *Pool) tidyLedger(ctx context.Context, now time.Time) error {
	p.mu.Lock()
	seen := maps(p.lastSeen)
	p.mu.Unlock()
	var errs []error
	for _, n := range p.memberNames() {
		leases, _, ok := p.kept(n)
		if !ok || len(leases) == 0 {
			continue
		}
		var drop func(Lease) bool
		if n == p.opts.Node {
			p.mu.Lock()
			doomed := map[string]bool{}
			for id, exp := range p.doomed {
				if now.After(exp) {
					delete(p.doomed, id)
				} else {
					doomed[id] = true
				}
			}
			// Releases made since the last write are the releaser's to
			// write, or the next placement's.
			pending := map[string]bool{}
			for id := range p.released {
				pending[id] = true
			}
			p.mu.Unlock()
			drop = func(x Lease) bool {
				if !x.Expires.IsZero() {
					return now.After(x.Expires) || doomed[x.ID]
				}
				return !pending[x.ID] && !p.local.Holds(x.ID)
			}
		} else {
			last, ok := seen[n]
			if !ok {
				// Not seen since this node started: give it the timeout
				// from now.
				p.mu.Lock()
				p.lastSeen[n] = now
				p.mu.Unlock()
				continue
			}
			if now.Sub(last) <= p.opts.Config.LeaseTimeout {
				continue
			}
			drop = func(Lease) bool { return true }
		}
		if !slices.ContainsFunc(leases, drop) {
			continue
		}
		var gone []string
		err := p.modifyOn(ctx, n, func(l *Ledger) error {
			gone = gone[:0]
			changed := l.Remove(func(x Lease) bool {
				d := x.Node == n && drop(x)
				if d {
					gone = append(gone, x.ID)
				}
				return d
			})
			if !changed {
				return errUnchanged
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		} else if len(gone) > 0 {
			p.log.Info("leases removed from the ledger", "node", n, "leases", gone)
		}
	}
	return errors.Join(errs...)
}

func maps(m map[string]time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// NoQuorumError refuses a placement while fewer than a majority of the
// pool's members are live.
type NoQuorumError struct {
	Live []string // the live members, this node among them
	Size int      // the members JetStream counts
}

func (e *NoQuorumError) Error() string {
	return fmt.Sprintf("the pool has no quorum: %d of %d members live (%s); new placements are refused until %d are, running sessions go on",
		len(e.Live), e.Size, strings.Join(e.Live, ", "), e.Size/2+1)
}

// liveMembers are this node and every member it has a route to, by name.
func (p *Pool) liveMembers() []string {
	live := []string{p.opts.Node}
	if rz, err := p.srv.Routez(nil); err == nil {
		for _, r := range rz.Routes {
			if r.RemoteName != "" && !slices.Contains(live, r.RemoteName) {
				live = append(live, r.RemoteName)
			}
		}
	}
	slices.Sort(live)
	return live
}

// meta is JetStream's view of the pool: how many members its meta group
// counts and who leads it ("" when nobody does).
func (p *Pool) meta() (size int, leader string) {
	size = p.opts.Config.Size()
	if jz, err := p.srv.Jsz(nil); err == nil && jz.Meta != nil {
		if jz.Meta.Size > 0 {
			size = jz.Meta.Size
		}
		leader = jz.Meta.Leader
	}
	return size, leader
}

// Quorum returns nil while a majority of the members are live, as this
// member's broker sees them (its cluster routes), else a *NoQuorumError.
// It does not wait for JetStream's meta leader: a placement writes one
// member's lease bucket by compare-and-set, and that bucket's own Raft
// group acknowledges the write only once a majority of its replicas have
// it, so no lease is granted twice whoever leads the meta group; while
// the meta group elects a leader anew (4 to 9 s after its leader's
// death), the members left go on placing. What needs the meta leader
// (creating and deleting buckets, Leave) asks for it (metaLeader).
func (p *Pool) Quorum() error {
	if p.srv == nil {
		return fmt.Errorf("%w: this member has not joined its pool yet", ErrNotReady)
	}
	live := p.liveMembers()
	size, _ := p.meta()
	if 2*len(live) <= size {
		return &NoQuorumError{Live: live, Size: size}
	}
	return nil
}

// ErrNoMetaLeader refuses what only JetStream's meta leader does
// (creating or deleting the pool's buckets, removing a member) while the
// meta group has none. Placements do not need it.
var ErrNoMetaLeader = errors.New("JetStream has no meta leader (electing one, which takes up to about 10 s after the last one's death); try again shortly")

// metaReady returns why a request for JetStream's meta leader cannot be
// answered now: no quorum, or no meta leader; nil when it can.
func (p *Pool) metaReady() error {
	if err := p.Quorum(); err != nil {
		return err
	}
	return p.metaLeader()
}

// metaLeader returns ErrNoMetaLeader while JetStream's meta group has no
// leader, as this member's broker sees it.
func (p *Pool) metaLeader() error {
	if _, leader := p.meta(); leader == "" {
		return ErrNoMetaLeader
	}
	return nil
}

// Admit records x, a lease this node granted on its own GPUs, in this
// member's leases: refused without quorum, when they have no room left on
// one of its GPUs (another member reserved it), or when its tenant would
// pass the limit across the pool (crossCheck). The node must not grant x
// unless Admit returns nil.
func (p *Pool) Admit(x Lease) error {
	if err := p.Quorum(); err != nil {
		return err
	}
	x.Node = p.opts.Node
	admit := func(l *Ledger) error {
		if y, ok := l.Find(x.Node, x.ID); ok && y.Granted.Equal(x.Granted) {
			return errUnchanged // a write that went unanswered did land
		}
		return l.Admit(x, p.opts.Limit)
	}
	err := p.modifyOn(context.Background(), x.Node, admit)
	if errors.Is(err, ErrLimit) && p.readAllLeases(context.Background()) == nil {
		// Over the limit by the other members' leases as last read:
		// refused only if they still say so.
		err = p.modifyOn(context.Background(), x.Node, admit)
	}
	if err != nil {
		return err
	}
	return p.crossCheck(x)
}

// releaseQuiet is how long this member's leases go unwritten before the
// releaser writes the releases made meanwhile. Every write of them carries
// the releases made before it (dropReleased), so that while placements
// come, releases ride with them and a placement does not wait behind a
// release's write of the same leases; the releaser writes what is left
// once they pause. A release not yet written only keeps its room taken
// in the other members' view a little longer, never the other way.
const releaseQuiet = 100 * time.Millisecond

// Release drops lease id of this node from its leases. The next write of
// this member's leases carries it; the releaser writes it when none comes
// within releaseQuiet; one that cannot be written now is written by the
// next round of upkeep.
func (p *Pool) Release(id string) {
	p.mu.Lock()
	p.released[id] = true
	p.mu.Unlock()
	select {
	case p.release <- struct{}{}:
	default: // one pending already
	}
}

// releaser writes the releases until ctx ends, once this member's leases
// have gone unwritten for releaseQuiet.
func (p *Pool) releaser(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.release:
		}
		for {
			wrote := p.ownWrites.Load()
			select {
			case <-ctx.Done():
				return
			case <-time.After(p.releaseQuiet):
			}
			if p.ownWrites.Load() == wrote {
				break
			}
		}
		p.mu.Lock()
		ids := p.released
		p.released = map[string]bool{}
		p.mu.Unlock()
		if len(ids) == 0 {
			continue // carried by the writes made meanwhile
		}
		err := p.modifyOn(ctx, p.opts.Node, func(l *Ledger) error {
			if !l.Remove(func(x Lease) bool { return ids[x.ID] && x.Node == p.opts.Node }) {
				return errUnchanged
			}
			return nil
		})
		if err != nil {
			p.log.Debug("lease releases not yet in the ledger", "leases", len(ids), "err", err)
		}
	}
}

// liveNodes are the inventory entries of the live members.
func (p *Pool) liveNodes() []Node {
	live := p.liveMembers()
	p.mu.Lock()
	defer p.mu.Unlock()
	var nodes []Node
	for _, n := range p.nodes {
		if slices.Contains(live, n.Name) {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// plan picks where r goes among nodes from every member's leases as last
// read, writing nothing. A refusal, for room or for the tenant's limit, is
// checked once more against the live members' leases read again.
func (p *Pool) plan(r Request, nodes []Node, id string, now time.Time) (Lease, error) {
	ttl := p.opts.Config.ReservationTTL
	l := p.ledgerNow("")
	p.dropReleased(&l)
	x, err := l.Place(r, nodes, id, now, now.Add(ttl), p.opts.Limit)
	if errors.Is(err, ErrNoCapacity) || errors.Is(err, ErrLimit) {
		if p.readAllLeases(context.Background()) == nil {
			l = p.ledgerNow("")
			p.dropReleased(&l)
			x, err = l.Place(r, nodes, id, now, now.Add(ttl), p.opts.Limit)
		}
	}
	return x, err
}

// Plan picks where r would be placed, from every member's leases as last
// read, and writes nothing: when it is this member, the node grants the
// slices itself and records the lease with Admit, one write; otherwise
// Place reserves them.
func (p *Pool) Plan(r Request) (Lease, error) {
	if err := p.Quorum(); err != nil {
		return Lease{}, err
	}
	if _, err := p.nodesBucket(); err != nil {
		return Lease{}, err
	}
	now := time.Now().UTC()
	return p.plan(r, p.liveNodes(), "", now)
}

// Place places r on the first live member with room and reserves it there
// for ReservationTTL, by compare-and-set on that member's leases: of two
// placements racing for the same room, one wins and the other is placed
// elsewhere or refused.
func (p *Pool) Place(r Request) (Lease, error) {
	if err := p.Quorum(); err != nil {
		return Lease{}, err
	}
	if _, err := p.nodesBucket(); err != nil {
		return Lease{}, err
	}
	nodes := p.liveNodes()
	id := "pool-" + strings.ToLower(rand.Text()[:16])
	for range len(nodes) + 1 {
		now := time.Now().UTC()
		x, err := p.plan(r, nodes, id, now)
		if err != nil {
			return Lease{}, err
		}
		i := slices.IndexFunc(nodes, func(n Node) bool { return n.Name == x.Node })
		var out Lease
		err = p.modifyOn(context.Background(), x.Node, func(l *Ledger) error {
			if y, ok := l.Find(x.Node, id); ok {
				out = y // a write that went unanswered did land
				return errUnchanged
			}
			y, err := l.Place(r, nodes[i:i+1], id, now, x.Expires, p.opts.Limit)
			out = y
			return err
		})
		if errors.Is(err, ErrNoCapacity) {
			// The member's leases changed since they were last read:
			// read them again, and place again.
			ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
			_, _, rerr := p.readLeases(ctx, x.Node)
			cancel()
			if rerr != nil {
				return Lease{}, err
			}
			continue
		}
		if err != nil {
			if x.Node == p.opts.Node && !errors.Is(err, ErrLimit) {
				p.mu.Lock()
				p.doomed[id] = x.Expires
				p.mu.Unlock()
			}
			return Lease{}, err
		}
		if err := p.crossCheck(out); err != nil {
			return Lease{}, err
		}
		return out, nil
	}
	return Lease{}, fmt.Errorf("%w: %s: the members' leases changed at every try", ErrNoCapacity, r)
}

// Member returns the inventory entry of member name as last read.
func (p *Pool) Member(name string) (Node, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.nodes[name]
	return n, ok
}

// Self is this member's name in the pool.
func (p *Pool) Self() string { return p.opts.Node }

// Reservation returns reservation id, made for tenant on this node. The
// member that placed it wrote it before redirecting the tenant, so one
// read that misses it (expired, or not made) is asked again within the
// operation's bound, for a leader of this member's leases elected since.
func (p *Pool) Reservation(tenant, id string) (Lease, error) {
	if _, err := p.nodesBucket(); err != nil {
		return Lease{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for {
		leases, _, err := p.readLeases(ctx, p.opts.Node)
		if err != nil {
			return Lease{}, err
		}
		l := Ledger{Leases: leases}
		x, err := l.Reservation(p.opts.Node, tenant, id, time.Now())
		if err == nil {
			return x, nil
		}
		select {
		case <-ctx.Done():
			return Lease{}, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TakeUp replaces reservation id, made on this node, with x, the lease
// this node granted for it, by compare-and-set. The node must not grant x
// unless TakeUp returns nil.
func (p *Pool) TakeUp(id string, x Lease) error {
	if err := p.Quorum(); err != nil {
		return err
	}
	x.Node = p.opts.Node
	return p.modifyOn(context.Background(), x.Node, func(l *Ledger) error {
		if y, ok := l.Find(x.Node, x.ID); ok && y.Granted.Equal(x.Granted) {
			if _, still := l.Find(x.Node, id); !still {
				return errUnchanged // a write that went unanswered did land
			}
		}
		return l.TakeUp(id, x, time.Now())
	})
}

// Cancel drops reservation id of this node, which its tenant will not
// take up, so that its room is free now rather than when it expires (as
// it does if the ledger cannot be written now).
func (p *Pool) Cancel(id string) { p.Release(id) }

// Join dials peer, a member's cluster listener, now and at every later
// start.
func (p *Pool) Join(peer string) error {
	if _, err := p.opts.Config.RouteURL(peer); err != nil {
		return err
	}
	joined := LoadJoined(p.opts.JoinedPath)
	if slices.Contains(joined, peer) || slices.Contains(p.opts.Config.Peers, peer) {
		return fmt.Errorf("%s: %w", peer, ErrAlreadyPeer)
	}
	if err := p.addRoute(peer); err != nil {
		return err
	}
	b, _ := json.Marshal(append(joined, peer))
	if err := atomicfile.Write(p.opts.JoinedPath, b, 0o600); err != nil {
		return fmt.Errorf("keeping the joined peer: %w", err)
	}
	p.log.Info("joined a peer", "peer", peer)
	return nil
}

// ErrAlreadyPeer refuses to join a peer twice.
var ErrAlreadyPeer = errors.New("already a peer of this node")

// LoadJoined reads the peers joined at run time.
func LoadJoined(path string) []string {
	var out []string
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &out)
	}
	return out
}

// untilAnswered retries op while the bucket's stream does not answer (for
// a moment after a quorum returns, until the stream has a leader again),
// until ctx ends.
func untilAnswered(ctx context.Context, op func() error) error {
	for {
		err := op()
		if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// removeServer asks JetStream's meta leader to forget node
// (askMetaLeader). A member it no longer knows is forgotten already: an
// earlier request, unanswered in time, may have landed.
func (p *Pool) removeServer(node string) error {
	// By peer ID, not by name: a meta leader that started while the member
	// was down never learnt its name, and would answer "not a member".
	req, _ := json.Marshal(server.JSApiMetaServerRemoveRequest{Peer: metaPeerID(node)})
	var refused error
	err := askMetaLeader(func(ctx context.Context) error {
		msg, err := p.sys.RequestWithContext(ctx, server.JSApiRemoveServer, req)
		if err != nil {
			return err
		}
		var resp server.JSApiMetaServerRemoveResponse
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			refused = fmt.Errorf("its answer: %w", err)
			return nil
		}
		switch {
		case resp.Error == nil, server.IsNatsErr(resp.Error, server.JSClusterServerNotMemberErr):
		case server.IsNatsErr(resp.Error, server.JSClusterServerMemberChangeInflightErr):
			return resp.Error // an earlier request of ours, still committing
		default:
			refused = errors.New(resp.Error.Description)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return refused
}

// metaPeerID is the ID under which JetStream's Raft groups know the
// server named name: the first eight characters of its SHA-256, each
// byte written as a base-62 digit.
func metaPeerID(name string) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(name))
	id := make([]byte, 8)
	for i := range id {
		id[i] = digits[int(sum[i])%len(digits)]
	}
	return string(id)
}

// askMetaLeader runs op, a request that only JetStream's meta leader
// answers, until it succeeds: a member's death may have the leader
// elected anew (Raft waits 4 to 9 s), so op is asked again, each try
// bounded to a second, for up to twice opTimeout.
func askMetaLeader(op func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	for {
		attempt, done := context.WithTimeout(ctx, time.Second)
		err := op(attempt)
		done()
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ErrLive refuses to remove a member that is still up.
var ErrLive = errors.New("member is live")

// Leave removes a member that is down from the pool: its leases and its
// inventory entry go, and JetStream stops counting it, so the majority is
// counted among the members left. A live member is refused: stop its
// kerfd first.
func (p *Pool) Leave(node string) error {
	if err := p.Quorum(); err != nil {
		return err
	}
	if slices.Contains(p.liveMembers(), node) {
		return fmt.Errorf("%s: %w; stop its kerfd first, then remove it from a member that stays", node, ErrLive)
	}
	nodes, err := p.nodesBucket()
	if err != nil {
		return err
	}
	// Its leases go with their bucket: deleting it needs JetStream's meta
	// leader only, not the bucket's own leader, which the member led and
	// whose election may still be under way. A delete asked again after
	// one that landed finds no bucket.
	err = askMetaLeader(func(ctx context.Context) error {
		err := p.js.DeleteKeyValue(ctx, LeaseBucket(node))
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		if qerr := p.metaReady(); qerr != nil {
			return fmt.Errorf("removing the leases of %s: %w", node, qerr)
		}
		return fmt.Errorf("removing the leases of %s: %w", node, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := untilAnswered(ctx, func() error { return nodes.Purge(ctx, node) }); err != nil {
		return fmt.Errorf("removing %s from the inventory: %w", node, err)
	}
	if err := p.removeServer(node); err != nil {
		if qerr := p.metaReady(); qerr != nil {
			return fmt.Errorf("asking JetStream to forget %s: %w", node, qerr)
		}
		return fmt.Errorf("asking JetStream to forget %s: %w", node, err)
	}
	p.mu.Lock()
	p.left[node] = true
	delete(p.nodes, node)
	delete(p.members, node)
	p.mu.Unlock()
	p.log.Info("member removed from the pool", "node", node)
	return nil
}
