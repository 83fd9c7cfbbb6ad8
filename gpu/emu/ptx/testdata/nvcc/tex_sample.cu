// Texture and surface reads and writes through objects: each thread
// samples one coordinate (or pair, or triple) and writes all four
// channels, so a test can compare them with a reference.
#include <cuda_runtime.h>

extern "C" __global__ void sample1d(cudaTextureObject_t t, const float *x, float4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = tex1D<float4>(t, x[i]);
}

extern "C" __global__ void sample2d(cudaTextureObject_t t, const float *x, const float *y, float4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = tex2D<float4>(t, x[i], y[i]);
}

extern "C" __global__ void sample3d(cudaTextureObject_t t, const float *x, const float *y, const float *z, float4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = tex3D<float4>(t, x[i], y[i], z[i]);
}

extern "C" __global__ void sample2dlayered(cudaTextureObject_t t, const float *x, const float *y, const int *layer, float4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = tex2DLayered<float4>(t, x[i], y[i], layer[i]);
}

extern "C" __global__ void gather2d(cudaTextureObject_t t, const float *x, const float *y, int comp, float4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    switch (comp) {
    case 0: out[i] = tex2Dgather<float4>(t, x[i], y[i], 0); break;
    case 1: out[i] = tex2Dgather<float4>(t, x[i], y[i], 1); break;
    case 2: out[i] = tex2Dgather<float4>(t, x[i], y[i], 2); break;
    default: out[i] = tex2Dgather<float4>(t, x[i], y[i], 3); break;
    }
  }
}

extern "C" __global__ void fetch_int(cudaTextureObject_t t, const int *x, int4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = tex1Dfetch<int4>(t, x[i]);
}

extern "C" __global__ void size_query(cudaTextureObject_t t, cudaSurfaceObject_t s, int *out) {
  int w, h;
  asm("txq.width.b32 %0, [%1];" : "=r"(w) : "l"(t));
  asm("suq.height.b32 %0, [%1];" : "=r"(h) : "l"(s));
  out[0] = w;
  out[1] = h;
}

// Each thread copies one texel of a 2D surface of floats to another,
// scaled, with the given out-of-range mode for the read.
extern "C" __global__ void surf_scale(cudaSurfaceObject_t src, cudaSurfaceObject_t dst, int w, int h, float k) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w && y < h) {
    float v = surf2Dread<float>(src, (x + 1) * 4, y, cudaBoundaryModeClamp);
    float z = surf2Dread<float>(src, (x + 1) * 4, y, cudaBoundaryModeZero);
    surf2Dwrite(v * k + z, dst, x * 4, y);
  }
}

// A 3D surface of uchar4: each thread inverts one texel in place.
extern "C" __global__ void surf_invert3d(cudaSurfaceObject_t s, int w, int h, int d) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  if (x < w * h * d) {
    int i = x % w, j = x / w % h, k = x / (w * h);
    uchar4 v = surf3Dread<uchar4>(s, i * 4, j, k);
    surf3Dwrite(make_uchar4(255 - v.x, 255 - v.y, 255 - v.z, v.w), s, i * 4, j, k);
  }
}
