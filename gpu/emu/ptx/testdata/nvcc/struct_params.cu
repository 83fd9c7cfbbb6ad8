struct Params { float scale; int n; float bias[4]; };
struct Pair { int a; double b; };
__device__ __noinline__ Pair make_pair_dev(int a, double b) { Pair p; p.a = a * 2; p.b = b / 2; return p; }
extern "C" __global__ void with_struct(Params p, const float *x, float *y, Pair *out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < p.n) { y[i] = x[i] * p.scale + p.bias[i & 3]; out[i] = make_pair_dev(i, x[i]); }
}
