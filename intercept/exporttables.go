package main

import (
	"fmt"
	"os"
	"sync"

	"github.com/kerf-edge/kerf/abi"
)

// The private tables of cuGetExportTable, which the CUDA runtime asks the
// driver for right after cuInit. The tables themselves are C arrays
// (exporttables.c); this file holds what their functions do.

// exportTable names one table; its number selects the C array.
type exportTable struct {
	which int // KERF_ET_*
	name  string
}

// The numbers of exporttables.h.
const (
	etCudart = iota + 1
	etToolsTLS
	etCallbackHooks
	etContextStorage
	etContextChecks
	etDeviceExtended
	etIntegrity
)

// exportTables maps each table's UUID, as the runtime passes it, to the
// table.
var exportTables = map[[16]byte]exportTable{
	uuid("6bd5fb6c-5bf4-e74a-8987-d93912fd9df9"): {etCudart, "cudart interface"},
	uuid("42d85a81-23f6-cb47-8298-f6e78a3aecdc"): {etToolsTLS, "tools TLS"},
	uuid("a094798c-2e74-2e74-93f2-0800200c0a66"): {etCallbackHooks, "runtime callback hooks"},
	uuid("c693336e-1121-df11-a8c3-68f355d89593"): {etContextStorage, "context-local storage"},
	uuid("263e8860-7cd2-6143-92f6-bbd5006dfa7e"): {etContextChecks, "context checks"},
	uuid("b10541e1-f7c7-c74a-9f64-f223be99f1e2"): {etDeviceExtended, "extended device attributes"},
	uuid("d4082055-bde6-704b-8d34-ba123c66e1f2"): {etIntegrity, "integrity check"},
}

var exportTableNames = func() map[int]string {
	m := map[int]string{}
	for _, t := range exportTables {
		m[t.which] = t.name
	}
	return m
}()

// uuid parses a UUID written as 32 hex digits with dashes, in byte order.
func uuid(s string) [16]byte {
	var u [16]byte
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		if n >= 32 {
			panic("uuid too long: " + s)
		}
		v := hexDigit(s[i])
		if v < 0 {
			panic("uuid: not hex: " + s)
		}
		u[n/2] |= byte(v) << (4 * (1 - n%2))
		n++
	}
	if n != 32 {
		panic("uuid too short: " + s)
	}
	return u
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// sayOnce prints a line the first time key is seen.
var saidOnce sync.Map

func sayOnce(key string, format string, args ...any) {
	if _, seen := saidOnce.LoadOrStore(key, true); !seen {
		say(format, args...)
	}
}

// lookupExportTable implements cuGetExportTable's choice: the table for
// id, or CUDA_ERROR_NOT_SUPPORTED and one line naming an unknown UUID.
func lookupExportTable(id [16]byte) (int, Result) {
	if t, ok := exportTables[id]; ok {
		return t.which, abi.Success
	}
	s := formatUUID(id)
	sayOnce("table "+s, "cuGetExportTable: no table %s; returning CUDA_ERROR_NOT_SUPPORTED", s)
	return 0, abi.ErrNotSupported
}

// unknownSlot answers a call to a table slot whose function is not known.
func unknownSlot(which, slot int) Result {
	k := fmt.Sprintf("slot %d %d", which, slot)
	if slot < 0 {
		sayOnce(k, "%s: a function the shim does not know was called; returning CUDA_ERROR_NOT_SUPPORTED", exportTableNames[which])
	} else {
		sayOnce(k, "%s: function %d is not known to the shim; returning CUDA_ERROR_NOT_SUPPORTED", exportTableNames[which], slot)
	}
	return abi.ErrNotSupported
}

// The cudart interface.

// primaryContext returns device n's primary context handle without taking
// a reference: the runtime learns the handle before it retains it.
func primaryContext(n int) (*object, Result) {
	dv, res := drv.device(n)
	if res != abi.Success {
		return nil, res
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	return primaryHandleLocked(dv)
}

// moduleOptionsKnown reports whether the extra arguments of the runtime's
// module loads are the ones the shim understands: none.
func moduleOptionsKnown(set bool) Result {
	if set {
		sayOnce("module options", "cudart interface: module load with options the shim does not know; returning CUDA_ERROR_NOT_SUPPORTED")
		return abi.ErrNotSupported
	}
	return abi.Success
}

// Context-local storage: values the runtime keeps per context under keys
// of its own, with a destructor to run when the context goes.

// storageEntry is one stored value. Everything is the program's memory,
// held, never read, by the shim.
type storageEntry struct {
	value cmem
	dtor  cmem // void (*)(CUcontext, void *key, void *value), or nil
}

// storageContext resolves a context argument: NULL is the calling
// thread's current context.
func storageContext(key uintptr) (*object, Result) {
	if key == 0 {
		return current()
	}
	if _, res := drv.ready(); res != abi.Success {
		return nil, res
	}
	o, ok := drv.lookup(key, kindContext)
	if !ok {
		return nil, abi.ErrInvalidContext
	}
	return o, abi.Success
}

func storagePut(ctx uintptr, k, value, dtor cmem) Result {
	c, res := storageContext(ctx)
	if res != abi.Success {
		return res
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if c.storage == nil {
		c.storage = map[cmem]storageEntry{}
	}
	c.storage[k] = storageEntry{value: value, dtor: dtor}
	return abi.Success
}

func storageDelete(ctx uintptr, k cmem) Result {
	c, res := storageContext(ctx)
	if res != abi.Success {
		return res
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if _, ok := c.storage[k]; !ok {
		return abi.ErrInvalidHandle
	}
	delete(c.storage, k)
	return abi.Success
}

func storageGet(ctx uintptr, k cmem) (cmem, Result) {
	c, res := storageContext(ctx)
	if res != abi.Success {
		return nil, res
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	e, ok := c.storage[k]
	if !ok {
		return nil, abi.ErrInvalidHandle
	}
	return e.value, abi.Success
}

// takeStorageLocked empties c's storage and returns what it held, so that
// its destructors run once, outside drv.mu. drv.mu is held.
func takeStorageLocked(c *object) map[cmem]storageEntry {
	s := c.storage
	c.storage = nil
	return s
}

// runStorageDestructors calls each entry's destructor, as the driver does
// when a context is destroyed or a primary context reset.
func runStorageDestructors(c *object, s map[cmem]storageEntry) {
	for k, e := range s {
		if e.dtor != nil {
			callStorageDestructor(e.dtor, c.mem, k, e.value)
		}
	}
}

// Context checks.

// contextCheck validates a context for the runtime and returns its flags
// word: no shim context carries any of the special states the runtime
// looks for.
func contextCheck(ctx uintptr) (uint32, Result) {
	if _, res := storageContext(ctx); res != abi.Success {
		return 0, res
	}
	return 0, abi.Success
}

// Extended device attributes.

// deviceAttributeExt answers the runtime's extended attributes, whose ids
// lie outside CUdevice_attribute (the ray-tracing facts of a real GPU).
// The devices the shim serves have none.
func deviceAttributeExt(dev int, attr uint32, arg int32) Result {
	if _, res := drv.device(dev); res != abi.Success {
		return res
	}
	if arg != 0 {
		return abi.ErrInvalidValue
	}
	return abi.ErrNotSupported
}

// The integrity check.

// integrityCheck computes the answer to the runtime's integrity check at
// version and unixSeconds, over this process, the tables' addresses and
// the devices.
func integrityCheck(version uint32, unixSeconds uint64, addrs integrityAddrs, thread uint32) ([2]uint64, Result) {
	devs, res := drv.ready()
	if res != abi.Success {
		return [2]uint64{}, res
	}
	in := integrityInput{
		driverVersion: uint32(drv.driverVersion()),
		version:       version,
		process:       uint32(os.Getpid()),
		thread:        thread,
		addrs:         addrs,
		unixSeconds:   unixSeconds,
	}
	for _, dv := range devs {
		d := integrityDevice{uuid: dv.info.UUID}
		for i, a := range []uint32{abi.AttrPCIDomainID, abi.AttrPCIBusID, abi.AttrPCIDeviceID} {
			v, res := dv.attribute(a)
			if res != abi.Success {
				return [2]uint64{}, res
			}
			d.pci[i] = v
		}
		in.devices = append(in.devices, d)
	}
	return in.sum(), abi.Success
}
