package appliance

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kerf-edge/kerf/internal/atomicfile"
	"github.com/kerf-edge/kerf/profiles"
	"github.com/kerf-edge/kerf/profiles/api"
)

// deviceLogins are the broker's device logins issued through the
// operator API (kerf devices add): kept in the state directory as bcrypt
// hashes, and applied to the running broker as they change. Devices
// listed in the configuration are the broker's own and not managed here.
type deviceLogins struct {
	path       string
	configured map[string]bool

	mu     sync.Mutex
	broker *Broker // nil until the broker runs
}

var _ profiles.Devices = (*deviceLogins)(nil)

// deviceRecord is one stored login.
type deviceRecord struct {
	Name    string    `json:"name"`
	Hash    string    `json:"hash"` // bcrypt
	Created time.Time `json:"created"`
}

func newDeviceLogins(cfg Config) *deviceLogins {
	d := &deviceLogins{path: cfg.DevicesPath(), configured: map[string]bool{}}
	for _, c := range cfg.Ingest.Broker.Embedded.Devices {
		d.configured[c.Name] = true
	}
	return d
}

func (d *deviceLogins) load() ([]deviceRecord, error) {
	b, err := os.ReadFile(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recs []deviceRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	return recs, nil
}

func (d *deviceLogins) save(recs []deviceRecord) error {
	b, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(d.path, b, 0o600)
}

// apply hands recs to the running broker, if there is one.
func (d *deviceLogins) apply(recs []deviceRecord) error {
	if d.broker == nil {
		return nil
	}
	logins := make([]BrokerLogin, 0, len(recs))
	for _, r := range recs {
		logins = append(logins, BrokerLogin{Name: r.Name, Password: r.Hash})
	}
	return d.broker.SetDevices(logins)
}

// attach applies the stored logins to b, which has just started, and
// keeps b for the changes to come.
func (d *deviceLogins) attach(b *Broker) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	recs, err := d.load()
	if err != nil {
		return err
	}
	d.broker = b
	return d.apply(recs)
}

// change applies and stores the logins edit makes of the stored ones.
func (d *deviceLogins) change(edit func([]deviceRecord) ([]deviceRecord, error)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, err := d.load()
	if err != nil {
		return err
	}
	recs, err := edit(slices.Clone(old))
	if err != nil {
		return err
	}
	if err := d.apply(recs); err != nil {
		return err
	}
	if err := d.save(recs); err != nil {
		d.apply(old)
		return err
	}
	return nil
}

// Add implements profiles.Devices: a new login with a random password,
// which only the caller sees.
func (d *deviceLogins) Add(name string) (api.IssuedDevice, error) {
	if err := validDeviceName(name); err != nil {
		return api.IssuedDevice{}, &profiles.ValidationError{Fields: []api.FieldError{{Field: "name", Message: err.Error()}}}
	}
	// A random password of 130 bits needs no slow hash to resist
	// guessing, and the broker checks the hash at every login: the least
	// cost keeps a flood of failed logins from costing kerfd a CPU.
	password := rand.Text()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return api.IssuedDevice{}, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	err = d.change(func(recs []deviceRecord) ([]deviceRecord, error) {
		if d.configured[name] || slices.ContainsFunc(recs, func(r deviceRecord) bool { return r.Name == name }) {
			return nil, fmt.Errorf("device %q: %w", name, profiles.ErrExists)
		}
		return append(recs, deviceRecord{Name: name, Hash: string(hash), Created: now}), nil
	})
	if err != nil {
		return api.IssuedDevice{}, err
	}
	return api.IssuedDevice{Name: name, Password: password, Created: now}, nil
}

// List implements profiles.Devices.
func (d *deviceLogins) List() []api.Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	recs, _ := d.load()
	out := make([]api.Device, 0, len(recs))
	for _, r := range recs {
		out = append(out, api.Device{Name: r.Name, Created: r.Created})
	}
	return out
}

// Remove implements profiles.Devices: the device's connections close.
func (d *deviceLogins) Remove(name string) error {
	return d.change(func(recs []deviceRecord) ([]deviceRecord, error) {
		i := slices.IndexFunc(recs, func(r deviceRecord) bool { return r.Name == name })
		if i < 0 {
			if d.configured[name] {
				return nil, fmt.Errorf("device %q is in the configuration file: remove it there: %w", name, profiles.ErrNotFound)
			}
			return nil, fmt.Errorf("device %q: %w", name, profiles.ErrNotFound)
		}
		return slices.Delete(recs, i, i+1), nil
	})
}
