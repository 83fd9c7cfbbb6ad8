extern "C" __global__ void warp_ops(const int *in, unsigned *out) {
  int t = threadIdx.x, v = in[t];
  unsigned b = __ballot_sync(0xffffffff, v > 0);
  int any = __any_sync(0xffffffff, v > 100), all = __all_sync(0xffffffff, v > -100);
  int up = __shfl_up_sync(0xffffffff, v, 3), dn = __shfl_down_sync(0xffffffff, v, 5, 16);
  int idx = __shfl_sync(0xffffffff, v, (t * 7) & 31), x = __shfl_xor_sync(0xffffffff, v, 9);
  unsigned m = __match_any_sync(0xffffffff, v & 3);
  int allEq; unsigned ma = __match_all_sync(0xffffffff, v & 1, &allEq);
  out[t * 8 + 0] = b; out[t * 8 + 1] = any + 2 * all; out[t * 8 + 2] = up; out[t * 8 + 3] = dn;
  out[t * 8 + 4] = idx; out[t * 8 + 5] = x; out[t * 8 + 6] = m; out[t * 8 + 7] = ma + allEq + __activemask();
}
