package main

/*
#include <string.h>
*/
import "C"

import (
	"bytes"
	"unsafe"

	"github.com/kerf-edge/kerf/abi"
)

// imageAt is a module image at an address in the program's memory.
type imageAt struct{ p unsafe.Pointer }

var _ programImage = imageAt{}

func (m imageAt) head(n int) []byte {
	b := make([]byte, 0, n)
	for i := range n {
		c := *(*byte)(unsafe.Add(m.p, i))
		b = append(b, c)
		if c == 0 {
			break
		}
	}
	return b
}

func (m imageAt) view(n uint64) []byte { return unsafe.Slice((*byte)(m.p), n) }

func (m imageAt) pointee(off uint64) (programImage, bool) {
	p := *(*unsafe.Pointer)(unsafe.Add(m.p, off))
	return imageAt{p}, p != nil
}

// textLen uses strnlen, which reads no further than the NUL's page.
func (m imageAt) textLen(max uint64) (uint64, bool) {
	n := uint64(C.strnlen((*C.char)(m.p), C.size_t(max)))
	return n, n < max
}

// imageBytes copies a module image out of the program's memory: exactly
// the bytes its header (or, for PTX, its NUL) says it spans.
func imageBytes(p unsafe.Pointer) ([]byte, Result) {
	if p == nil {
		return nil, abi.ErrInvalidValue
	}
	img, n, err := measureImage(imageAt{p})
	if err != nil {
		say("module image: %v", err)
		return nil, abi.ResultOf(err)
	}
	return bytes.Clone(img.view(n)), abi.Success
}
