extern "C" __global__ void log2i(const unsigned *in, int *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) { int r; asm("bfind.u32 %0, %1;" : "=r"(r) : "r"(in[i])); int s; asm("bfind.shiftamt.s32 %0, %1;" : "=r"(s) : "r"(in[i])); out[i] = r + s; }
}
