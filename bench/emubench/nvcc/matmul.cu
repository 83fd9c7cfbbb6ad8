// Tiled matrix multiply C[M][N] = A[M][K] * B[K][N], row-major, with
// 16x16 tiles in shared memory: gpu/emu/kernels/matmul.cu written for nvcc.
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
