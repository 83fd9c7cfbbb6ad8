// kerf_device.h: the small subset of CUDA device-side declarations Kerf's
// test kernels need, written for clang's CUDA mode with -nocudainc.
#ifndef KERF_DEVICE_H
#define KERF_DEVICE_H

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
// The shfl.sync builtins need PTX ISA 6.0, which clang does not assume
// without a CUDA installation; enable it per function.
#define KERF_PTX60 __attribute__((target("ptx60")))

typedef unsigned long long kerf_size_t;

struct kerf_dim3 {
	unsigned int x, y, z;
};

#define KERF_SREG(name, fn)                                                    \
	static __device__ __forceinline__ unsigned int name() { return fn(); }

KERF_SREG(kerf_tid_x, __nvvm_read_ptx_sreg_tid_x)
KERF_SREG(kerf_tid_y, __nvvm_read_ptx_sreg_tid_y)
KERF_SREG(kerf_tid_z, __nvvm_read_ptx_sreg_tid_z)
KERF_SREG(kerf_ntid_x, __nvvm_read_ptx_sreg_ntid_x)
KERF_SREG(kerf_ntid_y, __nvvm_read_ptx_sreg_ntid_y)
KERF_SREG(kerf_ntid_z, __nvvm_read_ptx_sreg_ntid_z)
KERF_SREG(kerf_ctaid_x, __nvvm_read_ptx_sreg_ctaid_x)
KERF_SREG(kerf_ctaid_y, __nvvm_read_ptx_sreg_ctaid_y)
KERF_SREG(kerf_ctaid_z, __nvvm_read_ptx_sreg_ctaid_z)
KERF_SREG(kerf_nctaid_x, __nvvm_read_ptx_sreg_nctaid_x)
KERF_SREG(kerf_nctaid_y, __nvvm_read_ptx_sreg_nctaid_y)
KERF_SREG(kerf_nctaid_z, __nvvm_read_ptx_sreg_nctaid_z)
KERF_SREG(kerf_laneid, __nvvm_read_ptx_sreg_laneid)

#define threadIdx (kerf_dim3{kerf_tid_x(), kerf_tid_y(), kerf_tid_z()})
#define blockDim (kerf_dim3{kerf_ntid_x(), kerf_ntid_y(), kerf_ntid_z()})
#define blockIdx (kerf_dim3{kerf_ctaid_x(), kerf_ctaid_y(), kerf_ctaid_z()})
#define gridDim (kerf_dim3{kerf_nctaid_x(), kerf_nctaid_y(), kerf_nctaid_z()})

// __syncthreads() is a clang builtin in CUDA mode (bar.sync 0).

static __device__ __forceinline__ int atomicAdd(int *p, int v) {
	return __nvvm_atom_add_gen_i(p, v);
}
static __device__ __forceinline__ unsigned int atomicAdd(unsigned int *p, unsigned int v) {
	return (unsigned int)__nvvm_atom_add_gen_i((int *)p, (int)v);
}
static __device__ __forceinline__ unsigned long long atomicAdd(unsigned long long *p,
                                                               unsigned long long v) {
	return (unsigned long long)__nvvm_atom_add_gen_ll((long long *)p, (long long)v);
}
static __device__ __forceinline__ float atomicAdd(float *p, float v) {
	return __nvvm_atom_add_gen_f(p, v);
}

static __device__ __forceinline__ KERF_PTX60 float __shfl_down_sync(unsigned int mask, float v,
                                                         unsigned int delta, int width = 32) {
	return __nvvm_shfl_sync_down_f32(mask, v, delta, ((32 - width) << 8) | 0x1f);
}
static __device__ __forceinline__ KERF_PTX60 int __shfl_down_sync(unsigned int mask, int v,
                                                       unsigned int delta, int width = 32) {
	return __nvvm_shfl_sync_down_i32(mask, v, delta, ((32 - width) << 8) | 0x1f);
}
static __device__ __forceinline__ KERF_PTX60 int __shfl_xor_sync(unsigned int mask, int v,
                                                      int lane, int width = 32) {
	return __nvvm_shfl_sync_bfly_i32(mask, v, lane, ((32 - width) << 8) | 0x1f);
}
static __device__ __forceinline__ KERF_PTX60 int __shfl_up_sync(unsigned int mask, int v,
                                                     unsigned int delta, int width = 32) {
	return __nvvm_shfl_sync_up_i32(mask, v, delta, (32 - width) << 8);
}
static __device__ __forceinline__ KERF_PTX60 int __shfl_sync(unsigned int mask, int v,
                                                  int lane, int width = 32) {
	return __nvvm_shfl_sync_idx_i32(mask, v, lane, ((32 - width) << 8) | 0x1f);
}

static __device__ __forceinline__ float fmaf(float a, float b, float c) {
	return __builtin_fmaf(a, b, c);
}
static __device__ __forceinline__ float fminf(float a, float b) { return __builtin_fminf(a, b); }
static __device__ __forceinline__ float fmaxf(float a, float b) { return __builtin_fmaxf(a, b); }
static __device__ __forceinline__ int min(int a, int b) { return a < b ? a : b; }
static __device__ __forceinline__ int max(int a, int b) { return a > b ? a : b; }

static __device__ __forceinline__ unsigned int __float_as_uint_kerf(float f) {
	return __builtin_bit_cast(unsigned int, f);
}
static __device__ __forceinline__ unsigned long long __double_as_ull_kerf(double d) {
	return __builtin_bit_cast(unsigned long long, d);
}

#endif
