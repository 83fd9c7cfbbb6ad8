//go:build !kerfptx

package emu

import "github.com/kerf-edge/kerf/transport/abi"

// loadPTX stands in until the ptx interpreter lands (build tag kerfptx).
func loadPTX([]byte) (program, error) {
	return nil, abi.Errorf(abi.ErrNotSupported, "PTX interpreter not built into this emulator")
}

const ptxAvailable = false
