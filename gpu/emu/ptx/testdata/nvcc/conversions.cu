extern "C" __global__ void conv(const float *f, const double *d, const int *i32, const long long *i64, int *oi, float *of, double *od, unsigned long long *ou, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  oi[i * 4 + 0] = __float2int_rn(f[i]); oi[i * 4 + 1] = __float2int_rd(f[i]); oi[i * 4 + 2] = __float2int_ru(f[i]); oi[i * 4 + 3] = (int)d[i];
  of[i * 4 + 0] = __int2float_rz(i32[i]); of[i * 4 + 1] = (float)i64[i]; of[i * 4 + 2] = __double2float_rd(d[i]); of[i * 4 + 3] = __ll2float_ru(i64[i]);
  od[i * 2 + 0] = (double)i64[i]; od[i * 2 + 1] = __ull2double_rz((unsigned long long)i64[i]);
  ou[i] = __float2ull_rz(f[i]) ^ (unsigned long long)(unsigned char)i32[i] ^ (unsigned long long)(short)i32[i];
}
