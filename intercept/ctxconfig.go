package main

import (
	"github.com/kerf-edge/kerf/abi"
)

// ctxSettings are what a program configures on a context: limits, flags
// and the cache preference. The shim keeps them: all of a device's
// contexts share one kerfd session, and the emulated device has no
// per-context state they would change.
type ctxSettings struct {
	flags  uint32
	cache  uint32
	limits map[uint32]uint64 // the limits set, by CUlimit
}

func newCtxSettings(flags uint32) *ctxSettings {
	return &ctxSettings{flags: flags, cache: abi.CachePreferNone, limits: map[uint32]uint64{}}
}

// Limit defaults and bounds, those of the emulated device.
const (
	defaultStackSize      = 1 << 10
	defaultPrintfFIFOSize = 1 << 20
	defaultMallocHeapSize = 8 << 20
	defaultL2Fetch        = 32
	// maxStackSize is the most local memory one thread may have.
	maxStackSize = 512 << 10
	maxL2Fetch   = 128
)

// limitDefault returns limit's value in a fresh context, or false for a
// limit the device does not have: the device runtime's (no launches from
// the device) and anything the driver does not define.
func limitDefault(limit uint32) (uint64, bool) {
	switch limit {
	case abi.LimitStackSize:
		return defaultStackSize, true
	case abi.LimitPrintfFIFOSize:
		return defaultPrintfFIFOSize, true
	case abi.LimitMallocHeapSize:
		return defaultMallocHeapSize, true
	case abi.LimitMaxL2FetchGranularity:
		return defaultL2Fetch, true
	case abi.LimitPersistingL2CacheSize:
		return 0, true // no persisting L2: the attribute is absent
	}
	return 0, false
}

// checkLimit validates value for limit on dv.
func checkLimit(dv *device, limit uint32, value uint64) Result {
	if _, ok := limitDefault(limit); !ok {
		return abi.ErrUnsupportedLimit
	}
	switch limit {
	case abi.LimitStackSize:
		if value > maxStackSize {
			return abi.ErrInvalidValue
		}
	case abi.LimitPrintfFIFOSize, abi.LimitMallocHeapSize:
		if value > dv.info.TotalMem {
			return abi.ErrInvalidValue
		}
	case abi.LimitMaxL2FetchGranularity:
		if value > maxL2Fetch {
			return abi.ErrInvalidValue
		}
	case abi.LimitPersistingL2CacheSize:
		if value != 0 {
			return abi.ErrUnsupportedLimit
		}
	}
	return abi.Success
}

// currentSettings runs f on the calling thread's context's settings,
// under drv.mu.
func currentSettings(f func(dv *device, s *ctxSettings) Result) Result {
	c, res := current()
	if res != abi.Success {
		return res
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	return f(c.dev, c.settings)
}

func ctxGetLimit(limit uint32) (uint64, Result) {
	var v uint64
	res := currentSettings(func(_ *device, s *ctxSettings) Result {
		d, ok := limitDefault(limit)
		if !ok {
			return abi.ErrUnsupportedLimit
		}
		v = d
		if set, ok := s.limits[limit]; ok {
			v = set
		}
		return abi.Success
	})
	return v, res
}

// ctxSetLimit checks a limit and sets it on kerfd's context, which the
// program's contexts on the device share; the shim remembers it per
// context for cuCtxGetLimit.
func ctxSetLimit(limit uint32, value uint64) Result {
	var dev *device
	res := currentSettings(func(dv *device, s *ctxSettings) Result {
		dev = dv
		return checkLimit(dv, limit, value)
	})
	if res != abi.Success {
		return res
	}
	if limitForwarded(limit) {
		if err := dev.cl.Call(abi.CallCtxSetLimit, new(abi.Values).Word(uint64(limit)).Word(value), nil); err != nil {
			return abi.ResultOf(err)
		}
	}
	return currentSettings(func(_ *device, s *ctxSettings) Result {
		s.limits[limit] = value
		return abi.Success
	})
}

// limitForwarded reports whether a limit is the device's to apply: the
// L2 fetch granularity is only a hint, kept by the shim.
func limitForwarded(limit uint32) bool {
	switch limit {
	case abi.LimitStackSize, abi.LimitPrintfFIFOSize, abi.LimitMallocHeapSize:
		return true
	}
	return false
}

func ctxGetFlags() (uint32, Result) {
	var v uint32
	res := currentSettings(func(_ *device, s *ctxSettings) Result { v = s.flags; return abi.Success })
	return v, res
}

func ctxGetCacheConfig() (uint32, Result) {
	var v uint32
	res := currentSettings(func(_ *device, s *ctxSettings) Result { v = s.cache; return abi.Success })
	return v, res
}

func validCacheConfig(c uint32) bool { return c <= abi.CachePreferEqual }

func ctxSetCacheConfig(config uint32) Result {
	if !validCacheConfig(config) {
		return abi.ErrInvalidValue
	}
	return currentSettings(func(_ *device, s *ctxSettings) Result { s.cache = config; return abi.Success })
}

// ctxGetSharedMemConfig implements cuCtxGetSharedMemConfig: the bank size
// is four bytes, whatever was set.
func ctxGetSharedMemConfig() (uint32, Result) {
	if _, res := current(); res != abi.Success {
		return 0, res
	}
	return abi.SharedBankFourByte, abi.Success
}

// ctxSetSharedMemConfig implements cuCtxSetSharedMemConfig, which has no
// effect on a device whose bank size is fixed.
func ctxSetSharedMemConfig(config uint32) Result {
	if _, res := current(); res != abi.Success {
		return res
	}
	if config > abi.SharedBankEightByte {
		return abi.ErrInvalidValue
	}
	return abi.Success
}

// ctxGetAPIVersion implements cuCtxGetApiVersion for ctx, or the current
// context when ctx is 0.
func ctxGetAPIVersion(key uintptr) (uint32, Result) {
	if key == 0 {
		if _, res := current(); res != abi.Success {
			return 0, res
		}
		return abi.CtxAPIVersion, abi.Success
	}
	if _, res := drv.ready(); res != abi.Success {
		return 0, res
	}
	if _, ok := drv.lookup(key, kindContext); !ok {
		return 0, abi.ErrInvalidContext
	}
	return abi.CtxAPIVersion, abi.Success
}

// validCtxFlags reports whether flags are context creation flags with one
// scheduling policy: auto (0), spin (1), yield (2) or blocking sync (4).
func validCtxFlags(flags uint32) bool {
	if flags&^abi.CtxFlagsMask != 0 {
		return false
	}
	sched := flags & abi.CtxSchedMask
	return sched <= 2 || sched == abi.CtxSchedBlockingSync
}

// primarySetFlags implements cuDevicePrimaryCtxSetFlags: the flags apply
// to the primary context now and whenever it is made again.
func primarySetFlags(n int, flags uint32) Result {
	dv, res := drv.device(n)
	if res != abi.Success {
		return res
	}
	if !validCtxFlags(flags) {
		return abi.ErrInvalidValue
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	dv.primaryFlags = flags
	if dv.primary != nil {
		dv.primary.settings.flags = flags
	}
	return abi.Success
}

// Stream priority ranges: lower numbers are higher priorities.
const (
	leastStreamPriority = 0
	// greatestStreamPriority is that of devices of compute capability
	// 7.0 and later; earlier ones have two levels.
	greatestStreamPriority       = -5
	greatestStreamPriorityBefore = -1
)

// streamPriorityRange implements cuCtxGetStreamPriorityRange for the
// current context's device: a single level where the device does not
// support priorities.
func streamPriorityRange() (least, greatest int32, res Result) {
	dv, res := currentDevice()
	if res != abi.Success {
		return 0, 0, res
	}
	return priorityRange(dv)
}

func priorityRange(dv *device) (least, greatest int32, res Result) {
	ok, res := dv.attribute(abi.AttrStreamPrioritiesSupported)
	switch {
	case res != abi.Success:
		return 0, 0, res
	case ok == 0:
		return leastStreamPriority, leastStreamPriority, abi.Success
	case dv.info.CCMajor >= 7:
		return leastStreamPriority, greatestStreamPriority, abi.Success
	}
	return leastStreamPriority, greatestStreamPriorityBefore, abi.Success
}

// funcSetCacheConfig implements cuFuncSetCacheConfig. The preference is
// checked and not kept: like the preferred carveout, it is a hint, and the
// emulated device's shared memory does not come out of an L1 cache.
func funcSetCacheConfig(key uintptr, config uint32) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	if _, ok := drv.lookup(key, kindFunction); !ok {
		return abi.ErrInvalidHandle
	}
	if !validCacheConfig(config) {
		return abi.ErrInvalidValue
	}
	return abi.Success
}

// funcSetSharedMemConfig implements cuFuncSetSharedMemConfig: checked, and
// without effect, as on any device with fixed bank sizes.
func funcSetSharedMemConfig(key uintptr, config uint32) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	if _, ok := drv.lookup(key, kindFunction); !ok {
		return abi.ErrInvalidHandle
	}
	if config > abi.SharedBankEightByte {
		return abi.ErrInvalidValue
	}
	return abi.Success
}

// funcSetAttribute implements cuFuncSetAttribute on kerfd, where the
// backend holds later launches to the new dynamic shared memory limit.
func funcSetAttribute(attr int32, key uintptr, value int32) Result {
	if _, res := drv.ready(); res != abi.Success {
		return res
	}
	f, ok := drv.lookup(key, kindFunction)
	if !ok {
		return abi.ErrInvalidHandle
	}
	if attr != int32(abi.FuncAttrMaxDynamicShared) && attr != int32(abi.FuncAttrPreferredCarveout) {
		return abi.ErrInvalidValue
	}
	err := f.dev.cl.Call(abi.CallFuncSetAttribute, new(abi.Values).Word(f.wire).Word(uint64(attr)).Word(uint64(uint32(value))), nil)
	return abi.ResultOf(err)
}
