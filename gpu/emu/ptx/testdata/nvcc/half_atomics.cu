// Atomic adds on halves: many threads add into one __half, one __half2
// and one __nv_bfloat16; and each thread adds into its own element, so
// that the rounding of each add can be checked.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

extern "C" __global__ void half_sums(__half *h, __half2 *h2, __nv_bfloat16 *b, const float *x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    atomicAdd(h, __float2half(x[i]));
    atomicAdd(h2, __floats2half2_rn(x[i], -2 * x[i]));
    atomicAdd(b, __float2bfloat16(x[i]));
  }
}

extern "C" __global__ void half_add_each(__half *acc, const __half *y, __half *old, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) old[i] = atomicAdd(&acc[i], y[i]);
}
