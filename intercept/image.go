package main

import (
	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/abi/fatbin"
)

// programImage is a module image in the program's memory, which the
// program names by its address alone (cuModuleLoadData and its kin take
// no length). Its methods read the program's memory (image_cgo.go).
type programImage interface {
	// head returns up to n bytes from the start, ending early after a NUL.
	head(n int) []byte
	// view returns the first n bytes, which the image's format says are
	// there.
	view(n uint64) []byte
	// pointee returns the image at the address stored at byte off; ok is
	// false for NULL.
	pointee(off uint64) (img programImage, ok bool)
	// textLen returns the length of the NUL-terminated text at the start;
	// ok is false when there is no NUL within max bytes.
	textLen(max uint64) (n uint64, ok bool)
}

// measureImage finds the bytes a module image spans, from its own header:
// the container a fatbin wrapper names, a fatbin container, an ELF cubin,
// or else PTX text up to its NUL (left out). Each is bounded by
// abi.MaxModuleImage; an image that is none of these or too large is an
// error carrying CUDA_ERROR_INVALID_IMAGE.
func measureImage(img programImage) (programImage, uint64, error) {
	switch fatbin.FormatOf(img.head(fatbin.MagicLen)) {
	case fatbin.FormatWrapper:
		if _, err := fatbin.WrapperContainer(img.view(fatbin.WrapperSize)); err != nil {
			return nil, 0, err
		}
		c, ok := img.pointee(fatbin.WrapperContainerOffset)
		if !ok || fatbin.FormatOf(c.head(fatbin.MagicLen)) != fatbin.FormatContainer {
			return nil, 0, abi.Errorf(abi.ErrInvalidImage, "fatbin wrapper names no container")
		}
		n, err := fatbin.ContainerLen(c.view(fatbin.HeaderSize))
		return c, n, err
	case fatbin.FormatContainer:
		n, err := fatbin.ContainerLen(img.view(fatbin.HeaderSize))
		return img, n, err
	case fatbin.FormatELF:
		n, err := fatbin.ELFLen(img.view(fatbin.ELFHeaderSize))
		return img, n, err
	}
	n, ok := img.textLen(abi.MaxModuleImage)
	if !ok {
		return nil, 0, abi.Errorf(abi.ErrInvalidImage, "not PTX, ELF or fatbin, or no NUL within %d bytes", abi.MaxModuleImage)
	}
	return img, n, nil
}
