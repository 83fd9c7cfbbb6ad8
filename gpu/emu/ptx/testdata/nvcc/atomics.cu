extern "C" __global__ void atomics(int *i32, unsigned *u32, unsigned long long *u64, float *f32, double *f64, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  atomicAdd(&i32[0], i); atomicSub(&i32[1], i); atomicMin(&i32[2], -i); atomicMax(&i32[3], i);
  atomicAnd(&u32[0], ~(1u << (i & 31))); atomicOr(&u32[1], 1u << (i & 31)); atomicXor(&u32[2], i);
  atomicInc(&u32[3], 100); atomicDec(&u32[4], 100); atomicExch(&u32[5], i);
  atomicCAS(&u32[6], (unsigned)i - 1, (unsigned)i);
  atomicAdd(&u64[0], (unsigned long long)i); atomicMin(&u64[1], (unsigned long long)i); atomicMax(&u64[2], (unsigned long long)i);
  atomicCAS(&u64[3], 0ull, (unsigned long long)i);
  atomicAdd(&f32[0], 0.5f); atomicAdd(&f64[0], 0.25);
  atomicMin((long long *)&u64[4], (long long)-i);
}
extern "C" __global__ void atomic_cas16(unsigned short *p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) { unsigned short old = p[0], assumed; do { assumed = old; old = atomicCAS(p, assumed, (unsigned short)(assumed + 1)); } while (old != assumed); }
}
