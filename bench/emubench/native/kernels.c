// The benchmark kernels compiled for the CPU: each CUDA kernel's body as a
// loop over the thread index, one block after another, with each
// __syncthreads() ending one loop over the block's threads. Run as
//   kernels KERNEL SECONDS
// it launches KERNEL repeatedly for about SECONDS on one core and prints
// "LAUNCHES NANOSECONDS FASTEST-LAUNCH-NS CHECKSUM".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#define TILE 16

static void matmul(const float *A, const float *B, float *C, int M, int N, int K) {
	static float As[TILE][TILE], Bs[TILE][TILE];
	float acc[TILE][TILE];
	for (int by = 0; by < (M + TILE - 1) / TILE; by++)
		for (int bx = 0; bx < (N + TILE - 1) / TILE; bx++) {
			memset(acc, 0, sizeof acc);
			for (int t = 0; t < K; t += TILE) {
				for (int ty = 0; ty < TILE; ty++)
					for (int tx = 0; tx < TILE; tx++) {
						int row = by * TILE + ty, col = bx * TILE + tx;
						As[ty][tx] = (row < M && t + tx < K) ? A[row * K + t + tx] : 0.0f;
						Bs[ty][tx] = (col < N && t + ty < K) ? B[(t + ty) * N + col] : 0.0f;
					}
				for (int ty = 0; ty < TILE; ty++)
					for (int tx = 0; tx < TILE; tx++)
						for (int k = 0; k < TILE; k++)
							acc[ty][tx] = fmaf(As[ty][k], Bs[k][tx], acc[ty][tx]);
			}
			for (int ty = 0; ty < TILE; ty++)
				for (int tx = 0; tx < TILE; tx++) {
					int row = by * TILE + ty, col = bx * TILE + tx;
					if (row < M && col < N)
						C[row * N + col] = acc[ty][tx];
				}
		}
}

static void reduce_sum(const float *in, float *out, unsigned n, unsigned blocks, unsigned bdim) {
	float *sdata = malloc(bdim * sizeof(float));
	for (unsigned b = 0; b < blocks; b++) {
		for (unsigned tid = 0; tid < bdim; tid++) {
			unsigned i = b * (bdim * 2) + tid;
			float v = 0.0f;
			if (i < n)
				v = in[i];
			if (i + bdim < n)
				v += in[i + bdim];
			sdata[tid] = v;
		}
		for (unsigned s = bdim / 2; s > 0; s >>= 1)
			for (unsigned tid = 0; tid < bdim; tid++)
				if (tid < s)
					sdata[tid] += sdata[tid + s];
		out[b] = sdata[0];
	}
	free(sdata);
}

static void vadd(const float *a, const float *b, float *c, unsigned n, unsigned blocks, unsigned bdim) {
	for (unsigned blk = 0; blk < blocks; blk++)
		for (unsigned tid = 0; tid < bdim; tid++) {
			unsigned i = blk * bdim + tid;
			if (i < n)
				c[i] = a[i] + b[i];
		}
}

static float *filled(unsigned n) {
	float *p = malloc(n * sizeof(float));
	for (unsigned i = 0; i < n; i++)
		p[i] = (float)(i % 17) * 0.25f;
	return p;
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s matmul|reduce|vadd SECONDS\n", argv[0]);
		return 2;
	}
	const char *k = argv[1];
	double limit = atof(argv[2]) * 1e9;
	enum { MM = 128, RN = 1 << 20, RB = 256, VN = 1 << 20, VB = 256 };
	float *a, *b, *c;
	unsigned outn;
	if (!strcmp(k, "matmul")) {
		a = filled(MM * MM), b = filled(MM * MM), c = filled(MM * MM), outn = MM * MM;
	} else if (!strcmp(k, "reduce")) {
		a = filled(RN), b = 0, c = filled(RN / (2 * RB)), outn = RN / (2 * RB);
	} else if (!strcmp(k, "vadd")) {
		a = filled(VN), b = filled(VN), c = filled(VN), outn = VN;
	} else {
		fprintf(stderr, "no kernel %s\n", k);
		return 2;
	}
	long launches = 0;
	double start = now(), el, fastest = 0, t0 = start;
	do {
		if (k[0] == 'm')
			matmul(a, b, c, MM, MM, MM);
		else if (k[0] == 'r')
			reduce_sum(a, c, RN, RN / (2 * RB), RB);
		else
			vadd(a, b, c, VN, VN / VB, VB);
		launches++;
		double t1 = now();
		if (launches == 1 || t1 - t0 < fastest)
			fastest = t1 - t0;
		t0 = t1;
		el = t1 - start;
	} while (el < limit);
	double sum = 0;
	for (unsigned i = 0; i < outn; i++)
		sum += c[i];
	printf("%ld %.0f %.0f %g\n", launches, el, fastest, sum);
	return 0;
}
