extern "C" __global__ void bits32(const unsigned *a, const unsigned *b, unsigned *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned x = a[i], y = b[i];
  out[i * 10 + 0] = __clz(x);
  out[i * 10 + 1] = __popc(x);
  out[i * 10 + 2] = __brev(x);
  out[i * 10 + 3] = __byte_perm(x, y, y & 0x7777);
  out[i * 10 + 4] = __funnelshift_l(x, y, y & 63);
  out[i * 10 + 5] = __funnelshift_r(x, y, x & 63);
  out[i * 10 + 6] = __ffs(x);
  out[i * 10 + 7] = __clzll(((unsigned long long)x << 32) | y) + __popcll(((unsigned long long)y << 32) | x);
  out[i * 10 + 8] = __funnelshift_lc(x, y, y) ^ __funnelshift_rc(y, x, x);
  out[i * 10 + 9] = __usad(x, y, 7) + __hadd(x, y) + __rhadd(x, y) + __umulhi(x, y) + __mul24(x, y);
}
extern "C" __global__ void bits64(const unsigned long long *a, unsigned long long *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned long long x = a[i];
  out[i * 4 + 0] = __brevll(x);
  out[i * 4 + 1] = __ffsll(x);
  out[i * 4 + 2] = __umul64hi(x, x ^ 0x5555);
  out[i * 4 + 3] = 63 - __clzll(x | 1);
}
