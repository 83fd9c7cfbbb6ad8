// Shared-memory block reduction: out[blockIdx.x] = sum of the block's
// slice of in: gpu/emu/kernels/reduce.cu written for nvcc.
extern __shared__ float kerf_reduce_sdata[];

extern "C" __global__ void reduce_sum(const float *in, float *out, unsigned int n) {
	float *sdata = kerf_reduce_sdata;
	unsigned int tid = threadIdx.x;
	unsigned int i = blockIdx.x * (blockDim.x * 2) + tid;
	float v = 0.0f;
	if (i < n)
		v = in[i];
	if (i + blockDim.x < n)
		v += in[i + blockDim.x];
	sdata[tid] = v;
	__syncthreads();
	for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (tid < s)
			sdata[tid] += sdata[tid + s];
		__syncthreads();
	}
	if (tid == 0)
		out[blockIdx.x] = sdata[0];
}
