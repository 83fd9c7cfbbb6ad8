extern "C" __global__ void spmv_csr(int rows, const int *rp, const int *ci, const float *v, const float *x, float *y) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r < rows) { float s = 0; for (int k = rp[r]; k < rp[r + 1]; k++) s += v[k] * x[ci[k]]; y[r] = s; }
}
