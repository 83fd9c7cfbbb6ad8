extern "C" __global__ void fmath(const float *x, float *y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = x[i];
  y[i * 8 + 0] = sqrtf(fabsf(v)); y[i * 8 + 1] = __expf(v); y[i * 8 + 2] = __logf(fabsf(v) + 1);
  y[i * 8 + 3] = sinf(v); y[i * 8 + 4] = floorf(v) + ceilf(v) + truncf(v) + rintf(v);
  y[i * 8 + 5] = fminf(v, 1.f) * copysignf(1.f, v); y[i * 8 + 6] = __fdividef(v, 3.f) + __saturatef(v);
  y[i * 8 + 7] = (float)(int)v + (float)(unsigned)v + __int_as_float(__float_as_int(v) ^ 1);
}
extern "C" __global__ void dmath(const double *x, double *y, long long *z, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double v = x[i];
  y[i * 4 + 0] = sqrt(fabs(v)) + fma(v, v, 1.0);
  y[i * 4 + 1] = exp(v * 1e-3) + log1p(fabs(v));
  y[i * 4 + 2] = fmin(v, 2.0) + fmax(v, -2.0) + floor(v);
  y[i * 4 + 3] = (double)(float)v;
  z[i] = (long long)v + __double2ll_rz(v) + __double_as_longlong(v);
}
