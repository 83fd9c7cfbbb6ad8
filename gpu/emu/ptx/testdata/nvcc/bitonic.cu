extern "C" __global__ void bitonic_step(int *a, int j, int k) {
  unsigned i = threadIdx.x + blockDim.x * blockIdx.x, ixj = i ^ j;
  if (ixj > i) {
    bool up = (i & k) == 0;
    if ((up && a[i] > a[ixj]) || (!up && a[i] < a[ixj])) { int t = a[i]; a[i] = a[ixj]; a[ixj] = t; }
  }
}
extern "C" __global__ void odd_even_sort(float *a, int n) {
  __shared__ float s[512];
  int t = threadIdx.x;
  if (t < n) s[t] = a[t];
  __syncthreads();
  for (int p = 0; p < n; p++) {
    int i = 2 * t + (p & 1);
    if (i + 1 < n && s[i] > s[i + 1]) { float x = s[i]; s[i] = s[i + 1]; s[i + 1] = x; }
    __syncthreads();
  }
  if (t < n) a[t] = s[t];
}
