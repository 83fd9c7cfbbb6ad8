#include <cuda/barrier>
extern "C" __global__ void bar_arrive(int *out) {
  __shared__ cuda::barrier<cuda::thread_scope_block> bar;
  if (threadIdx.x == 0) init(&bar, blockDim.x);
  __syncthreads();
  out[threadIdx.x] = threadIdx.x;
  bar.arrive_and_wait();
  out[threadIdx.x] += out[(threadIdx.x + 1) % blockDim.x];
}
