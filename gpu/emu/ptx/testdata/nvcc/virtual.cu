struct Shape { __device__ virtual float area() const = 0; };
struct Sq : Shape { float s; __device__ Sq(float s) : s(s) {} __device__ float area() const override { return s * s; } };
struct Ci : Shape { float r; __device__ Ci(float r) : r(r) {} __device__ float area() const override { return 3.14159f * r * r; } };
extern "C" __global__ void areas(const float *x, float *y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  Sq s(x[i]); Ci c(x[i]);
  const Shape *p = (i & 1) ? (const Shape *)&s : (const Shape *)&c;
  y[i] = p->area();
}
