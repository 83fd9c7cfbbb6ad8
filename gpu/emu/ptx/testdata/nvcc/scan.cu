extern "C" __global__ void scan_block(const int *in, int *out, int n) {
  __shared__ int tmp[1024];
  int t = threadIdx.x;
  tmp[t] = t < n ? in[t] : 0;
  __syncthreads();
  for (int o = 1; o < blockDim.x; o <<= 1) {
    int v = t >= o ? tmp[t - o] : 0;
    __syncthreads();
    tmp[t] += v;
    __syncthreads();
  }
  if (t < n) out[t] = tmp[t];
}
