// Cube maps and mipmaps through texture objects: each thread reads eight
// floats of in (coordinates, then a level, a layer or gradients) and
// writes the four channels it samples.
#include <cuda_runtime.h>

extern "C" __global__ void cube(cudaTextureObject_t t, const float *in, float4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  const float *p = in + 8 * i;
  if (i < n) out[i] = texCubemap<float4>(t, p[0], p[1], p[2]);
}

extern "C" __global__ void cube_layered(cudaTextureObject_t t, const float *in, float4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  const float *p = in + 8 * i;
  if (i < n) out[i] = texCubemapLayered<float4>(t, p[0], p[1], p[2], (int)p[3]);
}

extern "C" __global__ void cube_lod(cudaTextureObject_t t, const float *in, float4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  const float *p = in + 8 * i;
  if (i < n) out[i] = texCubemapLod<float4>(t, p[0], p[1], p[2], p[3]);
}

extern "C" __global__ void lod2d(cudaTextureObject_t t, const float *in, float4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  const float *p = in + 8 * i;
  if (i < n) out[i] = tex2DLod<float4>(t, p[0], p[1], p[2]);
}

extern "C" __global__ void grad2d(cudaTextureObject_t t, const float *in, float4 *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  const float *p = in + 8 * i;
  if (i < n) out[i] = tex2DGrad<float4>(t, p[0], p[1], make_float2(p[2], p[3]), make_float2(p[4], p[5]));
}
