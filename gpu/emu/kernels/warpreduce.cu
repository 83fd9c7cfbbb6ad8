// Warp reduction with __shfl_down_sync: one atomicAdd per warp.
// Also exercises the other shuffle modes into a per-thread output.
// Kernels that shuffle are compiled for PTX ISA 6.0 (KERF_PTX60).
#include "kerf_device.h"

extern "C" __global__ KERF_PTX60 void warp_reduce(const float *in, float *out, unsigned int n) {
	unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
	float v = i < n ? in[i] : 0.0f;
	for (int off = 16; off > 0; off >>= 1)
		v += __shfl_down_sync(0xffffffffu, v, off);
	if ((threadIdx.x & 31) == 0)
		atomicAdd(out, v);
}

extern "C" __global__ KERF_PTX60 void warp_reduce_int(const int *in, int *out, unsigned int n) {
	unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
	int v = i < n ? in[i] : 0;
	for (int off = 16; off > 0; off >>= 1)
		v += __shfl_down_sync(0xffffffffu, v, off);
	if ((threadIdx.x & 31) == 0)
		out[i / 32] = v;
}

// out[4*i+0..3] = shfl_up(v,1), shfl_xor(v,3), shfl_idx(v,lane^5 width 8), laneid.
extern "C" __global__ KERF_PTX60 void shuffles(const int *in, int *out) {
	unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
	int v = in[i];
	out[4 * i + 0] = __shfl_up_sync(0xffffffffu, v, 1);
	out[4 * i + 1] = __shfl_xor_sync(0xffffffffu, v, 3);
	out[4 * i + 2] = __shfl_sync(0xffffffffu, v, (threadIdx.x & 7) ^ 5, 8);
	out[4 * i + 3] = (int)kerf_laneid();
}
