package slicer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// stateVersion is the State layout this package writes.
const stateVersion = 1

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
// was saved yet. Save is called, with the Slicer's lock held, after every
// change of leases, layout, profiles or policies.
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

// save writes the current state, remembering a failure for Status.
func (s *Slicer) save() {
	if s.store == nil {
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
	if err := s.store.Save(st); err != nil {
		s.storeErr = err.Error()
		return
	}
	s.storeErr = ""
}
