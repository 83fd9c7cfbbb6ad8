// Tensor-core GEMM through nvcuda::wmma: each warp computes one 16x16
// tile of C = A*B + C over K in steps of 16.
#include <mma.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
using namespace nvcuda;

// a: MxK row-major, b: KxN column-major, c: MxN row-major f32.
extern "C" __global__ void wmma_f32(const half *a, const half *b, float *c, int m, int n, int k) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int tilesN = n / 16;
    int tm = warp / tilesN, tn = warp % tilesN;
    if (tm * 16 >= m) return;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::load_matrix_sync(acc, c + tm * 16 * n + tn * 16, n, wmma::mem_row_major);
    for (int i = 0; i < k; i += 16) {
        wmma::load_matrix_sync(fa, a + tm * 16 * k + i, k);
        wmma::load_matrix_sync(fb, b + tn * 16 * k + i, k);
        wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + tm * 16 * n + tn * 16, acc, n, wmma::mem_row_major);
}

// a: MxK column-major, b: KxN row-major, c: MxN column-major f16,
// starting from zero.
extern "C" __global__ void wmma_f16(const half *a, const half *b, half *c, int m, int n, int k) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int tilesN = n / 16;
    int tm = warp / tilesN, tn = warp % tilesN;
    if (tm * 16 >= m) return;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::col_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, half> acc;
    wmma::fill_fragment(acc, __float2half(0.0f));
    for (int i = 0; i < k; i += 16) {
        wmma::load_matrix_sync(fa, a + i * m + tm * 16, m);
        wmma::load_matrix_sync(fb, b + i * n + tn * 16, n);
        wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + tn * 16 * m + tm * 16, acc, m, wmma::mem_col_major);
}

// bf16 inputs, both row-major (a: MxK, b: KxN), into c: MxN row-major
// f32, added to c.
extern "C" __global__ void wmma_bf16(const __nv_bfloat16 *a, const __nv_bfloat16 *b, float *c, int m, int n, int k) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int tilesN = n / 16;
    int tm = warp / tilesN, tn = warp % tilesN;
    if (tm * 16 >= m) return;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::load_matrix_sync(acc, c + tm * 16 * n + tn * 16, n, wmma::mem_row_major);
    for (int i = 0; i < k; i += 16) {
        wmma::load_matrix_sync(fa, a + tm * 16 * k + i, k);
        wmma::load_matrix_sync(fb, b + i * n + tn * 16, n);
        wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + tm * 16 * n + tn * 16, acc, n, wmma::mem_row_major);
}

// tf32 (m16n16k8): a: MxK row-major, b: KxN column-major, both f32
// rounded to tf32 in the fragments; c: MxN row-major f32 from zero.
extern "C" __global__ void wmma_tf32(const float *a, const float *b, float *c, int m, int n, int k) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int tilesN = n / 16;
    int tm = warp / tilesN, tn = warp % tilesN;
    if (tm * 16 >= m) return;
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int i = 0; i < k; i += 8) {
        wmma::load_matrix_sync(fa, a + tm * 16 * k + i, k);
        wmma::load_matrix_sync(fb, b + tn * 16 * k + i, k);
        for (int e = 0; e < fa.num_elements; e++) fa.x[e] = wmma::__float_to_tf32(fa.x[e]);
        for (int e = 0; e < fb.num_elements; e++) fb.x[e] = wmma::__float_to_tf32(fb.x[e]);
        wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + tm * 16 * n + tn * 16, acc, n, wmma::mem_row_major);
}
