package profiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kerf-edge/kerf/profiles/api"
)

// The kinds of document kept in state shared with other nodes.
const (
	SharedProfile = "profile"
	SharedRule    = "rule"
)

// Shared keeps the stored profiles and rules in state shared with other
// nodes (a pool's). The API writes a change there first and stores it
// here only once it is written; every node applies the shared changes to
// its own store (Server.ApplyShared), this one too, perhaps before Share
// returns. Errors wrap ErrUnavailable when the shared state cannot be
// written now (no quorum): 503, nothing changed.
type Shared interface {
	// Share writes doc, a profile or rule as the API stores it, under its
	// kind and name; a nil doc deletes it.
	Share(kind, name string, doc any) error
}

// share writes a change to Deps.Shared, if any.
func (h handlers) share(kind, name string, doc any) error {
	if h.deps.Shared == nil {
		return nil
	}
	if err := h.deps.Shared.Share(kind, name, doc); err != nil {
		return poolProblem(fmt.Errorf("%s %q not changed: %w", kind, name, err))
	}
	return nil
}

// ApplyShared applies to this node's store a profile or rule as the
// shared state has it (doc empty: deleted there). A built-in profile is
// left alone, and so is a profile this node runs, which it keeps.
func (s *Server) ApplyShared(kind, name string, doc []byte) error {
	switch kind {
	case SharedProfile:
		return s.applySharedProfile(name, doc)
	case SharedRule:
		return s.applySharedRule(name, doc)
	}
	return fmt.Errorf("no shared documents of kind %q", kind)
}

func (s *Server) applySharedProfile(name string, doc []byte) error {
	old, err := s.store.Profile(name)
	exists := err == nil
	if exists && old.BuiltIn {
		return nil
	}
	if len(doc) == 0 {
		if !exists {
			return nil
		}
		if err := s.deps.Node.DeleteProfile(name); err != nil {
			if errors.Is(err, ErrInUse) {
				s.log.Warn("a profile deleted in the pool is kept on this node, which runs it", "profile", name)
				return nil
			}
			return err
		}
		if err := s.store.DeleteProfile(name); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	}
	var p api.Profile
	if err := json.Unmarshal(doc, &p); err != nil {
		return fmt.Errorf("profile %q: %w", name, err)
	}
	p.Name, p.BuiltIn = name, false
	if exists && sameDoc(old, p, func(p *api.Profile) { p.Created, p.Updated = time.Time{}, time.Time{} }) {
		return nil
	}
	if _, _, err := s.store.PutProfile(p, false); err != nil {
		return err
	}
	return nil
}

func (s *Server) applySharedRule(name string, doc []byte) error {
	old, err := s.store.Rule(name)
	exists := err == nil
	if len(doc) == 0 {
		if !exists {
			return nil
		}
		if err := s.store.DeleteRule(name); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	}
	var r api.Rule
	if err := json.Unmarshal(doc, &r); err != nil {
		return fmt.Errorf("rule %q: %w", name, err)
	}
	r.Name = name
	if exists && sameDoc(old, r, func(r *api.Rule) { r.Created, r.Updated = time.Time{}, time.Time{} }) {
		return nil
	}
	if _, _, err := s.store.PutRule(r, false); err != nil {
		return err
	}
	return nil
}

// sameDoc reports whether a and b are the same document once clear has
// cleared what each node stamps itself.
func sameDoc[T any](a, b T, clear func(*T)) bool {
	clear(&a)
	clear(&b)
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
