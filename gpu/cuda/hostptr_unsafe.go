package cuda

import "unsafe"

// bytesPtr is the address of b's first byte, for handing a host buffer to
// the C layer for the duration of one call (nil for an empty slice).
func bytesPtr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

// u32Ptr is the address of s's first element, likewise.
func u32Ptr(s []uint32) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(s)) }
