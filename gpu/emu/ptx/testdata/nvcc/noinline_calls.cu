__device__ __noinline__ float clampf(float v, float lo, float hi) { return fminf(fmaxf(v, lo), hi); }
__device__ __noinline__ void accumulate(float *dst, float v) { *dst += v; }
__device__ __noinline__ int sum_local(const int *a, int n) { int buf[8]; for (int k = 0; k < 8; k++) buf[k] = a[k % n]; int s = 0; for (int k = 0; k < 8; k++) s += buf[(k * 3) & 7]; return s; }
extern "C" __global__ void calls(const float *x, float *y, const int *a, int *b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = clampf(x[i], -1.f, 1.f);
  accumulate(&y[i], v);
  b[i] = sum_local(a + i, 1 + (i & 3));
}
