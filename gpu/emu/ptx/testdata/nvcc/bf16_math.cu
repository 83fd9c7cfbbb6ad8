#include <cuda_bf16.h>
extern "C" __global__ void bf16ops(int n, const float *in, __nv_bfloat16 *out, float *back) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    __nv_bfloat16 b = __float2bfloat16(in[i]);
    __nv_bfloat16 c = __hmul(b, b);
    out[i] = __hadd(c, b);
    back[i] = __bfloat162float(out[i]);
  }
}
