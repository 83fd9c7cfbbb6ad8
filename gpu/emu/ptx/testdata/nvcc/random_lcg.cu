__device__ unsigned xorshift(unsigned s) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; }
extern "C" __global__ void monte_carlo(unsigned seed, int iters, unsigned long long *hits) {
  unsigned s = seed ^ (blockIdx.x * blockDim.x + threadIdx.x) * 2654435761u;
  unsigned long long h = 0;
  for (int k = 0; k < iters; k++) {
    s = xorshift(s); float x = s * 2.3283064e-10f;
    s = xorshift(s); float y = s * 2.3283064e-10f;
    h += x * x + y * y <= 1.f;
  }
  atomicAdd(hits, h);
}
