extern "C" __global__ void surf_write(cudaSurfaceObject_t s, int w) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  if (x < w) surf1Dwrite<float>(x * 0.5f, s, x * 4);
}
