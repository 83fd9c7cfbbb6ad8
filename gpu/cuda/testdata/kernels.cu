// Kernels of the GPU validation suite (scripts/gpu-test.sh), built with
// nvcc into a cubin and a fatbin and loaded with cuModuleLoadData by
// kerftest.c. Plain CUDA C++, no runtime API.

extern "C" __global__ void vadd(const float *a, const float *b, float *c, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		c[i] = a[i] + b[i];
}

// C[M][N] = A[M][K] * B[K][N], row-major, 16x16 tiles. Block 16x16, grid
// ceil(N/16) x ceil(M/16).
#define TILE 16
extern "C" __global__ void matmul(const float *A, const float *B, float *C, int M, int N, int K) {
	__shared__ float As[TILE][TILE];
	__shared__ float Bs[TILE][TILE];
	int tx = threadIdx.x, ty = threadIdx.y;
	int row = blockIdx.y * TILE + ty;
	int col = blockIdx.x * TILE + tx;
	float acc = 0.0f;
	for (int t = 0; t < K; t += TILE) {
		As[ty][tx] = (row < M && t + tx < K) ? A[row * K + t + tx] : 0.0f;
		Bs[ty][tx] = (col < N && t + ty < K) ? B[(t + ty) * N + col] : 0.0f;
		__syncthreads();
		for (int k = 0; k < TILE; k++)
			acc = fmaf(As[ty][k], Bs[k][tx], acc);
		__syncthreads();
	}
	if (row < M && col < N)
		C[row * N + col] = acc;
}

// Writes 1 GiB past its buffer: CUDA_ERROR_ILLEGAL_ADDRESS.
extern "C" __global__ void oob_write(float *p, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	p[(long long)i + n + (1ll << 28)] = 1.0f;
}
