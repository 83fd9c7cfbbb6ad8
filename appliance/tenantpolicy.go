package appliance

import (
	"time"

	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/slicer"
)

// tenantPolicies is the API's view of the slicer's tenant policies, which
// the slicer keeps in its state file: the GPU limit and idle timeout it
// enforces itself, and the memory cap that the lease accounts
// (leasemem.go) enforce when sessions allocate.
type tenantPolicies struct {
	sl *slicer.Slicer
}

var _ profiles.TenantPolicies = tenantPolicies{}

// TenantPolicy implements profiles.TenantPolicies.
func (tp tenantPolicies) TenantPolicy(tenant string) api.TenantPolicy {
	_, own := tp.sl.Status().Policies[tenant]
	out := apiPolicy(tp.sl.PolicyOf(tenant))
	out.Own = own
	return out
}

// SetTenantPolicy implements profiles.TenantPolicies.
func (tp tenantPolicies) SetTenantPolicy(tenant string, p api.TenantPolicy) (api.TenantPolicy, error) {
	tp.sl.SetPolicy(tenant, slicerPolicy(p))
	return tp.TenantPolicy(tenant), nil
}

func slicerPolicy(p api.TenantPolicy) slicer.Policy {
	return slicer.Policy{
		MaxGPUs:     p.MaxGPUs,
		IdleTimeout: time.Duration(p.IdleTimeoutSeconds * float64(time.Second)),
		MaxMemory:   p.MaxMemoryBytes,
	}
}

func apiPolicy(p slicer.Policy) api.TenantPolicy {
	return api.TenantPolicy{MaxGPUs: p.MaxGPUs, IdleTimeoutSeconds: p.IdleTimeout.Seconds(), MaxMemoryBytes: p.MaxMemory}
}
