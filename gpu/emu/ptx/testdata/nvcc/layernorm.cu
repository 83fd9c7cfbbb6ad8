extern "C" __global__ void layernorm(const float *x, float *y, const float *g, const float *b, int cols, float eps) {
  __shared__ float sm[2];
  const float *row = x + blockIdx.x * cols;
  float s = 0, s2 = 0;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) { float v = row[c]; s += v; s2 += v * v; }
  for (int o = 16; o > 0; o >>= 1) { s += __shfl_xor_sync(0xffffffff, s, o); s2 += __shfl_xor_sync(0xffffffff, s2, o); }
  if (threadIdx.x == 0) { sm[0] = s / cols; sm[1] = rsqrtf(s2 / cols - sm[0] * sm[0] + eps); }
  __syncthreads();
  for (int c = threadIdx.x; c < cols; c += blockDim.x)
    y[blockIdx.x * cols + c] = (row[c] - sm[0]) * sm[1] * g[c] + b[c];
}
