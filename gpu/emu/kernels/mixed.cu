// Arithmetic mix: fma, min/max, integer division and remainder (signed
// and unsigned, 32 and 64 bit), float<->int conversions.
#include "kerf_device.h"

extern "C" __global__ void mixed(const float *x, const int *a, const int *b, int *iout,
                                 float *fout, long long *lout, unsigned int n) {
	unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n)
		return;
	float xf = x[i];
	int ai = a[i], bi = b[i];
	float f = fmaf(xf, 2.5f, (float)ai);
	f = fminf(fmaxf(f, -1000.0f), 1000.0f);
	int q = bi != 0 ? ai / bi : 0;
	int r = bi != 0 ? ai % bi : 0;
	unsigned int uq = bi != 0 ? (unsigned int)ai / (unsigned int)bi : 0;
	unsigned int ur = bi != 0 ? (unsigned int)ai % (unsigned int)bi : 0;
	int t = (int)xf; // truncation
	int lo = min(ai, bi), hi = max(ai, bi);
	long long la = (long long)ai * 1000003LL;
	long long lb = bi != 0 ? (long long)bi : 7;
	iout[8 * i + 0] = q;
	iout[8 * i + 1] = r;
	iout[8 * i + 2] = (int)uq;
	iout[8 * i + 3] = (int)ur;
	iout[8 * i + 4] = t;
	iout[8 * i + 5] = lo;
	iout[8 * i + 6] = hi;
	iout[8 * i + 7] = (int)(unsigned int)(xf < 0 ? -xf : xf);
	fout[2 * i + 0] = f;
	fout[2 * i + 1] = (float)(unsigned int)bi + (float)q * 0.5f;
	lout[2 * i + 0] = la / lb;
	lout[2 * i + 1] = la % lb;
}
