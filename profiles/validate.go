package profiles

import (
	"fmt"
	"math"
	"regexp"
)

var sprintf = fmt.Sprintf

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func checkName(v *ValidationError, field, name string) {
	if !nameRE.MatchString(name) {
		v.add(field, "want 1-63 of a-z 0-9 . _ -, starting with a letter or digit")
	}
}

// ValidateProfile checks a profile's structure, independent of any node:
// a valid name, at least one GPU, each GPU once, at least one slice per
// GPU, each slice with exactly one of memoryFraction in (0,1] and
// memoryBytes > 0, a compute share in (0,1], and per GPU fractions and
// shares summing to at most 1.
func ValidateProfile(p Profile) error {
	v := &ValidationError{}
	checkName(v, "name", p.Name)
	if len(p.Description) > 1024 {
		v.add("description", "at most 1024 bytes")
	}
	if len(p.GPUs) == 0 {
		v.add("gpus", "at least one GPU")
	}
	seen := map[int]bool{}
	for i, g := range p.GPUs {
		gf := sprintf("gpus[%d]", i)
		if g.GPU < 0 {
			v.add(gf+".gpu", "must be 0 or more")
		} else if seen[g.GPU] {
			v.add(gf+".gpu", "GPU %d appears more than once", g.GPU)
		}
		seen[g.GPU] = true
		if len(g.Slices) == 0 {
			v.add(gf+".slices", "at least one slice")
		}
		var frac, share float64
		tenants := map[string]bool{}
		for j, s := range g.Slices {
			sf := sprintf("%s.slices[%d]", gf, j)
			switch {
			case s.MemoryFraction != 0 && s.MemoryBytes != 0:
				v.add(sf, "give memoryFraction or memoryBytes, not both")
			case s.MemoryFraction == 0 && s.MemoryBytes == 0:
				v.add(sf, "give memoryFraction or memoryBytes")
			case s.MemoryBytes == 0 && !(s.MemoryFraction > 0 && s.MemoryFraction <= 1):
				v.add(sf+".memoryFraction", "must be in (0, 1]")
			}
			frac += s.MemoryFraction
			if !(s.ComputeShare > 0 && s.ComputeShare <= 1) || math.IsNaN(s.ComputeShare) {
				v.add(sf+".computeShare", "must be in (0, 1]")
			}
			share += s.ComputeShare
			if len(s.Tenant) > 64 {
				v.add(sf+".tenant", "at most 64 characters")
			}
			if s.Tenant != "" {
				if tenants[s.Tenant] {
					v.add(sf+".tenant", "tenant %q has two slices on this GPU", s.Tenant)
				}
				tenants[s.Tenant] = true
			}
		}
		if frac > 1+1e-9 {
			v.add(gf+".slices", "memory fractions add up to %.3g, more than 1", frac)
		}
		if share > 1+1e-9 {
			v.add(gf+".slices", "compute shares add up to %.3g, more than 1", share)
		}
	}
	return v.orNil()
}
