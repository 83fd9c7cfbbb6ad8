package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// The buckets of the state the operator API keeps for the whole pool: one
// key per tenant (its tokens' hashes), per profile and per rule. Each
// member applies them to its own stores (Watch); a write goes to the
// bucket first, and is refused without quorum.
const (
	TenantsBucket  = "kerf_pool_tenants"
	ProfilesBucket = "kerf_pool_profiles"
	RulesBucket    = "kerf_pool_rules"
)

// stateBuckets are the operator's buckets, in the order they are created.
var stateBuckets = []string{TenantsBucket, ProfilesBucket, RulesBucket}

// Apply is given a key of a state bucket and its value, each time this
// member reads or writes a revision of it newer than the one it applied
// last (and every key once after start). An empty value is a deletion.
// Calls are one at a time, and never give an older revision after a
// newer one.
type Apply func(key string, value []byte) error

// Watch has apply called with the changes of bucket, one of the state
// buckets, from every round of upkeep. Call it before Start. A key whose
// apply fails is given again at the next round.
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
// Update returns (an Apply that fails is retried by the next round). It
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

// readState gives each watcher the keys of its bucket that changed since
// it last applied them. Without quorum the read fails and what was applied
// stays.
func (p *Pool) readState(ctx context.Context) error {
	var errs []error
	for _, bucket := range stateBuckets {
		p.mu.Lock()
		_, ok := p.watch[bucket]
		p.mu.Unlock()
		if !ok {
			continue
		}
		if err := p.readBucket(ctx, bucket); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Pool) readBucket(ctx context.Context, bucket string) error {
	kv, err := p.stateKV(bucket)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("reading %s: %w", bucket, err)
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	for _, k := range names {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // deleted since listed, or not answered: next round
		}
		if err := p.apply(bucket, k, e.Value(), e.Revision()); err != nil {
			p.log.Warn("a change of the pool's state not applied on this member", "bucket", bucket, "key", k, "err", err)
		}
	}
	return nil
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
