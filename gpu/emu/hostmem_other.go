//go:build !unix

package emu

// hostAlloc returns n zeroed bytes from the Go heap.
func hostAlloc(n uint64) ([]byte, bool, error) { return make([]byte, n), false, nil }

func hostFree([]byte, bool) {}
