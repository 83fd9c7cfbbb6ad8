extern "C" __global__ void warp_redux(const unsigned *in, unsigned *out) {
  unsigned v = in[threadIdx.x];
  out[threadIdx.x * 4 + 0] = __reduce_add_sync(0xffffffff, v);
  out[threadIdx.x * 4 + 1] = __reduce_min_sync(0xffffffff, v);
  out[threadIdx.x * 4 + 2] = __reduce_max_sync(0xffffffff, (int)v);
  out[threadIdx.x * 4 + 3] = __reduce_or_sync(0xffffffff, v) ^ __reduce_and_sync(0xffffffff, v) ^ __reduce_xor_sync(0xffffffff, v);
}
