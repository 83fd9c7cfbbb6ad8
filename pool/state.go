package pool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The buckets of the state the operator API keeps for the whole pool: one
// key per tenant (its tokens' hashes), per profile and per rule. Each
// member watches them and applies their changes to its own stores (Watch);
// a write goes to the bucket first, and is refused without quorum.
const (
	TenantsBucket  = "kerf_pool_tenants"
	ProfilesBucket = "kerf_pool_profiles"
	RulesBucket    = "kerf_pool_rules"
)

// stateBuckets are the operator's buckets, in the order they are created.
var stateBuckets = []string{TenantsBucket, ProfilesBucket, RulesBucket}

// Apply is given a key of a state bucket and its value, each time this
// member's watch of the bucket, or its own write, gives a revision of it
// newer than the one it applied last (and every key once after start). An empty value is a deletion.
// Calls are one at a time, and never give an older revision after a
// newer one.
type Apply func(key string, value []byte) error

// Watch has apply called with the changes of bucket, one of the state
// buckets, as a JetStream watch of the bucket delivers them. Call it
// before Start. A key whose apply fails is given again by a new watch a
// tick later.
func (p *Pool) Watch(bucket string, apply Apply) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watch == nil {
		p.watch = map[string]Apply{}
	}
	p.watch[bucket] = apply
}

func (p *Pool) stateKV(bucket string) (jetstream.KeyValue, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kv, ok := p.state[bucket]
	if !ok {
		return nil, ErrNotReady
	}
	return kv, nil
}

// Update changes key of a state bucket by compare-and-set on its
// revision: f gets the value as it is (nil when there is none) and
// returns the new one, or an error that leaves it as is; f runs again
// when another member wrote in between. Refused without quorum. Once the
// write is acknowledged, the bucket's Apply has it on this member before
// Update returns (an Apply that fails is given again by the watch). It
// returns the value written.
func (p *Pool) Update(bucket, key string, f func(old []byte) ([]byte, error)) ([]byte, error) {
	if err := p.Quorum(); err != nil {
		return nil, err
	}
	kv, err := p.stateKV(bucket)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for {
		var old []byte
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return nil, fmt.Errorf("reading %s in %s: %w", key, bucket, err)
		default:
			old, rev = e.Value(), e.Revision()
		}
		v, err := f(old)
		if err != nil {
			return nil, err
		}
		var wrote uint64
		err = untilAnswered(ctx, func() error {
			var err error
			if rev == 0 {
				wrote, err = kv.Create(ctx, key, v)
			} else {
				wrote, err = kv.Update(ctx, key, v, rev)
			}
			return err
		})
		if err == nil {
			if err := p.apply(bucket, key, v, wrote); err != nil {
				p.log.Warn("a change of the pool's state not yet applied on this member", "bucket", bucket, "key", key, "err", err)
			}
			return v, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("writing %s in %s: %w", key, bucket, err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("writing %s in %s: %w", key, bucket, ctx.Err())
		}
	}
}

// Put sets key of a state bucket to value; an empty value deletes it, as
// a mark kept in the bucket, so that every member deletes its copy.
func (p *Pool) Put(bucket, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := p.Update(bucket, key, func([]byte) ([]byte, error) { return value, nil })
	return err
}

// followState watches each state bucket that has an Apply, from a
// goroutine of its own, until ctx ends. Called once the buckets exist.
func (p *Pool) followState(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, bucket := range stateBuckets {
		if _, ok := p.watch[bucket]; !ok {
			continue
		}
		again := make(chan struct{}, 1)
		p.rewatch = append(p.rewatch, again)
		p.following.Add(1)
		go func() {
			defer p.following.Done()
			p.follow(ctx, bucket, again)
		}()
	}
}

// watchAgain has every watch of the state established anew: after a
// quorum came back, or the connection to the broker was re-established,
// or the broker reported an error of a subscription. A new watch gives
// every key's latest revision again; apply passes over those applied.
func (p *Pool) watchAgain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, again := range p.rewatch {
		select {
		case again <- struct{}{}:
		default: // one pending already
		}
	}
}

// follow watches bucket and applies its changes as they come: every key's
// latest revision first, then each change. The watch is established anew
// when it ends, when a change fails to apply (a tick later, so that the
// key is given again), and when again is signalled; a watch that cannot
// be established (no quorum) is tried again every tick.
func (p *Pool) follow(ctx context.Context, bucket string, again <-chan struct{}) {
	for {
		err := p.watchBucket(ctx, bucket, again)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			continue
		}
		p.log.Debug("watching the pool's state", "bucket", bucket, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-again:
		case <-time.After(tick):
		}
	}
}

// watchBucket is one watch of bucket. It returns nil when the watch is to
// be established again at once.
func (p *Pool) watchBucket(ctx context.Context, bucket string, again <-chan struct{}) error {
	kv, err := p.stateKV(bucket)
	if err != nil {
		return err
	}
	// The watch lasts as long as wctx: its end ends the watch's
	// subscription. Establishing it is bounded by opTimeout.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bound := time.AfterFunc(opTimeout, cancel)
	w, err := kv.WatchAll(wctx)
	if !bound.Stop() {
		if err == nil {
			w.Stop()
		}
		return fmt.Errorf("watching %s: not established within %v", bucket, opTimeout)
	}
	if err != nil {
		return fmt.Errorf("watching %s: %w", bucket, err)
	}
	defer w.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-again:
			return nil
		case <-retry:
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("the watch of %s ended", bucket)
			}
			if e == nil {
				continue // every key's latest revision given
			}
			v := e.Value()
			if e.Operation() != jetstream.KeyValuePut {
				v = nil // deleted or purged
			}
			if err := p.apply(bucket, e.Key(), v, e.Revision()); err != nil {
				p.log.Warn("a change of the pool's state not applied on this member", "bucket", bucket, "key", e.Key(), "err", err)
				if retry == nil {
					retry = time.After(tick)
				}
			}
		}
	}
}

// apply hands revision rev of key to its bucket's Apply, unless this
// member applied that revision or a newer one already: a read may be
// answered by a replica that has not seen the latest write yet.
func (p *Pool) apply(bucket, key string, value []byte, rev uint64) error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	p.mu.Lock()
	f := p.watch[bucket]
	seen := p.applied[bucket][key]
	p.mu.Unlock()
	if f == nil || rev <= seen {
		return nil
	}
	if err := f(key, value); err != nil {
		return err
	}
	p.mu.Lock()
	if p.applied[bucket] == nil {
		p.applied[bucket] = map[string]uint64{}
	}
	p.applied[bucket][key] = rev
	p.mu.Unlock()
	return nil
}
