// 5-point 2D stencil on a W x H grid with weights from constant memory.
// Border cells are copied unchanged.
#include "kerf_device.h"

__constant__ float kerf_stencil_w[5] = {0.5f, 0.125f, 0.125f, 0.125f, 0.125f};
__device__ unsigned int kerf_stencil_calls;

extern "C" __global__ void stencil5(const float *in, float *out, int w, int h) {
	int x = blockIdx.x * blockDim.x + threadIdx.x;
	int y = blockIdx.y * blockDim.y + threadIdx.y;
	if (x == 0 && y == 0)
		atomicAdd(&kerf_stencil_calls, 1u);
	if (x >= w || y >= h)
		return;
	int i = y * w + x;
	if (x == 0 || y == 0 || x == w - 1 || y == h - 1) {
		out[i] = in[i];
		return;
	}
	out[i] = kerf_stencil_w[0] * in[i] + kerf_stencil_w[1] * in[i - 1] +
	         kerf_stencil_w[2] * in[i + 1] + kerf_stencil_w[3] * in[i - w] +
	         kerf_stencil_w[4] * in[i + w];
}
