package emu

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"time"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin"
	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/emu/ptx"
)

// program and kernel are what emu needs from a loaded PTX module; the
// ptx package provides them (ptxglue.go), tests may fake them.
type program interface {
	kernel(name string) (kernel, error)
	globals() []ptx.Global
}

type kernel interface {
	params() []ptx.Param
	info() kernelInfo
	run(l *ptx.Launch) error
}

// kernelInfo is what the interpreter knows of a kernel's resources.
type kernelInfo struct {
	shared uint32 // static shared memory per block
	local  uint32 // local memory per thread
	regs   int    // registers per thread, 0 if unknown
	heap   bool   // calls malloc or free
	// paramSize is the packed parameter buffer size, 0 if unknown.
	paramSize uint32
}

// Function attributes the emulator reports.
const (
	funcNumRegs       = 32
	funcPTXVersion    = 70 // the sm_70 target clang emits
	funcBinaryVersion = CCMajor*10 + CCMinor
)

// Module is a loaded PTX module of a context.
type Module struct {
	c    *Context
	prog program

	// Guarded by c.mu.
	unloaded bool
	globals  map[string]*allocation
	addrs    map[string]uint64 // read-only once loaded; shared by launches
	funcs    map[string]*Function
}

var _ gpu.Module = (*Module)(nil)

// Function is a kernel of a loaded module.
type Function struct {
	m      *Module
	name   string
	k      kernel
	params []ptx.Param
	need   uint32 // bytes of parameter buffer the layout covers
	info   kernelInfo

	// Guarded by m.c.mu.
	maxDynShared uint32
	carveout     int32 // preferred shared memory carveout, percent or -1
}

var _ gpu.Function = (*Function)(nil)

// ModuleLoad loads a PTX image, or the PTX of a fatbin container. Its globals are allocated in the context's
// memory, initialised, and counted against its limit.
func (c *Context) ModuleLoad(image []byte) (gpu.Module, error) {
	c.mu.Lock()
	err := c.usable()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	src, err := ptxSource(image)
	if err != nil {
		return nil, err
	}
	prog, err := c.b.load(src)
	if err != nil {
		var ae *abi.Error
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, abi.Errorf(abi.ErrInvalidPTX, "%v", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	m := &Module{c: c, prog: prog, globals: map[string]*allocation{}, addrs: map[string]uint64{}, funcs: map[string]*Function{}}
	for _, g := range prog.globals() {
		if _, dup := m.globals[g.Name]; dup {
			m.releaseLocked()
			return nil, abi.Errorf(abi.ErrInvalidPTX, "global %q declared twice", g.Name)
		}
		if g.Align > allocAlign {
			m.releaseLocked()
			return nil, abi.Errorf(abi.ErrNotSupported, "global %q needs %d-byte alignment; the emulator aligns to %d", g.Name, g.Align, allocAlign)
		}
		a, err := c.allocLocked(g.Size, true)
		if err != nil {
			m.releaseLocked()
			return nil, err
		}
		copy(a.data, g.Init)
		m.globals[g.Name] = a
		m.addrs[g.Name] = a.base
	}
	c.modules[m] = struct{}{}
	return m, nil
}

// ptxSource returns the PTX text image holds, without trailing NUL bytes:
// the image itself, or the PTX entry of a fatbin container best suited to
// the emulated device. A cubin cannot run here; a malformed image is
// CUDA_ERROR_INVALID_IMAGE.
func ptxSource(image []byte) ([]byte, error) {
	switch f, err := fatbin.Check(image); {
	case err != nil:
		return nil, err
	case f == fatbin.FormatELF:
		return nil, abi.Errorf(abi.ErrNotSupported, "cubin (ELF) image: the emulator runs PTX only")
	case f == fatbin.FormatContainer:
		c, err := fatbin.Parse(image)
		if err != nil {
			return nil, err
		}
		if _, image, err = c.PTX(runsHere); err != nil {
			return nil, err
		}
	}
	src := bytes.TrimRight(image, "\x00")
	if !bytes.HasPrefix(skipSpaceAndComments(src), []byte(".version")) {
		return nil, abi.Errorf(abi.ErrInvalidImage, "image is not PTX text (no .version directive first)")
	}
	return src, nil
}

// runsHere admits a fatbin's PTX entries for the emulated device's
// architecture or older, in ISA versions the interpreter reads.
func runsHere(e fatbin.Entry) bool {
	return e.Arch <= CCMajor*10+CCMinor && e.Version.Major <= ptx.MaxISAMajor
}

func skipSpaceAndComments(b []byte) []byte {
	for {
		b = bytes.TrimLeft(b, " \t\r\n\f\v")
		switch {
		case bytes.HasPrefix(b, []byte("//")):
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return nil
			}
			b = b[i+1:]
		case bytes.HasPrefix(b, []byte("/*")):
			i := bytes.Index(b[2:], []byte("*/"))
			if i < 0 {
				return nil
			}
			b = b[i+4:]
		default:
			return b
		}
	}
}

// Function returns the kernel called name.
func (m *Module) Function(name string) (gpu.Function, error) {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	if m.unloaded {
		return nil, errUnloaded
	}
	if f, ok := m.funcs[name]; ok {
		return f, nil
	}
	k, err := m.prog.kernel(name)
	if err != nil || k == nil {
		return nil, abi.Errorf(abi.ErrNotFound, "no kernel %q in module", name)
	}
	f := &Function{m: m, name: name, k: k, params: k.params(), info: k.info()}
	if f.info.shared > sharedPerBlockOpt {
		return nil, abi.Errorf(abi.ErrNotSupported, "kernel %q: %d bytes of static shared memory exceed %d", name, f.info.shared, sharedPerBlockOpt)
	}
	f.maxDynShared = sharedPerBlock - min(f.info.shared, sharedPerBlock)
	f.carveout = abi.CarveoutDefault
	for _, p := range f.params {
		end := uint64(p.Offset) + uint64(p.Size)
		if end > abi.MaxKernelParams {
			return nil, abi.Errorf(abi.ErrNotSupported, "kernel %q: parameters exceed %d bytes", name, abi.MaxKernelParams)
		}
		f.need = max(f.need, uint32(end))
	}
	if f.info.paramSize > abi.MaxKernelParams {
		return nil, abi.Errorf(abi.ErrNotSupported, "kernel %q: parameters exceed %d bytes", name, abi.MaxKernelParams)
	}
	f.need = max(f.need, f.info.paramSize)
	m.funcs[name] = f
	return f, nil
}

// Global returns the address and size of a module global.
func (m *Module) Global(name string) (uint64, uint64, error) {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return 0, 0, err
	}
	if m.unloaded {
		return 0, 0, errUnloaded
	}
	a, ok := m.globals[name]
	if !ok {
		return 0, 0, abi.Errorf(abi.ErrNotFound, "no global %q in module", name)
	}
	return a.base, uint64(len(a.data)), nil
}

// Unload waits for the context's pending work, then frees the module's
// globals and invalidates its functions.
func (m *Module) Unload() error {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if m.unloaded {
		return errUnloaded
	}
	c.drainLocked()
	if err := c.stickyErr(); err != nil {
		return err
	}
	m.releaseLocked()
	delete(c.modules, m)
	return nil
}

// releaseLocked frees the module's globals. c.mu is held and the
// context drained (or the globals never used).
func (m *Module) releaseLocked() {
	for _, a := range m.globals {
		m.c.freeLocked(a)
	}
	m.globals = nil
	m.funcs = nil
	m.unloaded = true
}

var errUnloaded = abi.Errorf(abi.ErrInvalidHandle, "module was unloaded")

// Params returns the kernel's parameter layout.
func (f *Function) Params() ([]abi.ParamInfo, error) {
	c := f.m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return nil, err
	}
	if f.m.unloaded {
		return nil, errUnloaded
	}
	out := make([]abi.ParamInfo, len(f.params))
	for i, p := range f.params {
		out[i] = abi.ParamInfo{Offset: p.Offset, Size: p.Size}
	}
	return out, nil
}

// Attribute returns a function attribute (CUfunction_attribute).
func (f *Function) Attribute(attr uint32) (int32, error) {
	c := f.m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return 0, err
	}
	if f.m.unloaded {
		return 0, errUnloaded
	}
	switch attr {
	case abi.FuncAttrMaxThreadsPerBlock:
		return maxThreadsPerBlock, nil
	case abi.FuncAttrSharedSizeBytes:
		return int32(f.info.shared), nil
	case abi.FuncAttrLocalSizeBytes:
		return int32(min(f.info.local, math.MaxInt32)), nil
	case abi.FuncAttrConstSizeBytes, abi.FuncAttrCacheModeCA:
		return 0, nil
	case abi.FuncAttrNumRegs:
		return int32(f.numRegs()), nil
	case abi.FuncAttrPTXVersion:
		return funcPTXVersion, nil
	case abi.FuncAttrBinaryVersion:
		return funcBinaryVersion, nil
	case abi.FuncAttrMaxDynamicShared:
		return int32(f.maxDynShared), nil
	case abi.FuncAttrPreferredCarveout:
		return f.carveout, nil
	case abi.FuncAttrClusterSizeMustBeSet, abi.FuncAttrRequiredClusterWidth, abi.FuncAttrRequiredClusterHeight,
		abi.FuncAttrRequiredClusterDepth, abi.FuncAttrNonPortableClusterSize, abi.FuncAttrClusterSchedulingPolicy:
		// An sm_80 device has no thread block clusters: no required
		// size, the default scheduling policy.
		return 0, nil
	}
	return 0, abi.Errorf(abi.ErrInvalidValue, "function attribute %d is not supported by the emulator", attr)
}

// SetAttribute sets a function attribute, as cuFuncSetAttribute does:
// the dynamic shared memory limit, up to the opt-in maximum less the
// static shared memory, or the preferred carveout, which the emulator
// records (its shared memory does not come out of an L1 cache).
func (f *Function) SetAttribute(attr uint32, value int32) error {
	c := f.m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if f.m.unloaded {
		return errUnloaded
	}
	switch attr {
	case abi.FuncAttrMaxDynamicShared:
	case abi.FuncAttrPreferredCarveout:
		if value < abi.CarveoutDefault || value > abi.CarveoutMax {
			return abi.Errorf(abi.ErrInvalidValue, "shared memory carveout %d is not -1 or a percentage", value)
		}
		f.carveout = value
		return nil
	default:
		return abi.Errorf(abi.ErrInvalidValue, "function attribute %d cannot be set", attr)
	}
	if value < 0 || uint64(value)+uint64(f.info.shared) > sharedPerBlockOpt {
		return abi.Errorf(abi.ErrInvalidValue, "dynamic shared memory %d plus %d static exceeds %d", value, f.info.shared, sharedPerBlockOpt)
	}
	f.maxDynShared = uint32(value)
	return nil
}

// numRegs is the registers per thread the kernel reports.
func (f *Function) numRegs() int {
	if f.info.regs > 0 {
		return min(f.info.regs, 255)
	}
	return funcNumRegs
}

// checkLaunch validates a launch shape against the device limits.
func checkLaunch(cfg abi.LaunchConfig, static, maxDyn uint32) error {
	g, b := cfg.Grid, cfg.Block
	if g.X == 0 || g.Y == 0 || g.Z == 0 || b.X == 0 || b.Y == 0 || b.Z == 0 {
		return abi.Errorf(abi.ErrInvalidValue, "launch grid %v or block %v has a zero dimension", g, b)
	}
	if g.X > maxGridDimX || g.Y > maxGridDimY || g.Z > maxGridDimZ {
		return abi.Errorf(abi.ErrInvalidValue, "grid %v exceeds %d x %d x %d", g, maxGridDimX, maxGridDimY, maxGridDimZ)
	}
	if b.X > maxBlockDimX || b.Y > maxBlockDimY || b.Z > maxBlockDimZ {
		return abi.Errorf(abi.ErrInvalidValue, "block %v exceeds %d x %d x %d", b, maxBlockDimX, maxBlockDimY, maxBlockDimZ)
	}
	if n := uint64(b.X) * uint64(b.Y) * uint64(b.Z); n > maxThreadsPerBlock {
		return abi.Errorf(abi.ErrInvalidValue, "block of %d threads exceeds %d", n, maxThreadsPerBlock)
	}
	if cfg.SharedBytes > maxDyn || uint64(static)+uint64(cfg.SharedBytes) > sharedPerBlockOpt {
		return abi.Errorf(abi.ErrInvalidValue, "%d bytes of dynamic shared memory exceed %d (static %d)", cfg.SharedBytes, maxDyn, static)
	}
	return nil
}

// Launch queues a kernel launch on s.
func (c *Context) Launch(f gpu.Function, cfg abi.LaunchConfig, params []byte, s gpu.Stream) error {
	return c.launch(f, cfg, params, s, false)
}

// launch queues a launch, cooperative or not.
func (c *Context) launch(f gpu.Function, cfg abi.LaunchConfig, params []byte, s gpu.Stream, coop bool) error {
	_, err := c.submit(s, func(st *Stream) (func() error, error) {
		fn, ok := f.(*Function)
		if !ok || fn == nil || fn.m.c != c {
			return nil, abi.Errorf(abi.ErrInvalidHandle, "function does not belong to this context")
		}
		if fn.m.unloaded {
			return nil, errUnloaded
		}
		if err := checkLaunch(cfg, fn.info.shared, fn.maxDynShared); err != nil {
			return nil, err
		}
		if uint64(len(params)) < uint64(fn.need) {
			return nil, abi.Errorf(abi.ErrInvalidValue, "kernel %s: parameter buffer of %d bytes, layout needs %d",
				fn.name, len(params), fn.need)
		}
		l := &ptx.Launch{
			Grid:          [3]uint32{cfg.Grid.X, cfg.Grid.Y, cfg.Grid.Z},
			Block:         [3]uint32{cfg.Block.X, cfg.Block.Y, cfg.Block.Z},
			DynamicShared: cfg.SharedBytes,
			Params:        append([]byte(nil), params[:fn.need]...),
			Globals:       fn.m.addrs,
			Memory:        &c.mem,
			Workers:       min(c.dev.cfg.SMs, runtime.GOMAXPROCS(0)),

			MaxBlockInstructions: c.dev.cfg.MaxBlockInstructions,
			MaxGridInstructions:  c.dev.cfg.MaxLaunchInstructions,
			Stop:                 c.stop,
			Output:               c.printfOutput(),
			Textures:             kernelTextures{c},
		}
		if coop {
			if err := c.cooperative(fn, cfg, l); err != nil {
				return nil, err
			}
		}
		if fn.info.heap {
			h, err := c.heapLocked()
			if err != nil {
				return nil, err
			}
			l.Heap = h
		}
		return func() error { return c.runKernel(fn, l) }, nil
	})
	return err
}

// runKernel executes one launch and meters its time. A panic in the
// interpreter fails the launch instead of the process.
func (c *Context) runKernel(fn *Function, l *ptx.Launch) (err error) {
	if c.aborted() {
		return abi.Errorf(abi.ErrLaunchFailed, "kernel %s: its context was aborted", fn.name)
	}
	done := func(time.Duration) {}
	if g := c.dev.cfg.Gate; g != nil {
		done = g.Enter()
	}
	start := time.Now()
	defer func() {
		d := time.Since(start)
		c.busy.Add(int64(d))
		done(d)
		if r := recover(); r != nil {
			err = abi.Errorf(abi.ErrLaunchFailed, "kernel %s: emulator fault: %v", fn.name, r)
		}
	}()
	if err := fn.k.run(l); err != nil {
		code := abi.ResultOf(err)
		var ae *abi.Error
		if errors.As(err, &ae) {
			err = errors.New(ae.Msg)
		}
		switch code {
		case abi.Success, abi.ErrUnknown, abi.ErrNotReady:
			code = abi.ErrLaunchFailed
		}
		return abi.Errorf(code, "kernel %s: %v", fn.name, err)
	}
	return nil
}
