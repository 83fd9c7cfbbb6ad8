typedef float (*op_t)(float, float);
__device__ float op_add(float a, float b) { return a + b; }
__device__ float op_mul(float a, float b) { return a * b; }
__device__ float op_max(float a, float b) { return fmaxf(a, b); }
__device__ op_t ops[3] = {op_add, op_mul, op_max};
extern "C" __global__ void apply(const int *sel, const float *a, const float *b, float *c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = ops[sel[i] % 3](a[i], b[i]);
}
