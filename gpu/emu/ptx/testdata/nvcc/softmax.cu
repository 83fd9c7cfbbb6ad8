extern "C" __global__ void softmax(const float *x, float *y, int rows, int cols) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float *p = x + r * cols;
  float m = -INFINITY;
  for (int c = 0; c < cols; c++) m = fmaxf(m, p[c]);
  float s = 0;
  for (int c = 0; c < cols; c++) s += expf(p[c] - m);
  for (int c = 0; c < cols; c++) y[r * cols + c] = expf(p[c] - m) / s;
}
