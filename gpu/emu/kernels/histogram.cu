// Atomic histogram: per-block counts in shared memory, merged into the
// global histogram with atomicAdd. Values are bucketed by v % nbins;
// nbins must be <= 256. Also a plain global-atomic variant and a float
// atomic sum.
#include "kerf_device.h"

extern "C" __global__ void histogram(const unsigned int *data, unsigned int n,
                                     unsigned int *bins, unsigned int nbins) {
	__shared__ unsigned int local[256];
	for (unsigned int b = threadIdx.x; b < nbins; b += blockDim.x)
		local[b] = 0;
	__syncthreads();
	unsigned int stride = blockDim.x * gridDim.x;
	for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
		atomicAdd(&local[data[i] % nbins], 1u);
	__syncthreads();
	for (unsigned int b = threadIdx.x; b < nbins; b += blockDim.x)
		if (local[b])
			atomicAdd(&bins[b], local[b]);
}

extern "C" __global__ void histogram_global(const unsigned int *data, unsigned int n,
                                            unsigned int *bins, unsigned int nbins) {
	unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		atomicAdd(&bins[data[i] % nbins], 1u);
}

extern "C" __global__ void atomic_sums(const float *x, const int *y, unsigned int n,
                                       float *fsum, int *isum, unsigned long long *usum) {
	unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) {
		atomicAdd(fsum, x[i]);
		atomicAdd(isum, y[i]);
		atomicAdd(usum, (unsigned long long)(unsigned int)y[i]);
	}
}
