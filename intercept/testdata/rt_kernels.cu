/* A CUDA-runtime program with kernels: <<<>>> launches on the default
 * stream and on a created stream, a block reduction in shared memory,
 * kernel timing with events, and an out-of-range launch refused.
 * argv[1] (the slice's memory) is not used. */
#include "rt_common.h"

__global__ void vadd(const float *a, const float *b, float *c, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		c[i] = a[i] + b[i];
}

__global__ void scale(float *x, float k, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		x[i] *= k;
}

// Each block sums its 256 inputs into out[blockIdx.x].
__global__ void block_sum(const float *in, float *out) {
	__shared__ float s[256];
	int t = threadIdx.x;
	s[t] = in[blockIdx.x * 256 + t];
	__syncthreads();
	for (int w = 128; w > 0; w /= 2) {
		if (t < w)
			s[t] += s[t + w];
		__syncthreads();
	}
	if (t == 0)
		out[blockIdx.x] = s[0];
}

int main(void) {
	const int n = 4096, blocks = n / 256;
	float *ha = (float *)malloc(n * sizeof(float)), *hb = (float *)malloc(n * sizeof(float));
	float *hc = (float *)malloc(n * sizeof(float)), sums[16];
	for (int i = 0; i < n; i++) {
		ha[i] = (float)i;
		hb[i] = (float)(2 * i);
	}
	float *a, *b, *c, *out;
	CHECK(cudaMalloc(&a, n * sizeof(float)));
	CHECK(cudaMalloc(&b, n * sizeof(float)));
	CHECK(cudaMalloc(&c, n * sizeof(float)));
	CHECK(cudaMalloc(&out, blocks * sizeof(float)));
	CHECK(cudaMemcpy(a, ha, n * sizeof(float), cudaMemcpyHostToDevice));
	CHECK(cudaMemcpy(b, hb, n * sizeof(float), cudaMemcpyHostToDevice));

	cudaEvent_t start, stop;
	CHECK(cudaEventCreate(&start));
	CHECK(cudaEventCreate(&stop));
	CHECK(cudaEventRecord(start, 0));
	vadd<<<(n + 127) / 128, 128>>>(a, b, c, n);
	CHECK(cudaGetLastError());
	CHECK(cudaEventRecord(stop, 0));
	CHECK(cudaMemcpy(hc, c, n * sizeof(float), cudaMemcpyDeviceToHost));
	for (int i = 0; i < n; i++)
		if (hc[i] != 3.0f * i) {
			fprintf(stderr, "vadd: c[%d] = %g, want %g\n", i, hc[i], 3.0f * i);
			return 1;
		}
	float ms = -1;
	CHECK(cudaEventElapsedTime(&ms, start, stop));
	if (ms < 0) {
		fprintf(stderr, "vadd took %g ms\n", ms);
		return 1;
	}

	// On a created stream: scale, then reduce, ordered after the copy.
	cudaStream_t s;
	CHECK(cudaStreamCreate(&s));
	CHECK(cudaMemcpyAsync(c, ha, n * sizeof(float), cudaMemcpyHostToDevice, s));
	scale<<<blocks, 256, 0, s>>>(c, 2.0f, n);
	block_sum<<<blocks, 256, 0, s>>>(c, out);
	CHECK(cudaGetLastError());
	CHECK(cudaMemcpyAsync(sums, out, blocks * sizeof(float), cudaMemcpyDeviceToHost, s));
	CHECK(cudaStreamSynchronize(s));
	for (int blk = 0; blk < blocks; blk++) {
		double want = 0;
		for (int i = blk * 256; i < (blk + 1) * 256; i++)
			want += 2.0 * i;
		if (sums[blk] != (float)want) {
			fprintf(stderr, "block_sum: sums[%d] = %g, want %g\n", blk, sums[blk], want);
			return 1;
		}
	}

	// A block larger than any device allows is refused at launch.
	vadd<<<1, 4096>>>(a, b, c, n);
	if (cudaGetLastError() == cudaSuccess) {
		fprintf(stderr, "a 4096-thread block was accepted\n");
		return 1;
	}
	CHECK(cudaDeviceSynchronize());

	CHECK(cudaStreamDestroy(s));
	CHECK(cudaEventDestroy(start));
	CHECK(cudaEventDestroy(stop));
	CHECK(cudaFree(a));
	CHECK(cudaFree(b));
	CHECK(cudaFree(c));
	CHECK(cudaFree(out));
	printf("rt_kernels ok\n");
	return 0;
}
