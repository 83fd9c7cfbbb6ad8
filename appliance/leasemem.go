package appliance

import (
	"sync"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/internal/units"
	"github.com/kerf-edge/kerf/transport"
)

// A lease's slice is one quota, whatever runs in it: every process of a
// `kerf run`, every run of a requested lease, each with a session (and a
// worker) per device. kerfd keeps the account: before a session's backend
// allocates, the session reserves the bytes here (a worker asks over its
// control socket: reserve, reserved, release), and gives them back when
// it frees them or ends. Past the slice's memory, or past the tenant's
// memory cap across all its leases, the reservation is refused and the
// program that asked gets CUDA_ERROR_OUT_OF_MEMORY.

// leaseMemory is kerfd's account of what the sessions of each lease hold,
// per device and per holder (a worker, or a session served in kerfd).
type leaseMemory struct {
	// limit is the memory of lease's slice on dev now (0: no such slice).
	limit func(lease string, dev int) uint64
	// tenantCap is a tenant's memory cap across its leases (0: none).
	tenantCap func(tenant string) uint64

	mu       sync.Mutex
	accounts map[leaseDevice]*leaseAccount
	byTenant map[string]uint64 // what each tenant's sessions hold in all
	next     uint64
}

type leaseDevice struct {
	lease string
	dev   int
}

type leaseAccount struct {
	tenant string
	total  uint64
	held   map[uint64]uint64 // by holder
}

func newLeaseMemory(limit func(string, int) uint64, tenantCap func(string) uint64) *leaseMemory {
	return &leaseMemory{limit: limit, tenantCap: tenantCap, accounts: map[leaseDevice]*leaseAccount{}, byTenant: map[string]uint64{}}
}

// leaseHolder is one session's share of a lease's account; it implements
// transport.LeaseMemory.
type leaseHolder struct {
	m      *leaseMemory
	key    leaseDevice
	tenant string
	id     uint64
}

var _ transport.LeaseMemory = (*leaseHolder)(nil)

// open returns a new holder of adm's lease on adm's device.
func (m *leaseMemory) open(adm transport.Admission) *leaseHolder {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	return &leaseHolder{m: m, key: leaseDevice{adm.Lease, adm.Device}, tenant: adm.Tenant.ID, id: m.next}
}

// Reserve implements transport.LeaseMemory.
func (h *leaseHolder) Reserve(n uint64) error {
	limit := h.m.limit(h.key.lease, h.key.dev) // outside m.mu: it asks the slicer
	tenantCap := h.m.tenantCap(h.tenant)
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.accounts[h.key]
	var total uint64
	if a != nil {
		total = a.total
	}
	if limit == 0 {
		return abi.Errorf(abi.ErrDeviceUnavailable, "lease %s has no slice on device %d: it ended", h.key.lease, h.key.dev)
	}
	if n > limit || total > limit-n {
		return abi.Errorf(abi.ErrOutOfMemory, "lease %s on device %d: %s asked for, %s of its %s free (the lease's processes share the slice)",
			h.key.lease, h.key.dev, units.FormatBytes(n), units.FormatBytes(limit-min(total, limit)), units.FormatBytes(limit))
	}
	if held := m.byTenant[h.tenant]; tenantCap > 0 && (n > tenantCap || held > tenantCap-n) {
		return abi.Errorf(abi.ErrOutOfMemory, "tenant %s: %s asked for, %s of its %s memory cap free",
			h.tenant, units.FormatBytes(n), units.FormatBytes(tenantCap-min(held, tenantCap)), units.FormatBytes(tenantCap))
	}
	if a == nil {
		a = &leaseAccount{tenant: h.tenant, held: map[uint64]uint64{}}
		m.accounts[h.key] = a
	}
	a.total += n
	a.held[h.id] += n
	m.byTenant[h.tenant] += n
	return nil
}

// Available implements transport.LeaseMemory: what is left of the slice,
// and of the tenant's cap.
func (h *leaseHolder) Available() uint64 {
	limit := h.m.limit(h.key.lease, h.key.dev)
	tenantCap := h.m.tenantCap(h.tenant)
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	var total uint64
	if a := m.accounts[h.key]; a != nil {
		total = a.total
	}
	free := limit - min(total, limit)
	if held := m.byTenant[h.tenant]; tenantCap > 0 {
		free = min(free, tenantCap-min(held, tenantCap))
	}
	return free
}

// Release implements transport.LeaseMemory: at most what h holds goes
// back.
func (h *leaseHolder) Release(n uint64) {
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked(h, n)
}

func (m *leaseMemory) releaseLocked(h *leaseHolder, n uint64) {
	a := m.accounts[h.key]
	if a == nil {
		return
	}
	n = min(n, a.held[h.id])
	a.held[h.id] -= n
	a.total -= n
	if a.held[h.id] == 0 {
		delete(a.held, h.id)
	}
	if len(a.held) == 0 {
		delete(m.accounts, h.key)
	}
	if m.byTenant[h.tenant] -= n; m.byTenant[h.tenant] == 0 {
		delete(m.byTenant, h.tenant)
	}
}

// close gives back everything h holds: its worker has exited.
func (h *leaseHolder) close() {
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked(h, ^uint64(0))
}

// used is what the sessions of lease hold on dev.
func (m *leaseMemory) used(lease string, dev int) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.accounts[leaseDevice{lease, dev}]; a != nil {
		return a.total
	}
	return 0
}

// reserveWait bounds how long a worker waits for kerfd's answer to a
// reservation.
const reserveWait = 10 * time.Second

// ctlLeaseMemory is a worker's transport.LeaseMemory: it asks kerfd over
// the control socket.
type ctlLeaseMemory struct {
	send func(ctlMsg) error

	mu      sync.Mutex
	seq     uint64
	waiting map[uint64]chan reservedMsg
}

var _ transport.LeaseMemory = (*ctlLeaseMemory)(nil)

func newCtlLeaseMemory(send func(ctlMsg) error) *ctlLeaseMemory {
	return &ctlLeaseMemory{send: send, waiting: map[uint64]chan reservedMsg{}}
}

// Reserve implements transport.LeaseMemory.
func (c *ctlLeaseMemory) Reserve(n uint64) error {
	_, err := c.ask(n)
	return err
}

// Available implements transport.LeaseMemory; 0 when kerfd cannot say.
func (c *ctlLeaseMemory) Available() uint64 {
	free, _ := c.ask(0)
	return free
}

// ask reserves n bytes (0: none) and returns what the lease has left.
func (c *ctlLeaseMemory) ask(n uint64) (uint64, error) {
	ans := make(chan reservedMsg, 1)
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.waiting[seq] = ans
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, seq)
		c.mu.Unlock()
	}()
	if err := c.send(reserveMsg{Seq: seq, Bytes: n}); err != nil {
		return 0, abi.Errorf(abi.ErrDeviceUnavailable, "asking kerfd for memory: %v", err)
	}
	t := time.NewTimer(reserveWait)
	defer t.Stop()
	select {
	case m := <-ans:
		if m.Code != abi.Success {
			return m.Free, &abi.Error{Code: m.Code, Msg: m.Err}
		}
		return m.Free, nil
	case <-t.C:
		return 0, abi.Errorf(abi.ErrDeviceUnavailable, "kerfd did not answer a memory reservation within %v", reserveWait)
	}
}

// Release implements transport.LeaseMemory.
func (c *ctlLeaseMemory) Release(n uint64) {
	if n > 0 {
		c.send(releaseMsg{Bytes: n})
	}
}

// reserved hands kerfd's answer to the reservation waiting for it.
func (c *ctlLeaseMemory) reserved(m reservedMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ans := c.waiting[m.Seq]; ans != nil {
		ans <- m
	}
}
