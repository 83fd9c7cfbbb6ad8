extern "C" __global__ void timed(const float *in, float *out, long long *cycles, unsigned *c32, int n) {
  long long t0 = clock64();
  unsigned c0 = clock();
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[i] * 2.0f;
  cycles[i] = clock64() - t0;
  c32[i] = clock() - c0;
}
