extern "C" __global__ void i64(const long long *a, const long long *b, long long *o, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  long long x = a[i], y = b[i] | 1;
  o[i * 4 + 0] = x / y; o[i * 4 + 1] = x % y; o[i * 4 + 2] = __mul64hi(x, y) + llabs(x); o[i * 4 + 3] = (unsigned long long)x >> (y & 63);
}
