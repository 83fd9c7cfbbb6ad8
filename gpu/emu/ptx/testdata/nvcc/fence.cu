__device__ unsigned count = 0;
extern "C" __global__ void last_block(float *partial, float *result) {
  __shared__ bool last;
  if (threadIdx.x == 0) {
    partial[blockIdx.x] = blockIdx.x;
    __threadfence();
    unsigned v = atomicInc(&count, gridDim.x);
    last = (v == gridDim.x - 1);
  }
  __syncthreads();
  if (last && threadIdx.x == 0) {
    float s = 0;
    for (int i = 0; i < gridDim.x; i++) s += partial[i];
    *result = s;
    __threadfence_block(); __threadfence_system();
  }
}
