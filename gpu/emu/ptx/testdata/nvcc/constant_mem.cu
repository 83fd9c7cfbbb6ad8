__constant__ float coeffs[16];
__constant__ int table[4] = {1, 2, 3, 5};
__device__ int counter;
extern "C" __global__ void poly(const float *x, float *y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = 0;
  for (int k = 15; k >= 0; k--) v = v * x[i] + coeffs[k];
  y[i] = v * table[i & 3];
  atomicAdd(&counter, 1);
}
