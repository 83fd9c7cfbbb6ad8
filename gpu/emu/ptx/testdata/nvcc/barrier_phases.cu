// A block-wide cuda::barrier used for several phases: each thread reads
// its neighbour's value of the previous phase.
#include <cuda/barrier>
extern "C" __global__ void rotate(int *a, int *b, int rounds) {
  __shared__ cuda::barrier<cuda::thread_scope_block> bar;
  if (threadIdx.x == 0) init(&bar, blockDim.x);
  __syncthreads();
  int i = threadIdx.x, n = blockDim.x;
  a[i] = i;
  for (int r = 0; r < rounds; r++) {
    bar.arrive_and_wait();
    b[i] = a[(i + 1) % n] + 1;
    bar.arrive_and_wait();
    a[i] = b[i];
  }
}
