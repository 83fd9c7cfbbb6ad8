extern "C" __global__ void local_sort(const int *in, int *out, int n) {
  int a[16];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  for (int k = 0; k < 16; k++) a[k] = in[(i * 16 + k * 7) % (n * 16)];
  for (int k = 1; k < 16; k++) { int v = a[k], j = k - 1; while (j >= 0 && a[j] > v) { a[j + 1] = a[j]; j--; } a[j + 1] = v; }
  int s = 0;
  for (int k = 0; k < 16; k++) s += a[k] * (k + 1) * a[in[i] & 15];
  out[i] = s;
}
