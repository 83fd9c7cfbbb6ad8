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
	// Cooperative runs every block at once, each on its own goroutine,
	// so that blocks may wait for each other (grid.sync()); the device
	// checks beforehand that the grid fits. GridWorkspace is then the
	// address of 8 zeroed bytes of global memory that grid.sync() counts
	// arrivals in (%envreg1 and %envreg2 hold it); outside a cooperative
	// launch both registers read 0, and grid.sync() traps, as on a GPU.
	Cooperative   bool
	GridWorkspace uint64
	// Heap serves device malloc and free; nil: malloc returns NULL.
	Heap DeviceHeap
	// Textures resolves the texture and surface objects that tex, tld4,
	// suld, sust, txq and suq name. nil: every handle is invalid, and
	// those instructions fail the launch.
	Textures Textures
}

// DeviceHeap is a context's device heap, which kernels' malloc and free
// use; the emulated device bounds it by the heap limit and counts it in
// the context's memory. Kernel.UsesHeap says whether a kernel calls them.
type DeviceHeap interface {
	// Malloc returns the address of size fresh bytes of global memory,
	// or 0 when the heap cannot hold them.
	Malloc(size uint64) uint64
	// Free releases what Malloc returned; false when addr is no live
	// block of the heap, which fails the launch.
	Free(addr uint64) bool
}

// Textures resolves texture and surface object handles to what they
// read and write. The emulated device implements it per context; a
// handle that is not the context's own reports false, which fails the
// launch with abi.ErrIllegalAddress.
type Textures interface {
	Texture(handle uint64) (*Texture, bool)
	Surface(handle uint64) (*Surface, bool)
}

// ChannelFormat is the type of each channel of a texel, as CUDA's
// CUarray_format names it.
type ChannelFormat uint8

// Channel formats.
const (
	FormatU8 ChannelFormat = iota + 1
	FormatU16
	FormatU32
	FormatS8
	FormatS16
	FormatS32
	FormatF16
	FormatF32
)

// Size is a channel's size in bytes (0 for an unknown format).
func (f ChannelFormat) Size() int {
	switch f {
	case FormatU8, FormatS8:
		return 1
	case FormatU16, FormatS16, FormatF16:
		return 2
	case FormatU32, FormatS32, FormatF32:
		return 4
	}
	return 0
}

// Image is texel storage: a CUDA array, or device memory that a texture
// reads as a 1D or pitched 2D image. Row y of slice z (a depth slice or
// a layer) starts at z*SlicePitch + y*Pitch in Data.
type Image struct {
	Format   ChannelFormat
	Channels int   // 1, 2 or 4
	Dims     uint8 // 1, 2 or 3
	Width    uint32
	Height   uint32 // 1 for 1D
	Depth    uint32 // 1 for 1D and 2D
	// Layers is the number of layers of a layered image, each a 1D or
	// 2D image; 0 when the image is not layered.
	Layers uint32
	// Cube marks a cube map: a square 2D image whose layers are its
	// faces (+x, -x, +y, -y, +z, -z), six for a cube map, six per cube
	// for a cube map array.
	Cube       bool
	Pitch      uint64
	SlicePitch uint64
	Data       []byte
}

// AddressMode is what a texture read outside [0, size) returns, as
// CUDA's CUaddress_mode numbers it.
type AddressMode uint8

// Address modes.
const (
	AddressWrap AddressMode = iota
	AddressClamp
	AddressMirror
	AddressBorder
)

// FilterMode is how a texture combines texels, as CUfilter_mode numbers it.
type FilterMode uint8

// Filter modes.
const (
	FilterPoint FilterMode = iota
	FilterLinear
)

// Texture is a texture object: an image and how it is sampled.
type Texture struct {
	Image
	Address [3]AddressMode
	Filter  FilterMode
	// NormalizedCoords: coordinates run over [0, 1) rather than
	// [0, size).
	NormalizedCoords bool
	// ReadAsInteger: 8- and 16-bit integer channels read as integers;
	// otherwise they read as floats normalised to [0, 1] or [-1, 1].
	ReadAsInteger bool
	Border        [4]float32
	// Mipmaps are the levels after the first of a mipmapped texture,
	// each half the size of the one before along every dimension
	// (rounded down, at least 1), in Image's format and shape.
	Mipmaps []Image
	// MipmapFilter is how tex.level and tex.grad combine two levels.
	MipmapFilter FilterMode
	// MipmapLevelBias is added to the level of detail, which is then
	// clamped to [MinMipmapLevelClamp, MaxMipmapLevelClamp] and to the
	// levels there are.
	MipmapLevelBias     float32
	MinMipmapLevelClamp float32
	MaxMipmapLevelClamp float32
}

// Surface is a surface object: an image that suld and sust address in
// bytes along x.
type Surface struct {
	Image
}

// BlockCharge is the least a block counts against MaxGridInstructions:
// setting up a block costs the interpreter about as much as that many
// warp-instructions.
const BlockCharge = 64
