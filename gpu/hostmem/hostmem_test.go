package hostmem_test

import (
	"testing"

	"github.com/kerf-edge/kerf/gpu"
	"github.com/kerf-edge/kerf/gpu/gputest"
	"github.com/kerf-edge/kerf/gpu/hostmem"
)

func TestConformance(t *testing.T) {
	gputest.Run(t, func(*testing.T) gpu.Backend { return hostmem.New(64 << 20) },
		gputest.Options{NoKernels: "hostmem runs no kernels: module loads get CUDA_ERROR_NOT_SUPPORTED"})
}
