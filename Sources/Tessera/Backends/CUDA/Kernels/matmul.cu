// Matrix products that do not go through cuBLASLt: matrix-vector products
// (M = 1 or N = 1) and a shared-memory tiled GEMM used when cuBLASLt is
// absent. Any strides; float accumulation; the output is row-contiguous.
// Batches: grid.y (gemv) or grid.z (gemm) stride over `batches`; the batch
// index's offsets come from the batch shape (bn, bshape) and each operand's
// batch strides.
//
// gemv: y[z, j] = sum_k v[k * vs] * A[k * ak + j * aj], j < J. For M = 1, v is
// a's row and A is b (ak = b's row stride, aj = b's column stride); for
// N = 1, v is b's column and A is a read transposed.
//   matmul_gemvdot_<t>: one warp per j (lanes along k; A contiguous in k);
//   matmul_gemvcol_<t>: one thread per j (A contiguous in j).
// gemm: c[z, m, n] = sum_k a[m * sam + k * sak] * b[k * sbk + n * sbn];
//   matmul_gemm_<t>: 16 x 16 tiles, block (16, 16).
#include "dense.cuh"

#define GEMM_TILE 16

template <typename T>
__device__ void gemv_dot(const T* v, const T* A, T* y, i64 J, i64 K, i64 vs, i64 ak, i64 aj, i64 batches, int bn,
                         const Dims& bshape, const Dims& vb, const Dims& ab) {
    i64 j = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (j >= J) return;
    for (i64 z = blockIdx.y; z < batches; z += gridDim.y) {
        const T* vz = v + strided_offset(z, bn, bshape, vb);
        const T* az = A + strided_offset(z, bn, bshape, ab) + j * aj;
        float acc = 0.0f;
        for (i64 k = lane; k < K; k += 32) acc += to_float(vz[k * vs]) * to_float(az[k * ak]);
        acc = warp_sum(acc);
        if (lane == 0) y[z * J + j] = from_float<T>(acc);
    }
}

template <typename T>
__device__ void gemv_col(const T* v, const T* A, T* y, i64 J, i64 K, i64 vs, i64 ak, i64 aj, i64 batches, int bn,
                         const Dims& bshape, const Dims& vb, const Dims& ab) {
    i64 j = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= J) return;
    for (i64 z = blockIdx.y; z < batches; z += gridDim.y) {
        const T* vz = v + strided_offset(z, bn, bshape, vb);
        const T* az = A + strided_offset(z, bn, bshape, ab) + j * aj;
        float acc = 0.0f;
        for (i64 k = 0; k < K; ++k) acc += to_float(vz[k * vs]) * to_float(az[k * ak]);
        y[z * J + j] = from_float<T>(acc);
    }
}

template <typename T>
__device__ void gemm_tiled(const T* a, const T* b, T* c, i64 M, i64 N, i64 K, i64 sam, i64 sak, i64 sbk, i64 sbn,
                           i64 batches, int bn, const Dims& bshape, const Dims& abs_, const Dims& bbs) {
    __shared__ float As[GEMM_TILE][GEMM_TILE + 1];
    __shared__ float Bs[GEMM_TILE][GEMM_TILE + 1];
    int tx = threadIdx.x, ty = threadIdx.y;
    i64 m = (i64)blockIdx.y * GEMM_TILE + ty, n = (i64)blockIdx.x * GEMM_TILE + tx;
    for (i64 z = blockIdx.z; z < batches; z += gridDim.z) {
        const T* az = a + strided_offset(z, bn, bshape, abs_);
        const T* bz = b + strided_offset(z, bn, bshape, bbs);
        float acc = 0.0f;
        for (i64 k0 = 0; k0 < K; k0 += GEMM_TILE) {
            i64 ka = k0 + tx, kb = k0 + ty;
            As[ty][tx] = (m < M && ka < K) ? to_float(az[m * sam + ka * sak]) : 0.0f;
            Bs[ty][tx] = (kb < K && n < N) ? to_float(bz[kb * sbk + n * sbn]) : 0.0f;
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < GEMM_TILE; ++kk) acc += As[ty][kk] * Bs[kk][tx];
            __syncthreads();
        }
        if (m < M && n < N) c[(z * M + m) * N + n] = from_float<T>(acc);
    }
}

#define MATMUL(T, s) \
    extern "C" __global__ void __launch_bounds__(256) matmul_gemvdot_##s( \
        const T* v, const T* A, T* y, i64 J, i64 K, i64 vs, i64 ak, i64 aj, i64 batches, int bn, Dims bshape, \
        Dims vb, Dims ab) { \
        gemv_dot<T>(v, A, y, J, K, vs, ak, aj, batches, bn, bshape, vb, ab); \
    } \
    extern "C" __global__ void __launch_bounds__(256) matmul_gemvcol_##s( \
        const T* v, const T* A, T* y, i64 J, i64 K, i64 vs, i64 ak, i64 aj, i64 batches, int bn, Dims bshape, \
        Dims vb, Dims ab) { \
        gemv_col<T>(v, A, y, J, K, vs, ak, aj, batches, bn, bshape, vb, ab); \
    } \
    extern "C" __global__ void __launch_bounds__(GEMM_TILE * GEMM_TILE) matmul_gemm_##s( \
        const T* a, const T* b, T* c, i64 M, i64 N, i64 K, i64 sam, i64 sak, i64 sbk, i64 sbn, i64 batches, int bn, \
        Dims bshape, Dims ab, Dims bb) { \
        gemm_tiled<T>(a, b, c, M, N, K, sam, sak, sbk, sbn, batches, bn, bshape, ab, bb); \
    }
MATMUL(float, f32) MATMUL(f16, f16) MATMUL(bf16, bf16)
