package profiles

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/kerf-edge/kerf/profiles/api"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var (
	bucketProfiles = []byte("profiles")
	bucketRules    = []byte("rules")
	bucketJobs     = []byte("jobs")
	bucketEvents   = []byte("events")
	bucketMeta     = []byte("meta")
	keyAdminHash   = []byte("admin_token_sha256")
	keySchema      = []byte("schema")
)

const schemaVersion = "1"

// Store is the API's durable state: profiles, rules, the event log and
// the admin token hash, in one bbolt file. Every change is one bbolt
// transaction, so it is atomic and survives a crash.
type Store struct {
	db   *bolt.DB
	path string
	keep int

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// OpenStore opens (creating if missing) the store at path. A file that is
// not a valid store is left as it is and reported, never replaced.
func OpenStore(path string, eventsKept int) (*Store, error) {
	fi, statErr := os.Stat(path)
	existed := statErr == nil
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("API store %s is locked by another process", path)
		}
		if existed {
			return nil, fmt.Errorf("API store %s (%d bytes) is corrupt or unreadable; it was kept as is — move it aside to start with an empty store: %w", path, fi.Size(), err)
		}
		return nil, fmt.Errorf("API store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, keep: eventsKept, subs: map[chan struct{}]struct{}{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketProfiles, bucketRules, bucketJobs, bucketEvents, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keySchema); {
		case v == nil:
			return meta.Put(keySchema, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("schema version %q, this kerfd knows %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("API store %s is not usable; it was kept as is: %w", path, err)
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Path is the store's file.
func (s *Store) Path() string { return s.path }

func (s *Store) getDoc(bucket []byte, name string, v any) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket).Get([]byte(name))
		if b == nil {
			return fmt.Errorf("%s %q: %w", kindOf(bucket), name, ErrNotFound)
		}
		return json.Unmarshal(b, v)
	})
}

func kindOf(bucket []byte) string {
	switch string(bucket) {
	case string(bucketProfiles):
		return "profile"
	case string(bucketRules):
		return "rule"
	case string(bucketJobs):
		return "job"
	}
	return string(bucket)
}

// putDoc stores v under name. With create, an existing name is ErrExists.
// stamp sets the created/updated times from the stored version.
func putDoc[T any](s *Store, bucket []byte, name string, v *T, create bool, stamp func(v *T, created time.Time, now time.Time)) (existed bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		now := time.Now().UTC().Truncate(time.Millisecond)
		created := now
		if old := b.Get([]byte(name)); old != nil {
			if create {
				return fmt.Errorf("%s %q: %w", kindOf(bucket), name, ErrExists)
			}
			existed = true
			var prev struct {
				Created time.Time `json:"created"`
			}
			if json.Unmarshal(old, &prev) == nil && !prev.Created.IsZero() {
				created = prev.Created
			}
		}
		stamp(v, created, now)
		data, err := marshal(v)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), data)
	})
	return existed, err
}

func (s *Store) deleteDoc(bucket []byte, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("%s %q: %w", kindOf(bucket), name, ErrNotFound)
		}
		return b.Delete([]byte(name))
	})
}

func listDocs[T any](s *Store, bucket []byte) ([]T, error) {
	out := []T{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var d T
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("%s %q: %w", kindOf(bucket), k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// Profile returns the named profile.
func (s *Store) Profile(name string) (api.Profile, error) {
	var p api.Profile
	return p, s.getDoc(bucketProfiles, name, &p)
}

// Profiles lists the profiles by name.
func (s *Store) Profiles() ([]api.Profile, error) { return listDocs[api.Profile](s, bucketProfiles) }

// PutProfile stores p, creating or replacing it (with create, an existing
// one is ErrExists), and returns it as stored.
func (s *Store) PutProfile(p api.Profile, create bool) (api.Profile, bool, error) {
	existed, err := putDoc(s, bucketProfiles, p.Name, &p, create, func(p *api.Profile, c, n time.Time) { p.Created, p.Updated = c, n })
	return p, existed, err
}

// DeleteProfile deletes the named profile.
func (s *Store) DeleteProfile(name string) error { return s.deleteDoc(bucketProfiles, name) }

// Rule returns the named rule.
func (s *Store) Rule(name string) (api.Rule, error) {
	var r api.Rule
	return r, s.getDoc(bucketRules, name, &r)
}

// Rules lists the rules by name.
func (s *Store) Rules() ([]api.Rule, error) { return listDocs[api.Rule](s, bucketRules) }

// PutRule stores r as PutProfile does.
func (s *Store) PutRule(r api.Rule, create bool) (api.Rule, bool, error) {
	existed, err := putDoc(s, bucketRules, r.Name, &r, create, func(r *api.Rule, c, n time.Time) { r.Created, r.Updated = c, n })
	return r, existed, err
}

// DeleteRule deletes the named rule.
func (s *Store) DeleteRule(name string) error { return s.deleteDoc(bucketRules, name) }

// Job returns the named triggered job.
func (s *Store) Job(name string) (api.Job, error) {
	var j api.Job
	return j, s.getDoc(bucketJobs, name, &j)
}

// Jobs lists the triggered jobs by name.
func (s *Store) Jobs() ([]api.Job, error) { return listDocs[api.Job](s, bucketJobs) }

// PutJob stores j as PutProfile does.
func (s *Store) PutJob(j api.Job, create bool) (api.Job, bool, error) {
	existed, err := putDoc(s, bucketJobs, j.Name, &j, create, func(j *api.Job, c, n time.Time) { j.Created, j.Updated = c, n })
	return j, existed, err
}

// DeleteJob deletes the named job.
func (s *Store) DeleteJob(name string) error { return s.deleteDoc(bucketJobs, name) }

// SetAdminHash stores the admin token's SHA-256 unless one is stored
// already; it reports whether it stored it.
func (s *Store) SetAdminHash(sum [32]byte) (bool, error) {
	stored := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if b.Get(keyAdminHash) != nil {
			return nil
		}
		stored = true
		return b.Put(keyAdminHash, sum[:])
	})
	return stored, err
}

// ResetAdminHash replaces the admin token's SHA-256.
func (s *Store) ResetAdminHash(sum [32]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyAdminHash, sum[:]) })
}

// CheckAdmin reports whether tok is the admin token.
func (s *Store) CheckAdmin(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	ok := false
	s.db.View(func(tx *bolt.Tx) error {
		h := tx.Bucket(bucketMeta).Get(keyAdminHash)
		ok = len(h) == len(sum) && subtle.ConstantTimeCompare(h, sum[:]) == 1
		return nil
	})
	return ok
}

// AppendEvent stores e with the next ID and time (if unset), drops the
// oldest events past the limit, and wakes the subscribers.
func (s *Store) AppendEvent(e api.Event) (api.Event, error) {
	out, err := s.AppendEvents([]api.Event{e})
	if err != nil {
		return e, err
	}
	return out[0], nil
}

// AppendEvents stores es in one transaction, as AppendEvent does each,
// and returns them with their IDs and times.
func (s *Store) AppendEvents(es []api.Event) ([]api.Event, error) {
	out := make([]api.Event, len(es))
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		for i, e := range es {
			id, err := b.NextSequence()
			if err != nil {
				return err
			}
			e.ID = id
			if e.Time.IsZero() {
				e.Time = time.Now().UTC()
			}
			data, err := marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(id), data); err != nil {
				return err
			}
			out[i] = e
		}
		return s.trimEvents(b)
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return out, nil
}

// trimEvents drops the oldest events once there are a tenth more than the
// limit, so that appends stay cheap. IDs are consecutive from the oldest
// kept, so the count needs no scan.
func (s *Store) trimEvents(b *bolt.Bucket) error {
	if s.keep <= 0 {
		return nil
	}
	first, _ := b.Cursor().First()
	if first == nil {
		return nil
	}
	oldest, last := binary.BigEndian.Uint64(first), b.Sequence()
	if last-oldest+1 < uint64(s.keep+s.keep/10+1) {
		return nil
	}
	for id := oldest; id <= last-uint64(s.keep); id++ {
		if err := b.Delete(seqKey(id)); err != nil {
			return err
		}
	}
	return nil
}

// marshal is json.Marshal without HTML escaping (rules hold "<" and ">").
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func seqKey(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}

// Events returns up to limit events with IDs above after, of kind if set,
// newest last.
func (s *Store) Events(limit int, after uint64, kind api.EventKind) ([]api.Event, error) {
	out := []api.Event{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			if binary.BigEndian.Uint64(k) <= after {
				break
			}
			var e api.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if kind == "" || e.Kind == kind {
				out = append(out, e)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// subscribe returns a channel that receives (coalesced) wake-ups on every
// new event, and its cancel func.
func (s *Store) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *Store) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
