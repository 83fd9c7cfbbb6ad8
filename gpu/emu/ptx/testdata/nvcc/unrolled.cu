extern "C" __global__ void no_unroll(const float *x, float *y, int n) {
  float s = 0;
#pragma unroll 1
  for (int k = 0; k < n; k++) s += x[k] * k;
  y[threadIdx.x] = s;
}
