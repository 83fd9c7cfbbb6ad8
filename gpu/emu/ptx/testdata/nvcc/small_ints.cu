extern "C" __global__ void small_ints(const char *a, const char *b, const short *c, const short *d, char *o8, short *o16, unsigned short *u16, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  char x = a[i], y = b[i];
  short s = c[i], t = d[i];
  o8[i] = (char)(x * y + (x & y) - (x ^ 3));
  o16[i] = (short)(s * t - (s >> 2) + (t | 5));
  unsigned short us = (unsigned short)s, ut = (unsigned short)t;
  u16[i] = us > ut ? us - ut : (unsigned short)(ut / (us | 1));
  o16[n + i] = s < t ? s : t;
  o8[n + i] = (char)max((int)x, (int)y);
}
extern "C" __global__ void pixels(const uchar4 *in, uchar4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  uchar4 p = in[i];
  unsigned char g = (unsigned char)((p.x * 77 + p.y * 150 + p.z * 29) >> 8);
  out[i] = make_uchar4(g, g, g, p.w);
}
