#include <cassert>
extern "C" __global__ void checked(const int *a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) assert(a[i] >= 0);
}
