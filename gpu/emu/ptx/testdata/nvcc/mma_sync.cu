// Warp-level mma.sync with ldmatrix from shared memory: one warp
// computes d = a*b for a 16x16 a, a 16x8 b (both f16, row-major in
// global memory) and a 16x8 f32 d, using the fragment layouts of the
// PTX ISA.
#include <cuda_fp16.h>
#include <cuda_bf16.h>

extern "C" __global__ void mma_f16(const half *a, const half *b, float *d) {
    __shared__ __align__(16) half sa[16 * 16];
    __shared__ __align__(16) half sb[16 * 8];
    int lane = threadIdx.x;
    for (int i = lane; i < 256; i += 32) sa[i] = a[i];
    for (int i = lane; i < 128; i += 32) sb[i] = b[i];
    __syncwarp();
    unsigned ra[4], rb[2];
    // x4: lanes 0-15 address rows 0-15 of columns 0-7, lanes 16-31 of
    // columns 8-15
    unsigned pa = (unsigned)__cvta_generic_to_shared(&sa[(lane % 16) * 16 + (lane / 16) * 8]);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(ra[0]), "=r"(ra[1]), "=r"(ra[2]), "=r"(ra[3]) : "r"(pa));
    // b is row-major KxN: the transposed load gives the column fragment
    unsigned pb = (unsigned)__cvta_generic_to_shared(&sb[(lane % 16) * 8]);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];"
                 : "=r"(rb[0]), "=r"(rb[1]) : "r"(pb));
    float c[4] = {0, 0, 0, 0};
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
                 : "=f"(c[0]), "=f"(c[1]), "=f"(c[2]), "=f"(c[3])
                 : "r"(ra[0]), "r"(ra[1]), "r"(ra[2]), "r"(ra[3]), "r"(rb[0]), "r"(rb[1]),
                   "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
    int g = lane / 4, t = lane % 4;
    d[g * 8 + 2 * t] = c[0];
    d[g * 8 + 2 * t + 1] = c[1];
    d[(g + 8) * 8 + 2 * t] = c[2];
    d[(g + 8) * 8 + 2 * t + 1] = c[3];
}

// m16n8k8 on bf16: a is 16x8 row-major, b 8x8 stored column-major
// (b[n*8+k]); fragments are gathered by hand; d = a*b + c, all 16x8.
extern "C" __global__ void mma_bf16(const __nv_bfloat16 *a, const __nv_bfloat16 *b, const float *c, float *d) {
    int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    const unsigned short *ua = (const unsigned short *)a, *ub = (const unsigned short *)b;
    unsigned a0 = ua[g * 8 + 2 * t] | (unsigned)ua[g * 8 + 2 * t + 1] << 16;
    unsigned a1 = ua[(g + 8) * 8 + 2 * t] | (unsigned)ua[(g + 8) * 8 + 2 * t + 1] << 16;
    unsigned b0 = ub[g * 8 + 2 * t] | (unsigned)ub[g * 8 + 2 * t + 1] << 16;
    float c0 = c[g * 8 + 2 * t], c1 = c[g * 8 + 2 * t + 1];
    float c2 = c[(g + 8) * 8 + 2 * t], c3 = c[(g + 8) * 8 + 2 * t + 1];
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
                 : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
                 : "r"(a0), "r"(a1), "r"(b0));
    d[g * 8 + 2 * t] = c0;
    d[g * 8 + 2 * t + 1] = c1;
    d[(g + 8) * 8 + 2 * t] = c2;
    d[(g + 8) * 8 + 2 * t + 1] = c3;
}

// m16n8k16 with f16 accumulators: a and b (row-major, as in mma_f16)
// loaded with ldmatrix x2 and x1.trans; d = a*b + c, c and d 16x8
// row-major halves.
extern "C" __global__ void mma_h16(const half *a, const half *b, const half *c, half *d) {
    __shared__ __align__(16) half sa[16 * 16];
    __shared__ __align__(16) half sb[16 * 8];
    int lane = threadIdx.x;
    for (int i = lane; i < 256; i += 32) sa[i] = a[i];
    for (int i = lane; i < 128; i += 32) sb[i] = b[i];
    __syncwarp();
    unsigned ra[4], rb[2];
    // columns 0-7, then 8-15, of rows 0-15
    unsigned pa = (unsigned)__cvta_generic_to_shared(&sa[(lane % 16) * 16]);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(ra[0]), "=r"(ra[1]) : "r"(pa));
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(ra[2]), "=r"(ra[3]) : "r"(pa + 16));
    // rows 0-7, then 8-15, of b
    unsigned pb = (unsigned)__cvta_generic_to_shared(&sb[(lane % 8) * 8]);
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];" : "=r"(rb[0]) : "r"(pb));
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];" : "=r"(rb[1]) : "r"(pb + 128));
    int g = lane / 4, t = lane % 4;
    const unsigned *uc = (const unsigned *)c;
    unsigned c0 = uc[(g * 8 + 2 * t) / 2], c1 = uc[((g + 8) * 8 + 2 * t) / 2];
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16 {%0,%1}, {%2,%3,%4,%5}, {%6,%7}, {%0,%1};"
                 : "+r"(c0), "+r"(c1)
                 : "r"(ra[0]), "r"(ra[1]), "r"(ra[2]), "r"(ra[3]), "r"(rb[0]), "r"(rb[1]));
    unsigned *ud = (unsigned *)d;
    ud[(g * 8 + 2 * t) / 2] = c0;
    ud[((g + 8) * 8 + 2 * t) / 2] = c1;
}

// m16n8k8 on tf32: a is 16x8 row-major, b 8x8 column-major (b[n*8+k]),
// c and d 16x8 row-major f32; fragments gathered by hand.
extern "C" __global__ void mma_tf32(const float *a, const float *b, const float *c, float *d) {
    int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    unsigned a0 = __float_as_uint(a[g * 8 + t]), a1 = __float_as_uint(a[(g + 8) * 8 + t]);
    unsigned a2 = __float_as_uint(a[g * 8 + t + 4]), a3 = __float_as_uint(a[(g + 8) * 8 + t + 4]);
    unsigned b0 = __float_as_uint(b[g * 8 + t]), b1 = __float_as_uint(b[g * 8 + t + 4]);
    float c0 = c[g * 8 + 2 * t], c1 = c[g * 8 + 2 * t + 1];
    float c2 = c[(g + 8) * 8 + 2 * t], c3 = c[(g + 8) * 8 + 2 * t + 1];
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    d[g * 8 + 2 * t] = c0;
    d[g * 8 + 2 * t + 1] = c1;
    d[(g + 8) * 8 + 2 * t] = c2;
    d[(g + 8) * 8 + 2 * t + 1] = c3;
}
