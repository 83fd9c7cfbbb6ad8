package profiles

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/profiles/api"
)

// fakeDevices keeps device logins in memory.
type fakeDevices struct {
	mu    sync.Mutex
	names []string
}

func (f *fakeDevices) Add(name string) (api.IssuedDevice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Contains(f.names, name) {
		return api.IssuedDevice{}, fmt.Errorf("device %q: %w", name, ErrExists)
	}
	f.names = append(f.names, name)
	return api.IssuedDevice{Name: name, Password: "secret-" + name, Created: time.Unix(1, 0).UTC()}, nil
}

func (f *fakeDevices) List() []api.Device {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.Device
	for _, n := range f.names {
		out = append(out, api.Device{Name: n, Created: time.Unix(1, 0).UTC()})
	}
	return out
}

func (f *fakeDevices) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.Index(f.names, name)
	if i < 0 {
		return fmt.Errorf("device %q: %w", name, ErrNotFound)
	}
	f.names = slices.Delete(f.names, i, i+1)
	return nil
}

// contractDevices covers the device endpoints: add (the password once),
// a name taken, a name that is no topic segment, list, remove, remove
// again; and 409 from a kerfd without the embedded broker.
func contractDevices(t *testing.T, e *env, cov covered) {
	t.Helper()
	a := e.admin
	problemOf(t, e.do("GET", "/v1/devices", a, nil), 409)
	e.srv.deps.Devices = &fakeDevices{}
	defer func() { e.srv.deps.Devices = nil }()

	var d api.IssuedDevice
	r := e.call(cov, "POST /v1/devices", "/v1/devices", a, map[string]any{"name": "cam-07"})
	if r.code != 201 {
		t.Fatalf("add device: %d %s", r.code, r.body)
	}
	r.json(t, &d)
	if d.Name != "cam-07" || d.Password == "" {
		t.Fatalf("added %+v", d)
	}
	problemOf(t, e.do("POST", "/v1/devices", a, map[string]any{"name": "cam-07"}), 409)
	problemOf(t, e.do("POST", "/v1/devices", a, map[string]any{"name": "cam.07"}), 422)
	problemOf(t, e.do("POST", "/v1/devices", a, map[string]any{"name": "cam-08", "password": "mine"}), 400)
	var ds []api.Device
	e.call(cov, "GET /v1/devices", "/v1/devices", a, nil).json(t, &ds)
	if len(ds) != 1 || ds[0].Name != "cam-07" {
		t.Fatalf("devices %+v", ds)
	}
	if r := e.call(cov, "DELETE /v1/devices/{device}", "/v1/devices/cam-07", a, nil); r.code != 204 {
		t.Fatalf("remove device: %d %s", r.code, r.body)
	}
	problemOf(t, e.do("DELETE", "/v1/devices/cam-07", a, nil), 404)
	problemOf(t, e.do("DELETE", "/v1/devices/cam.07", a, nil), 422)
}
