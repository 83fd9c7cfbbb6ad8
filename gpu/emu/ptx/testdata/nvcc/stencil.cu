#define R 3
extern "C" __global__ void stencil1d(const float *in, float *out, int n) {
  __shared__ float tile[256 + 2 * R];
  int g = blockIdx.x * blockDim.x + threadIdx.x, l = threadIdx.x + R;
  tile[l] = g < n ? in[g] : 0.f;
  if (threadIdx.x < R) {
    tile[l - R] = g >= R ? in[g - R] : 0.f;
    tile[l + blockDim.x] = g + blockDim.x < n ? in[g + blockDim.x] : 0.f;
  }
  __syncthreads();
  float s = 0;
  for (int k = -R; k <= R; k++) s += tile[l + k];
  if (g < n) out[g] = s;
}
extern "C" __global__ void jacobi2d(const double *a, double *b, int nx, int ny) {
  int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x > 0 && y > 0 && x < nx - 1 && y < ny - 1)
    b[y * nx + x] = 0.25 * (a[y * nx + x - 1] + a[y * nx + x + 1] + a[(y - 1) * nx + x] + a[(y + 1) * nx + x]);
}
