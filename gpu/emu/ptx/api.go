// Package ptx loads PTX text, as clang and nvcc emit it for sm_70 and
// later, and interprets its kernels a whole warp per decoded
// instruction. docs/emulator.md lists what it supports.
//
// It owns parsing, validation and execution of PTX only. It knows nothing
// of contexts, streams or the transport: the emulated device (package emu)
// hands it a Memory and a launch shape. An instruction it does not support
// fails Load with an error naming the instruction; it never computes a
// wrong result silently, and it never panics on tenant input.
package ptx

import "io"

// This file is the contract between the interpreter and the emulated
// device. Its declarations are implemented in the other files of the
// package.

// MaxISAMajor is the newest PTX ISA major version Load accepts.
const MaxISAMajor = 8

// Memory is a context's global address space as the interpreter sees it.
type Memory interface {
	// Span returns the allocation containing addr: its base address and
	// its bytes. ok is false when addr lies in no allocation, which the
	// interpreter reports as abi.ErrIllegalAddress.
	Span(addr uint64) (base uint64, data []byte, ok bool)
}

// Global is a module-scope .global or .const variable.
type Global struct {
	Name  string
	Size  uint64
	Align uint64
	Init  []byte // initial bytes, len(Init) <= Size; the rest is zero
}

// Param is one kernel parameter's place in the packed parameter buffer.
type Param struct {
	Name   string
	Offset uint32
	Size   uint32
	Align  uint32
}

// Launch is one kernel launch.
type Launch struct {
	Grid, Block   [3]uint32
	DynamicShared uint32
	Params        []byte            // packed as Kernel.Params describes
	Globals       map[string]uint64 // device address of each module global
	Memory        Memory
	Workers       int // goroutines running blocks; <= 0 means GOMAXPROCS
	// MaxBlockInstructions bounds the warp-instructions one block may
	// execute; a block that exceeds it fails the launch with
	// abi.ErrLaunchTimeout. 0 means no bound.
	MaxBlockInstructions uint64
	// MaxGridInstructions bounds the warp-instructions of the whole grid,
	// each block charged at least BlockCharge, so that a grid of empty
	// blocks is bounded too; past it the launch fails with
	// abi.ErrLaunchTimeout. 0 means no bound.
	MaxGridInstructions uint64
	// Stop, when closed, ends the launch early: blocks not yet started do
	// not run, running ones stop at their next backward branch, and the
	// launch fails with abi.ErrLaunchFailed. nil means never.
	Stop <-chan struct{}
	// Output receives what the kernel's printf calls print, one call's
	// text at a time. nil discards it (printf still returns its length).
	Output io.Writer
}

// BlockCharge is the least a block counts against MaxGridInstructions:
// setting up a block costs the interpreter about as much as that many
// warp-instructions.
const BlockCharge = 64
