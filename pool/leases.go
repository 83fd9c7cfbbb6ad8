package pool

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// Each member's leases live in a bucket of their own, under one key: every
// lease and reservation on that member's GPUs, one document changed by
// compare-and-set. A placement writes only the bucket of the member it
// places on, so placements on different members never conflict, and the
// death of a member stops only its own bucket's writes until JetStream
// elects another leader for it; nobody needs that bucket to place on the
// members left. Each member keeps its own bucket's stream led by itself
// (leadOwnBucket), so that its writes need no other member to lead them.
const (
	leaseBucketPrefix = "kerf_pool_leases_"
	leaseKey          = "leases"
)

// readTimeout bounds one read of another member's leases during a
// placement or a round of upkeep: a bucket whose leader died answers
// nothing until one is elected, and what was last read stands meanwhile.
const readTimeout = time.Second

// LeaseBucket is the bucket that holds member node's leases. A name made
// only of letters, digits, '-' and '_' is kept as it is; any other is
// written in hex, so that no two names share a bucket.
func LeaseBucket(node string) string {
	plain := node != ""
	for _, r := range node {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			plain = false
			break
		}
	}
	if plain {
		return leaseBucketPrefix + "n_" + node
	}
	return leaseBucketPrefix + "x_" + hex.EncodeToString([]byte(node))
}

// memberLeases is one member's leases as this member last read or wrote
// them.
type memberLeases struct {
	kv     jetstream.KeyValue // nil until its bucket was found
	leases []Lease
	rev    uint64 // the document's revision; 0: none written yet
	read   bool   // leases and rev were read or written at least once
	// mu is held while this member changes the document, so that its own
	// changes of one member's leases never race each other.
	mu sync.Mutex
}

// member returns the entry of node, made on first use.
func (p *Pool) member(node string) *memberLeases {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.members[node]
	if m == nil {
		m = &memberLeases{}
		p.members[node] = m
	}
	return m
}

// leaseKV is the bucket of node's leases.
func (p *Pool) leaseKV(ctx context.Context, node string) (jetstream.KeyValue, error) {
	m := p.member(node)
	p.mu.Lock()
	kv := m.kv
	p.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := p.js.KeyValue(ctx, LeaseBucket(node))
	if err != nil {
		return nil, fmt.Errorf("the leases of %s: %w", node, err)
	}
	p.mu.Lock()
	m.kv = kv
	p.mu.Unlock()
	return kv, nil
}

// readLeases reads node's leases from its bucket's leader, and keeps them
// as the last read. The leader answers with every write it acknowledged:
// a key-value get may be answered by any replica (the buckets allow
// direct reads), one that may not have applied the latest write yet,
// which crossCheck cannot use.
func (p *Pool) readLeases(ctx context.Context, node string) ([]Lease, uint64, error) {
	bucket := LeaseBucket(node)
	req, _ := json.Marshal(server.JSApiMsgGetRequest{LastFor: "$KV." + bucket + "." + leaseKey})
	msg, err := p.nc.RequestWithContext(ctx, fmt.Sprintf(server.JSApiMsgGetT, "KV_"+bucket), req)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the leases of %s: %w", node, err)
	}
	var resp server.JSApiMsgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, fmt.Errorf("reading the leases of %s: %w", node, err)
	}
	var l Ledger
	var rev uint64
	switch {
	case resp.Error != nil && resp.Error.ErrCode == uint16(server.JSNoMessageFoundErr):
	case resp.Error != nil && resp.Error.ErrCode == uint16(server.JSStreamNotFoundErr):
		return nil, 0, fmt.Errorf("the leases of %s: %w", node, jetstream.ErrBucketNotFound)
	case resp.Error != nil:
		return nil, 0, fmt.Errorf("reading the leases of %s: %s", node, resp.Error.Description)
	case resp.Message == nil:
		return nil, 0, fmt.Errorf("reading the leases of %s: an empty answer", node)
	default:
		rev = resp.Message.Sequence
		if err := json.Unmarshal(resp.Message.Data, &l); err != nil {
			return nil, 0, fmt.Errorf("the leases of %s do not parse: %w", node, err)
		}
	}
	p.keep(node, l.Leases, rev)
	return l.Leases, rev, nil
}

// keep records node's leases at revision rev, unless a newer revision is
// kept already.
func (p *Pool) keep(node string, leases []Lease, rev uint64) {
	m := p.member(node)
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.read && rev < m.rev {
		return
	}
	m.leases, m.rev, m.read = leases, rev, true
}

// kept is node's leases and their revision as last read or written.
func (p *Pool) kept(node string) (leases []Lease, rev uint64, ok bool) {
	m := p.member(node)
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(m.leases), m.rev, m.read
}

// ledgerNow is every lease of the pool as this member last read or wrote
// them, but those of members removed by Leave; except, when not "",
// member except's.
func (p *Pool) ledgerNow(except string) Ledger {
	p.mu.Lock()
	defer p.mu.Unlock()
	var l Ledger
	for n, m := range p.members {
		if n != except && !p.left[n] {
			l.Leases = append(l.Leases, m.leases...)
		}
	}
	slices.SortFunc(l.Leases, func(a, b Lease) int {
		return cmp.Or(a.Granted.Compare(b.Granted), strings.Compare(a.Node, b.Node), strings.Compare(a.ID, b.ID))
	})
	return l
}

// modifyOn applies f to the pool's ledger and writes node's leases back by
// compare-and-set on their revision, retrying when another member wrote
// them in between. f sees node's leases as they are, with every other
// member's as last read; only node's leases it leaves are written.
func (p *Pool) modifyOn(ctx context.Context, node string, f func(*Ledger) error) error {
	if _, err := p.nodesBucket(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	m := p.member(node)
	m.mu.Lock()
	defer m.mu.Unlock()
	kv, err := p.leaseKV(ctx, node)
	if err != nil {
		return err
	}
	leases, rev, ok := p.kept(node)
	if !ok {
		if leases, rev, err = p.readLeases(ctx, node); err != nil {
			return err
		}
	}
	for {
		l := p.ledgerNow(node)
		l.Leases = append(l.Leases, leases...)
		// Leases this node released whose release is not written yet go
		// with this write, or make one of their own.
		dropped := node == p.opts.Node && p.dropReleased(&l)
		if err := f(&l); err != nil {
			if !errors.Is(err, errUnchanged) {
				return err
			}
			if !dropped {
				return nil
			}
		}
		mine := Ledger{Leases: []Lease{}}
		for _, x := range l.Leases {
			if x.Node == node {
				mine.Leases = append(mine.Leases, x)
			}
		}
		b, err := json.Marshal(mine)
		if err != nil {
			return err
		}
		var wrote uint64
		err = untilAnswered(ctx, func() error {
			var err error
			if rev == 0 {
				wrote, err = kv.Create(ctx, leaseKey, b)
			} else {
				wrote, err = kv.Update(ctx, leaseKey, b, rev)
			}
			return err
		})
		if err == nil {
			p.keep(node, mine.Leases, wrote)
			if node == p.opts.Node {
				p.wroteOwn(mine.Leases)
			}
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("writing the leases of %s: %w", node, err)
		}
		// Another member wrote first: read again.
		if leases, rev, err = p.readLeases(ctx, node); err != nil {
			return err
		}
	}
}

// dropReleased removes from l this node's leases that its slicer no
// longer holds, and its reservations cancelled (Cancel): released, their
// release not yet written. The slicer is what grants this node's GPUs, so
// their room is free here already. It reports whether any went.
func (p *Pool) dropReleased(l *Ledger) bool {
	p.mu.Lock()
	released := make(map[string]bool, len(p.released))
	for id := range p.released {
		released[id] = true
	}
	p.mu.Unlock()
	return l.Remove(func(x Lease) bool {
		return x.Node == p.opts.Node && (released[x.ID] || x.Expires.IsZero() && !p.local.Holds(x.ID))
	})
}

// wroteOwn notes a write of this member's leases, now leases: the
// releases it carried (dropReleased) need no write of their own.
func (p *Pool) wroteOwn(leases []Lease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.released {
		if !slices.ContainsFunc(leases, func(x Lease) bool { return x.ID == id }) {
			delete(p.released, id)
		}
	}
	p.ownWrites.Add(1)
}

// ErrContended: a placement of the same tenant on another member was
// committed at the same time, and the two together pass the tenant's limit
// across the pool; this one was backed out. Asked again, it is placed or
// refused for the limit.
var ErrContended = errors.New("another placement of the same tenant, committed at the same moment elsewhere in the pool, passes the tenant's limit with this one")

// crossCheck counts what x's tenant holds across the pool once x is
// committed, reading every other live member's leases from its bucket's
// leader (what was last read of a member down, or one that does not
// answer in time), and backs x out when the total passes the limit. Of
// two placements of one tenant committed at once on two members, each
// reads after its own write, so at least one sees the other and backs
// out: the limit is never passed, though both may be backed out.
func (p *Pool) crossCheck(x Lease) error {
	limit := p.opts.Limit
	if limit <= 0 {
		return nil
	}
	live := p.liveMembers()
	var wg sync.WaitGroup
	for _, n := range p.memberNames() {
		if n == x.Node || !slices.Contains(live, n) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
			defer cancel()
			if _, _, err := p.readLeases(ctx, n); err != nil {
				p.log.Debug("reading a member's leases for a tenant's limit; what was last read stands", "node", n, "err", err)
			}
		}()
	}
	wg.Wait()
	all := p.ledgerNow("")
	held := all.charge(x.Tenant)
	if held <= limit+epsilon {
		return nil
	}
	err := p.modifyOn(context.Background(), x.Node, func(l *Ledger) error {
		if !l.Remove(func(y Lease) bool { return y.Node == x.Node && y.ID == x.ID }) {
			return errUnchanged
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w; backing it out: %w", ErrContended, err)
	}
	return fmt.Errorf("%w: tenant %s holds %.2f GPU across the pool with lease %s, limit %.2f", ErrContended, x.Tenant, held, x.ID, limit)
}

// memberNames are the members whose leases this member reads: every one
// in the inventory, this one, and any whose leases were read, but those
// removed by Leave.
func (p *Pool) memberNames() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := []string{p.opts.Node}
	for n := range p.nodes {
		names = append(names, n)
	}
	for n := range p.members {
		names = append(names, n)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return slices.DeleteFunc(names, func(n string) bool { return p.left[n] })
}

// readAllLeases reads the leases of every live member, this one too (other
// members reserve on it), each within readTimeout; a member down keeps
// what was last read of it.
func (p *Pool) readAllLeases(ctx context.Context) error {
	live := p.liveMembers()
	var errs []error
	for _, n := range p.memberNames() {
		if n != p.opts.Node && !slices.Contains(live, n) {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		_, _, err := p.readLeases(rctx, n)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// leadOwnBucket asks JetStream to move the leadership of this member's
// lease bucket here when another member leads it (as after this member
// restarted, when the others elected a leader while it was down), so
// that placing here needs no other member's stream leader. Where this
// member holds no copy of the bucket, it asks for one first
// (copyOwnBucketHere). It reports an error while a move is under way.
func (p *Pool) leadOwnBucket(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	name := "KV_" + LeaseBucket(p.opts.Node)
	s, err := p.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("this member's lease bucket: %w", err)
	}
	ci := s.CachedInfo().Cluster
	if ci == nil || ci.Leader == "" {
		return nil
	}
	leads := ci.Leader == p.opts.Node
	replica, current := leads, leads
	var follower string // a follower that is up and current
	settled := len(ci.Replicas) == p.opts.Config.Replicas()-1
	for _, r := range ci.Replicas {
		switch {
		case r.Name == p.opts.Node:
			replica, current = true, r.Current
		case r.Current && !r.Offline:
			follower = r.Name
		default:
			settled = false
		}
	}
	if !replica {
		if settled && follower != "" {
			return p.copyOwnBucketHere(ctx, s.CachedInfo().Config, ci.Leader, follower)
		}
		return nil // a copy moving, or a copy down: JetStream first
	}
	if cfg := s.CachedInfo().Config; cfg.Placement != nil && current && settled {
		// The copy moved here: the bucket is placed freely again, so
		// that JetStream can replace a copy lost with its member.
		cfg.Placement = nil
		if _, err := p.js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("this member's lease bucket: freeing its placement: %w", err)
		}
	}
	if leads || !current {
		return nil // led here, or catching up: it moves once current
	}
	req, _ := json.Marshal(server.JSApiLeaderStepdownRequest{Placement: &server.Placement{Preferred: p.opts.Node}})
	msg, err := p.nc.RequestWithContext(ctx, fmt.Sprintf(server.JSApiStreamLeaderStepDownT, name), req)
	if err == nil {
		var resp server.JSApiLeaderStepDownResponse
		if err = json.Unmarshal(msg.Data, &resp); err == nil && resp.Error != nil {
			err = errors.New(resp.Error.Description)
		}
	}
	if err != nil {
		return fmt.Errorf("this member's leases are led by %s; moving them here: %w", ci.Leader, err)
	}
	p.log.Info("this member's lease bucket led by another member: leadership moved here", "was", ci.Leader)
	return fmt.Errorf("this member's leases are led by %s; moving them here", ci.Leader)
}

// copyOwnBucketHere moves a copy of this member's lease bucket here when
// this member holds none (as in a pool of more than three, where
// JetStream places three copies among all members): the bucket is
// placed anew, every live member but this one, its leader and follower
// kept out, which leaves JetStream one choice. leadOwnBucket frees the
// placement once the copy here has caught up.
func (p *Pool) copyOwnBucketHere(ctx context.Context, cfg jetstream.StreamConfig, leader, follower string) error {
	var out []string
	for _, m := range p.liveMembers() {
		if m != p.opts.Node && m != leader && m != follower {
			out = append(out, "!"+memberTag(m))
		}
	}
	cfg.Placement = &jetstream.Placement{Tags: out}
	if _, err := p.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("this member holds no copy of its leases; moving one here: %w", err)
	}
	p.log.Info("this member holds no copy of its lease bucket: moving one here", "kept", []string{leader, follower})
	return errors.New("this member holds no copy of its leases; moving one here")
}
