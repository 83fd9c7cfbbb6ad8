#include <cuda_fp16.h>
extern "C" __global__ void haxpy(int n, __half a, const __half *x, __half *y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = __hfma(a, x[i], y[i]);
}
extern "C" __global__ void h2ops(int n, const __half2 *x, const __half2 *y, __half2 *z, float *f) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    __half2 s = __hadd2(x[i], y[i]);
    __half2 p = __hmul2(s, y[i]);
    z[i] = __hmax2(p, __hneg2(s));
    f[i] = __half2float(__low2half(p)) + __half2float(__high2half(p));
  }
}
extern "C" __global__ void hconv(int n, const float *in, __half *out, short *si) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) { __half h = __float2half_rn(in[i]); out[i] = __hlt(h, __float2half(1.0f)) ? h : __hsub(h, __float2half(1.0f)); si[i] = __half2short_rz(h); }
}
