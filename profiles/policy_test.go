package profiles

import (
	"sync"

	"github.com/kerf-edge/kerf/profiles/api"
)

// fakePolicies keeps tenant policies in memory, with a default for
// tenants without one.
type fakePolicies struct {
	mu  sync.Mutex
	def api.TenantPolicy
	own map[string]api.TenantPolicy
}

func (f *fakePolicies) TenantPolicy(tenant string) api.TenantPolicy {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.own[tenant]; ok {
		p.Own = true
		return p
	}
	return f.def
}

func (f *fakePolicies) SetTenantPolicy(tenant string, p api.TenantPolicy) (api.TenantPolicy, error) {
	f.mu.Lock()
	if f.own == nil {
		f.own = map[string]api.TenantPolicy{}
	}
	f.own[tenant] = p
	f.mu.Unlock()
	return f.TenantPolicy(tenant), nil
}
