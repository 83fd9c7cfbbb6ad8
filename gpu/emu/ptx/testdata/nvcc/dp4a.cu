extern "C" __global__ void dot8(const int *a, const int *b, int *out, unsigned *uout, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    out[i] = __dp4a(a[i], b[i], i);
    uout[i] = __dp4a((unsigned)a[i], (unsigned)b[i], 7u) + __dp2a_lo(a[i], b[i], 1) + __dp2a_hi((unsigned)a[i], (unsigned)b[i], 2u);
  }
}
