// Package emu is Kerf's emulated GPU: a gpu.Backend that runs tenants'
// PTX kernels on the host CPU through the interpreter in gpu/emu/ptx. It
// is kerfd's default device when no NVIDIA GPU is found, and it always
// says so: every DeviceInfo it reports has Emulated set.
//
// emu owns the emulated device's state: the per-device address space and
// memory accounting, contexts and their allocations, streams, events,
// loaded modules, launch validation and the sticky error of a context.
// It must not touch the transport (sessions, handles, the wire) nor parse
// or interpret PTX itself, which is the ptx package's job; it sees PTX
// only through ptx.Load, Module, Kernel and Launch, and takes a fatbin
// container's PTX through abi/fatbin.
//
// Device memory is host memory, allocated when the tenant allocates it.
// Each context sees only its own allocations and its modules' globals, so
// a kernel cannot reach another context's memory.
package emu
