// Instruction coverage: bit manipulation, special float functions,
// vector loads, local memory, votes, 64-bit and double arithmetic and
// conversions with explicit rounding modes. One thread per element;
// each writes MISC_OUT results.
#include "kerf_device.h"

#define MISC_OUT 32

struct __attribute__((aligned(16))) kerf_float4 {
	float x, y, z, w;
};

extern "C" __global__ KERF_PTX60 void misc(const unsigned int *u, const float *f,
                                            const kerf_float4 *v, const double *dd,
                                            const unsigned char *bytes, unsigned int *out,
                                            unsigned int n) {
	unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
	bool in = i < n;
	unsigned int ballot = __nvvm_vote_ballot_sync(0xffffffffu, in && (u[in ? i : 0] & 1));
	int all = __nvvm_vote_all_sync(0xffffffffu, in);
	if (!in)
		return;
	unsigned int x = u[i];
	float y = f[i];
	kerf_float4 q = v[i];
	double d = dd[i];
	unsigned int *o = out + i * MISC_OUT;
	int loc[8];
	for (int k = 0; k < 8; k++)
		loc[k] = (int)(x >> k) * (k + 1);
	o[0] = __builtin_popcount(x);
	o[1] = __builtin_clz(x | 1);
	o[2] = __builtin_bitreverse32(x);
	o[3] = __nvvm_mulhi_ui(x, 0x9e3779b9u);
	o[4] = (unsigned int)__nvvm_mulhi_i((int)x, -12345);
	o[5] = __nvvm_prmt(x, 0x01234567u, 0x3210 ^ (x & 0x7777));
	o[6] = (x >> 5) & 0x3ff;
	o[7] = __float_as_uint_kerf(__nvvm_sqrt_rn_f(y < 0 ? -y : y));
	o[8] = __float_as_uint_kerf(__nvvm_rcp_rn_f(y));
	o[9] = __float_as_uint_kerf(__nvvm_ex2_approx_f(y * 0.01f));
	o[10] = __float_as_uint_kerf(__nvvm_lg2_approx_f((y < 0 ? -y : y) + 1.0f));
	o[11] = __float_as_uint_kerf(q.x + q.y * q.z - q.w);
	o[12] = (unsigned int)__nvvm_f2i_rn(y);
	o[13] = (unsigned int)__nvvm_f2i_rm(y);
	o[14] = (unsigned int)__nvvm_f2i_rp(y);
	o[15] = __nvvm_f2ui_rz(y);
	o[16] = __float_as_uint_kerf(__nvvm_saturate_f(y));
	o[17] = __float_as_uint_kerf(__nvvm_i2f_rz((int)x));
	o[18] = __float_as_uint_kerf(__nvvm_ui2f_rp(x));
	o[19] = __float_as_uint_kerf((float)d);
	double e = d * 1.5 + (double)x / 3.0;
	unsigned long long eb = __double_as_ull_kerf(e);
	o[20] = (unsigned int)eb;
	o[21] = (unsigned int)(eb >> 32);
	long long ll = (long long)d * (long long)(int)x;
	o[22] = (unsigned int)(ll >> 7);
	o[23] = (unsigned int)((unsigned long long)ll >> 40);
	o[24] = (unsigned int)loc[x & 7] + (unsigned int)loc[(x >> 3) & 7];
	o[25] = ballot;
	o[26] = (unsigned int)all;
	o[27] = bytes[i] + (bytes[n - 1 - i] << 8) + ((int)(signed char)bytes[i] << 16);
	o[28] = __nvvm_d2i_rz(d);
	o[29] = (unsigned int)(long long)__builtin_fmin(d, -d);
	o[30] = min((int)x, (int)(x >> 1)) + max(-(int)x, 7);
	o[31] = __builtin_abs((int)x) ^ ((unsigned int)(y > 2.0f) | ((unsigned int)(y != y) << 1) |
	                                  ((unsigned int)!(y <= 1.0f) << 2));
}
