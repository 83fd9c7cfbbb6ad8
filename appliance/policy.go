package appliance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kerf-edge/kerf/ingest"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/slicer"
)

// policy carries out the load-signal engine's decisions: it is the
// engine's ingest.Applier, and it logs each decision and re-slice in the
// operator API.
type policy struct {
	sl  *slicer.Slicer
	api *profiles.Server
}

var _ ingest.Applier = policy{}

// ApplyProfile implements ingest.Applier: a policy decision re-slices the
// node, or one GPU of it (the active layout with that GPU re-cut).
func (pol policy) ApplyProfile(_ context.Context, t ingest.Target, profile string, why ingest.Decision) error {
	start := time.Now()
	name := profile
	err := pol.load(profile)
	if err == nil && t.GPU != nil {
		name, err = pol.withGPU(*t.GPU, profile)
	}
	if err == nil {
		_, err = pol.sl.ApplyProfile(name, slicer.ApplyOptions{})
	}
	pol.api.RecordRuleReslice(profiles.RuleReslice{Rule: why.Rule, Metric: why.Metric, Why: reading(why), Reason: why.Reason,
		Target: strings.ReplaceAll(t.ID(), "/", " "), Profile: profile, Previous: why.Previous, Duration: time.Since(start), Err: err})
	return err
}

// reading words what a decision saw: "max of queue = 85 ≥ threshold 80".
func reading(d ingest.Decision) string {
	switch d.Reason {
	case ingest.ReasonScaleUp:
		return fmt.Sprintf("%s of %s = %.4g ≥ threshold %g", d.Aggregate, d.Metric, d.Value, d.Threshold)
	case ingest.ReasonScaleDown:
		return fmt.Sprintf("%s of %s = %.4g < activation threshold %g", d.Aggregate, d.Metric, d.Value, d.ActivationThreshold)
	case ingest.ReasonFallbackStale:
		return fmt.Sprintf("no live series of %s (%d stale)", d.Metric, d.StaleSeries)
	}
	return fmt.Sprintf("%s of %s = %.4g, applying failed before", d.Aggregate, d.Metric, d.Value)
}

// load gives the slicer the stored profile called name, as applying it
// through the API does; the built-in profiles it has already.
func (pol policy) load(name string) error {
	if slices.ContainsFunc(slicer.Builtin(), func(p slicer.Profile) bool { return p.Name == name }) {
		return nil
	}
	p, err := pol.api.Store().Profile(name)
	if errors.Is(err, profiles.ErrNotFound) {
		return fmt.Errorf("%w: %s", slicer.ErrUnknownProfile, name)
	} else if err != nil {
		return err
	}
	return pol.sl.AddProfile(toSlicer(p))
}

// withGPU registers the active profile with GPU gpu's slices taken from
// profile, and returns its name.
func (pol policy) withGPU(gpu int, profile string) (string, error) {
	var base, over *slicer.Profile
	active := pol.sl.Status().Profile
	for _, p := range pol.sl.Profiles() {
		switch p.Name {
		case active:
			base = &p
		case profile:
			over = &p
		}
	}
	if over == nil {
		return "", fmt.Errorf("%w: %s", slicer.ErrUnknownProfile, profile)
	}
	if base == nil {
		return profile, nil
	}
	specs := over.PerGPU[gpu]
	if specs == nil {
		specs = over.Slices
	}
	c := slicer.Profile{Name: fmt.Sprintf("%s;gpu%d=%s", strings.SplitN(base.Name, ";", 2)[0], gpu, profile),
		Slices: base.Slices, PerGPU: map[int][]slicer.SliceSpec{}}
	for g, s := range base.PerGPU {
		c.PerGPU[g] = s
	}
	c.PerGPU[gpu] = specs
	if err := pol.sl.AddProfile(c); err != nil {
		return "", err
	}
	return c.Name, nil
}
