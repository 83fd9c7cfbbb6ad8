extern "C" __global__ void dyn_shared(const double *in, double *out, int n) {
  extern __shared__ double buf[];
  int t = threadIdx.x;
  buf[t] = t < n ? in[t] : 0;
  __syncthreads();
  out[t] = buf[blockDim.x - 1 - t];
}
