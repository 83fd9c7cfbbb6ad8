package slicer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// stateVersion is the State layout this package writes.
const stateVersion = 1

// leaseIDGap is how far lease IDs skip ahead of the saved counter at a
// start: a crash loses the leases granted since the last save, and their
// IDs must not be granted again (the pool's ledger may still hold them).
// It exceeds by far the grants of the time between two saves.
const leaseIDGap = 1 << 16

// State is what a Store keeps across restarts.
type State struct {
	Version int    `json:"version"`
	Profile string `json:"profile"`
	// Profiles are the operator's own (builtins are not stored).
	Profiles      []Profile         `json:"profiles,omitempty"`
	Layout        Layout            `json:"layout"`
	Leases        []Lease           `json:"leases,omitempty"`
	NextLease     uint64            `json:"nextLease"`
	Policies      map[string]Policy `json:"policies,omitempty"`
	DefaultPolicy *Policy           `json:"defaultPolicy,omitempty"`
}

// Store persists the Slicer's state. Load returns nil, nil when nothing
// was saved yet. Save is called from one background goroutine after
// changes of leases, layout, profiles or policies; states are coalesced
// (only the newest unsaved one is written), and Slicer.Flush waits for
// them.
type Store interface {
	Load() (*State, error)
	Save(*State) error
}

// FileStore keeps State as JSON in one file, replaced atomically
// (written to a temporary file, synced, renamed, directory synced).
type FileStore struct{ Path string }

// Load reads the file; a missing file is no state.
func (f FileStore) Load() (*State, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%s: state version %d, this kerfd reads %d", f.Path, st.Version, stateVersion)
	}
	return &st, nil
}

// Save replaces the file with st.
func (f FileStore) Save(st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, ".slicer-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// saver writes states in the background, newest wins: a change costs
// its caller a copy, not an fsync. Saves start at least saveEvery apart,
// so that the changes of a burst (a lease granted, then released) go in
// one write; a flush or close writes without waiting.
type saver struct {
	store    Store
	every    time.Duration
	mu       sync.Mutex
	cond     *sync.Cond
	next     *State
	seq      uint64 // states handed over
	done     uint64 // states written (or superseded)
	err      string
	stop     bool
	flushing int           // flushes waiting
	hurry    chan struct{} // ends the wait between saves
	exit     chan struct{}
}

// saveEvery is the least time between the starts of two saves. A state
// handed over after a save waits for the rest of it: a crash loses at
// most that much more than it would anyway.
const saveEvery = 100 * time.Millisecond

func newSaver(st Store, every time.Duration) *saver {
	v := &saver{store: st, every: every, hurry: make(chan struct{}, 1), exit: make(chan struct{})}
	v.cond = sync.NewCond(&v.mu)
	go v.loop()
	return v
}

func (v *saver) put(st *State) {
	v.mu.Lock()
	v.next = st
	v.seq++
	v.cond.Broadcast()
	v.mu.Unlock()
}

func (v *saver) loop() {
	defer close(v.exit)
	var last time.Time // when the last save started
	v.mu.Lock()
	defer v.mu.Unlock()
	for {
		for v.next == nil && !v.stop {
			v.cond.Wait()
		}
		if v.next == nil {
			return
		}
		if wait := v.every - time.Since(last); wait > 0 && !v.stop && v.flushing == 0 {
			select {
			case <-v.hurry: // left by a flush that found the state written
			default:
			}
			v.mu.Unlock()
			select {
			case <-time.After(wait):
			case <-v.hurry:
			}
			v.mu.Lock()
		}
		st, seq := v.next, v.seq
		v.next = nil
		v.mu.Unlock()
		last = time.Now()
		err := v.store.Save(st)
		v.mu.Lock()
		v.err = ""
		if err != nil {
			v.err = err.Error()
		}
		v.done = seq
		v.cond.Broadcast()
	}
}

// flush waits until every state handed over so far is written.
func (v *saver) flush() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.flushing++
	defer func() { v.flushing-- }()
	select {
	case v.hurry <- struct{}{}:
	default: // one pending already
	}
	for want := v.seq; v.done < want; {
		v.cond.Wait()
	}
}

func (v *saver) lastErr() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

func (v *saver) close() {
	v.flush()
	v.mu.Lock()
	v.stop = true
	v.cond.Broadcast()
	v.mu.Unlock()
	<-v.exit
}

// save hands the current state to the background writer.
func (s *Slicer) save() {
	if s.saver == nil {
		return
	}
	st := &State{Version: stateVersion, Profile: s.active, Layout: s.layout.Clone(), Leases: s.leaseList(),
		NextLease: s.nextLease, Policies: map[string]Policy{}}
	for t, p := range s.policies {
		st.Policies[t] = p
	}
	dp := s.defPolicy
	st.DefaultPolicy = &dp
	for name := range s.custom {
		st.Profiles = append(st.Profiles, s.profiles[name])
	}
	sort.Slice(st.Profiles, func(a, b int) bool { return st.Profiles[a].Name < st.Profiles[b].Name })
	s.saver.put(st)
}

// Flush waits until every change so far is in the Store.
func (s *Slicer) Flush() {
	if s.saver != nil {
		s.saver.flush()
	}
}

// Close flushes the Store and stops the background writer; the Slicer
// must not be used after.
func (s *Slicer) Close() {
	if s.saver != nil {
		s.saver.close()
	}
}
