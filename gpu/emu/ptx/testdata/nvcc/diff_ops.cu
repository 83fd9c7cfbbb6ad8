// Device code that also compiles for the host: each body computes one
// element i. On the device a kernel runs it for every thread; on the
// host main runs it in a loop. Built as C++ by the host compiler, the
// same bodies give the reference the emulator is compared with.
#include <stdint.h>
#ifdef __CUDACC__
#define DEV __device__ __forceinline__
#define KERNEL(name, T) \
  extern "C" __global__ void name##_k(const T *a, const T *b, T *o, int n) { \
    int i = blockIdx.x * blockDim.x + threadIdx.x; \
    if (i < n) name(i, a, b, o); \
  }
#else
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define DEV static inline
static inline float __int_as_float(unsigned x) { float f; memcpy(&f, &x, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned x; memcpy(&x, &f, 4); return x; }
static inline double __longlong_as_double(uint64_t x) { double f; memcpy(&f, &x, 8); return f; }
static inline uint64_t __double_as_longlong(double f) { uint64_t x; memcpy(&x, &f, 8); return x; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(uint64_t x) { return __builtin_popcountll(x); }
static inline int __clz(unsigned x) { return x ? __builtin_clz(x) : 32; }
static inline int __clzll(uint64_t x) { return x ? __builtin_clzll(x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline unsigned __brev(unsigned x) { unsigned r = 0; for (int k = 0; k < 32; k++) r |= ((x >> k) & 1) << (31 - k); return r; }
static inline int __mulhi(int a, int b) { return (int)(((int64_t)a * b) >> 32); }
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
static inline uint64_t __umul64hi(uint64_t a, uint64_t b) { return (uint64_t)(((unsigned __int128)a * b) >> 64); }
static inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  uint64_t v = ((uint64_t)y << 32) | x; unsigned r = 0;
  for (int k = 0; k < 4; k++) r |= (unsigned)((v >> (8 * ((s >> (4 * k)) & 7))) & 0xff) << (8 * k);
  return r;
}
static inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned sh) { sh &= 31; return sh ? (hi << sh) | (lo >> (32 - sh)) : hi; }
static inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned sh) { sh &= 31; return sh ? (lo >> sh) | (hi << (32 - sh)) : lo; }
static inline unsigned __usad(unsigned x, unsigned y, unsigned z) { return (x > y ? x - y : y - x) + z; }
#include <fenv.h>
#pragma STDC FENV_ACCESS ON
// CUDA's directed-rounding intrinsics, from the host's rounding modes
#define DIRECTED(T, name, mode, expr) \
  static inline T name(T x, T y) { fesetround(mode); volatile T r = (expr); fesetround(FE_TONEAREST); return r; }
#define DIRECTED3(T, name, mode, fn) \
  static inline T name(T x, T y, T z) { fesetround(mode); volatile T r = fn(x, y, z); fesetround(FE_TONEAREST); return r; }
#define DIRECTED1(T, name, mode, fn) \
  static inline T name(T x) { fesetround(mode); volatile T r = fn(x); fesetround(FE_TONEAREST); return r; }
#define ALLMODES(sfx, mode) \
  DIRECTED(float, __fadd_##sfx, mode, x + y) DIRECTED(float, __fmul_##sfx, mode, x * y) \
  DIRECTED(float, __fdiv_##sfx, mode, x / y) DIRECTED3(float, __fmaf_##sfx, mode, fmaf) \
  DIRECTED1(float, __fsqrt_##sfx, mode, sqrtf) \
  DIRECTED(double, __dadd_##sfx, mode, x + y) DIRECTED(double, __dmul_##sfx, mode, x * y) \
  DIRECTED(double, __ddiv_##sfx, mode, x / y) DIRECTED3(double, __fma_##sfx, mode, fma) \
  DIRECTED1(double, __dsqrt_##sfx, mode, sqrt)
ALLMODES(rz, FE_TOWARDZERO)
ALLMODES(rd, FE_DOWNWARD)
ALLMODES(ru, FE_UPWARD)
#define KERNEL(name, T)
#endif

// float: arithmetic, compares, conversions
DEV void f32ops(int i, const unsigned *a, const unsigned *b, unsigned *o) {
  float x = __int_as_float(a[i]), y = __int_as_float(b[i]);
  unsigned *r = o + i * 12;
  r[0] = __float_as_uint(x + y);
  r[1] = __float_as_uint(x - y);
  r[2] = __float_as_uint(x * y);
  r[3] = __float_as_uint(x / y);
  r[4] = __float_as_uint(sqrtf(x));
  r[5] = __float_as_uint(fmaf(x, y, x));
  r[6] = __float_as_uint(fminf(x, y));
  r[7] = __float_as_uint(fmaxf(x, y));
  r[8] = (x < y) | (x == y) << 1 | (x > y) << 2 | (x != y) << 3 | (x <= y) << 4 | (!(x >= y)) << 5;
  r[9] = x > -2147483648.f && x < 2147483648.f ? (unsigned)(int)x : 7u;
  r[10] = __float_as_uint((float)(int)a[i]) ^ __float_as_uint((float)b[i]);
  r[11] = __float_as_uint((float)((double)x * 3.0));
}
KERNEL(f32ops, unsigned)

// double
DEV void f64ops(int i, const uint64_t *a, const uint64_t *b, uint64_t *o) {
  double x = __longlong_as_double(a[i]), y = __longlong_as_double(b[i]);
  uint64_t *r = o + i * 10;
  r[0] = __double_as_longlong(x + y);
  r[1] = __double_as_longlong(x - y);
  r[2] = __double_as_longlong(x * y);
  r[3] = __double_as_longlong(x / y);
  r[4] = __double_as_longlong(sqrt(x));
  r[5] = __double_as_longlong(fma(x, y, y));
  r[6] = __double_as_longlong(fmin(x, y));
  r[7] = (x < y) | (x == y) << 1 | (x > y) << 2 | (x != y) << 3;
  r[8] = x > -9.2e18 && x < 9.2e18 ? (uint64_t)(int64_t)x : 7u;
  r[9] = __double_as_longlong((double)(float)x) ^ __double_as_longlong((double)(int64_t)a[i]);
}
KERNEL(f64ops, uint64_t)

// 32-bit integers and bit intrinsics
DEV void i32ops(int i, const unsigned *a, const unsigned *b, unsigned *o) {
  unsigned x = a[i], y = b[i];
  int sx = (int)x, sy = (int)y;
  unsigned *r = o + i * 14;
  r[0] = x * y + (x ^ y);
  r[1] = y ? x / y + x % y : 1;
  r[2] = (sy && !(sx == (int)0x80000000 && sy == -1)) ? (unsigned)(sx / sy) ^ (unsigned)(sx % sy) : 2;
  r[3] = (x << (y & 31)) ^ (x >> (y & 31)) ^ (unsigned)(sx >> (y & 31));
  r[4] = (unsigned)(sx < sy ? sx : sy) + (x > y ? x : y);
  r[5] = (unsigned)__mulhi(sx, sy) ^ __umulhi(x, y);
  r[6] = __popc(x) + 100 * __clz(y) + 10000 * __ffs(sx);
  r[7] = __brev(x);
  r[8] = __byte_perm(x, y, y);
  r[9] = __funnelshift_l(x, y, x) ^ __funnelshift_r(y, x, y);
  r[10] = __usad(x, y, 3);
  r[11] = (unsigned)((int64_t)sx * sy >> 7);
  r[12] = (unsigned)(uint8_t)(x + y) | (unsigned)(int8_t)(x * 3) << 8;
  r[13] = __popcll(((uint64_t)x << 32) | y) + __clzll(((uint64_t)y << 20) | x);
}
KERNEL(i32ops, unsigned)

// 8- and 16-bit integers
DEV void i16ops(int i, const unsigned *a, const unsigned *b, unsigned *o) {
  short s = (short)a[i], t = (short)b[i];
  unsigned short us = (unsigned short)a[i], ut = (unsigned short)b[i];
  signed char c = (signed char)(a[i] >> 16), d = (signed char)(b[i] >> 16);
  unsigned *r = o + i * 6;
  r[0] = (unsigned short)(s * t) | (unsigned)(unsigned short)(s - t) << 16;
  r[1] = (unsigned short)(t ? s / t : 5) | (unsigned)(unsigned short)(ut ? us % ut : 6) << 16;
  r[2] = (unsigned short)(s >> (t & 15)) | (unsigned)(unsigned short)(us >> (ut & 15)) << 16;
  r[3] = (unsigned char)(c * d + c) | (unsigned)(unsigned char)(c / (d | 1)) << 8 | (unsigned)(unsigned short)(c < d ? c : d) << 16;
  r[4] = (unsigned short)(us > ut ? us : ut) | (unsigned)(unsigned short)(s < t ? s : t) << 16;
  r[5] = (unsigned short)(~s & t ^ (s | 0x55));
}
KERNEL(i16ops, unsigned)

// 64-bit integers
DEV void i64ops(int i, const uint64_t *a, const uint64_t *b, uint64_t *o) {
  uint64_t x = a[i], y = b[i];
  int64_t sx = (int64_t)x, sy = (int64_t)y;
  uint64_t *r = o + i * 5;
  r[0] = x * y - (x | y);
  r[1] = y ? x / y ^ x % y : 1;
  r[2] = (sy && !(sx == INT64_MIN && sy == -1)) ? (uint64_t)(sx / sy) + (uint64_t)(sx % sy) : 2;
  r[3] = (x << (y & 63)) ^ (uint64_t)(sx >> (y & 63));
  r[4] = __umul64hi(x, y);
}
KERNEL(i64ops, uint64_t)

// directed rounding
#define F32RND(sfx, k) \
  r[k + 0] = __float_as_uint(__fadd_##sfx(x, y)); r[k + 1] = __float_as_uint(__fmul_##sfx(x, y)); \
  r[k + 2] = __float_as_uint(__fdiv_##sfx(x, y)); r[k + 3] = __float_as_uint(__fmaf_##sfx(x, y, z)); \
  r[k + 4] = __float_as_uint(__fsqrt_##sfx(x));
DEV void f32rnd(int i, const unsigned *a, const unsigned *b, unsigned *o) {
  float x = __int_as_float(a[i]), y = __int_as_float(b[i]), z = __int_as_float(a[i] ^ b[i]);
  unsigned *r = o + i * 15;
  F32RND(rz, 0) F32RND(rd, 5) F32RND(ru, 10)
}
KERNEL(f32rnd, unsigned)

#define F64RND(sfx, k) \
  r[k + 0] = __double_as_longlong(__dadd_##sfx(x, y)); r[k + 1] = __double_as_longlong(__dmul_##sfx(x, y)); \
  r[k + 2] = __double_as_longlong(__ddiv_##sfx(x, y)); r[k + 3] = __double_as_longlong(__fma_##sfx(x, y, z)); \
  r[k + 4] = __double_as_longlong(__dsqrt_##sfx(x));
DEV void f64rnd(int i, const uint64_t *a, const uint64_t *b, uint64_t *o) {
  double x = __longlong_as_double(a[i]), y = __longlong_as_double(b[i]), z = __longlong_as_double(a[i] ^ b[i]);
  uint64_t *r = o + i * 15;
  F64RND(rz, 0) F64RND(rd, 5) F64RND(ru, 10)
}
KERNEL(f64rnd, uint64_t)

#ifndef __CUDACC__
// host: diff_ops KERNEL reads n, then n words a, n words b from stdin
// and writes the outputs to stdout.
int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int n;
  if (fread(&n, 4, 1, stdin) != 1 || n <= 0 || n > 1 << 20) return 2;
  const char *k = argv[1];
  int wide = !strcmp(k, "f64ops") || !strcmp(k, "i64ops") || !strcmp(k, "f64rnd");
  int per = !strcmp(k, "f32ops") ? 12 : !strcmp(k, "f64ops") ? 10 : !strcmp(k, "i32ops") ? 14 : !strcmp(k, "i16ops") ? 6 : !strcmp(k, "i64ops") ? 5 : 15;
  size_t w = wide ? 8 : 4;
  void *a = malloc(w * n), *b = malloc(w * n), *o = calloc((size_t)n * per, w);
  if (fread(a, w, n, stdin) != (size_t)n || fread(b, w, n, stdin) != (size_t)n) return 2;
  for (int i = 0; i < n; i++) {
    if (!strcmp(k, "f32ops")) f32ops(i, (unsigned *)a, (unsigned *)b, (unsigned *)o);
    else if (!strcmp(k, "f64ops")) f64ops(i, (uint64_t *)a, (uint64_t *)b, (uint64_t *)o);
    else if (!strcmp(k, "i32ops")) i32ops(i, (unsigned *)a, (unsigned *)b, (unsigned *)o);
    else if (!strcmp(k, "i16ops")) i16ops(i, (unsigned *)a, (unsigned *)b, (unsigned *)o);
    else if (!strcmp(k, "i64ops")) i64ops(i, (uint64_t *)a, (uint64_t *)b, (uint64_t *)o);
    else if (!strcmp(k, "f32rnd")) f32rnd(i, (unsigned *)a, (unsigned *)b, (unsigned *)o);
    else if (!strcmp(k, "f64rnd")) f64rnd(i, (uint64_t *)a, (uint64_t *)b, (uint64_t *)o);
    else return 2;
  }
  fwrite(o, w, (size_t)n * per, stdout);
  return 0;
}
#endif
