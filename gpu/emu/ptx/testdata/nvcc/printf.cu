#include <cstdio>
extern "C" __global__ void hello(int n) {
  if (threadIdx.x < n) printf("thread %d of block %d: %f\n", threadIdx.x, blockIdx.x, 1.5 * threadIdx.x);
}
