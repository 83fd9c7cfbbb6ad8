// Kernels whose parameter lists exercise the layout rules: scalars of
// every size, pointers, vector types and aggregates with their own
// alignment, and no parameters at all. layout_test.go builds them with
// nvcc into PTX, a cubin and a fatbin and checks that the layouts read
// from each agree with the declarations. The bodies only keep every
// parameter alive.

struct __align__(16) padded { float x[5]; };
struct mixed { char c; double d; };

extern "C" __global__ void scalars(char a, short b, int c, long long d, float e, double f, char g) {
	if (c > 0) *(double *)d = a + b + e + f + g;
}

extern "C" __global__ void aggregates(char a, double *p, float4 v, int n, mixed m, padded q, char tail) {
	if (n > 0) p[0] = a + v.x + m.d + q.x[4] + tail;
}

extern "C" __global__ void vadd(const float *a, const float *b, float *c, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) c[i] = a[i] + b[i];
}

extern "C" __global__ void noparams() {}

// A C++ kernel: its name is mangled in every image.
template <typename T> __global__ void scale(T *p, T k) { p[threadIdx.x] *= k; }
template __global__ void scale<double>(double *, double);
