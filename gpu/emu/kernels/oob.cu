// Deliberately out of bounds: every thread writes far past its buffer.
#include "kerf_device.h"

extern "C" __global__ void oob_write(float *p, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	p[i + n + (1 << 24)] = 1.0f;
}

extern "C" __global__ void oob_read(const float *p, float *q, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	q[i] = p[i - (1 << 20)];
}
