extern "C" __global__ void mandel(int *out, int w, int h, int maxIt) {
  int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= w || y >= h) return;
  float cr = -2.f + 3.f * x / w, ci = -1.5f + 3.f * y / h, zr = 0, zi = 0;
  int it = 0;
  while (it < maxIt && zr * zr + zi * zi < 4.f) { float t = zr * zr - zi * zi + cr; zi = 2.f * zr * zi + ci; zr = t; it++; }
  out[y * w + x] = it;
}
