// MLX affine quantization, bit for bit as the CPU backend: rows of K codes
// packed into K * bits / 32 uint32 words as one little-endian bit stream,
// one (scale, bias) per group of `gs` consecutive codes of a row. Inputs are
// row-contiguous (the host copies others first).
//
// quantized_params_<t>: one thread per group → float32 (scale, bias) pairs.
// quantized_pack_<t>: one thread per output word.
// quantized_dequant_<t>: one thread per element; scale * q rounded to the
//   element type, then + bias rounded again (MLX's order; no FMA).
// Matrix products out[z, m, n] = sum_k x[m, k] * W[n, k] (transposed: w
// [N, K * bits / 32], scales [N, K / gs]) or sum_k x[m, k] * W[k, n] (w
// [K, N * bits / 32], scales [K, N / gs]); W = scale * q + bias in float.
// Batch z: either gather indices (lhs/rhs non-null: x batch lhs[z], weight
// batch rhs[z], each times the operand's batch stride in xb/wb/sb/bb .v[0]) or
// the batch shape (bn, bshape) with each operand's batch strides.
//   quantized_qmvt_<t>: transposed, M <= QMV_MAX_M; one warp per column n
//     (2/4/8 bits: lanes take whole words; other widths: single codes).
//   quantized_qmv_<t>: not transposed, M <= QMV_MAX_M; one thread per n.
//   quantized_qmm_<t>: any M; 32 x 32 output tiles, block (32, 8).
// Grid y (qmv) / z (qmm) strides over the batches.
#include "dense.cuh"

#define QMV_MAX_M 8
#define QMM_TILE 32

template <typename T>
__device__ void quantize_parameters(const T* w, float* out, i64 groups, int gs, int bits) {
    float nBins = (float)((1 << bits) - 1);
    const float eps = 1e-7f;
    TESSERA_GRID_LOOP(g, groups) {
        const T* group = w + g * gs;
        float wMin = DENSE_INF, wMax = -DENSE_INF;
        for (int j = 0; j < gs; ++j) {
            float v = to_float(group[j]);
            if (wMax < v) wMax = v;
            if (v < wMin) wMin = v;
        }
        bool mask = fabsf(wMin) > fabsf(wMax);
        float scale = __fdiv_rn(__fsub_rn(wMax, wMin), nBins);
        if (scale < eps) scale = eps;
        if (!mask) scale = -scale;
        float edge = mask ? wMin : wMax;
        float q0 = rintf(__fdiv_rn(edge, scale));
        float bias = 0.0f;
        if (q0 != 0.0f) {
            scale = __fdiv_rn(edge, q0);
            bias = edge;
        }
        out[2 * g] = scale;
        out[2 * g + 1] = bias;
    }
}

template <typename T>
__device__ void quantize_pack(const T* w, const float* params, u32* out, i64 words, i64 count, int gs, int bits) {
    float nBins = (float)((1 << bits) - 1);
    TESSERA_GRID_LOOP(wi, words) {
        i64 bit0 = wi * 32;
        i64 k0 = bit0 / bits, k1 = (bit0 + 32 + bits - 1) / bits;
        if (k1 > count) k1 = count;
        u64 acc = 0;
        for (i64 k = k0; k < k1; ++k) {
            i64 g = k / gs;
            float scale = params[2 * g], bias = params[2 * g + 1];
            float q = rintf(__fdiv_rn(__fsub_rn(to_float(w[k]), bias), scale));
            q = fminf(fmaxf(q, 0.0f), nBins);
            i64 pos = k * bits - bit0;
            u64 code = (u64)q;
            acc |= pos >= 0 ? code << pos : code >> (-pos);
        }
        out[wi] = (u32)acc;
    }
}

template <typename T>
__device__ void dequantize(const u32* wq, const T* scales, const T* biases, T* out, i64 count, int gs, int bits) {
    TESSERA_GRID_LOOP(i, count) {
        i64 g = i / gs;
        float q = (float)unpack_code(wq, i, bits);
        T product = from_float<T>(__fmul_rn(to_float(scales[g]), q));
        out[i] = from_float<T>(__fadd_rn(to_float(product), to_float(biases[g])));
    }
}

struct QOffsets { i64 x, w, s, b; };

__device__ __forceinline__ QOffsets q_offsets(i64 z, const u32* lhs, const u32* rhs, int bn, const Dims& bshape,
                                              const Dims& xb, const Dims& wb, const Dims& sb, const Dims& bb) {
    QOffsets o;
    if (lhs) {
        i64 xi = lhs[z], wi = rhs[z];
        o.x = xi * xb.v[0]; o.w = wi * wb.v[0]; o.s = wi * sb.v[0]; o.b = wi * bb.v[0];
    } else {
        o.x = strided_offset(z, bn, bshape, xb); o.w = strided_offset(z, bn, bshape, wb);
        o.s = strided_offset(z, bn, bshape, sb); o.b = strided_offset(z, bn, bshape, bb);
    }
    return o;
}

#define QMM_PARAMS \
    const T *x, const u32 *w, const T *scales, const T *biases, T *out, i64 M, i64 N, i64 K, int gs, int bits, \
        i64 batches, const u32 *lhs, const u32 *rhs, int bn, const Dims &bshape, const Dims &xb, const Dims &wb, \
        const Dims &sb, const Dims &bb

template <typename T> __device__ void qmv_transposed(QMM_PARAMS) {
    i64 n = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (n >= N) return;
    i64 wordsPerRow = K * bits / 32, groups = K / gs;
    for (i64 z = blockIdx.y; z < batches; z += gridDim.y) {
        QOffsets o = q_offsets(z, lhs, rhs, bn, bshape, xb, wb, sb, bb);
        const T* xz = x + o.x;
        const u32* wr = w + o.w + n * wordsPerRow;
        const T* sr = scales + o.s + n * groups;
        const T* br = biases + o.b + n * groups;
        float acc[QMV_MAX_M];
#pragma unroll
        for (int m = 0; m < QMV_MAX_M; ++m) acc[m] = 0.0f;
        if (32 % bits == 0 && gs % (32 / bits) == 0) {
            // Whole words (2, 4, 8 bits): a word's codes share one group; lanes read consecutive words.
            int per = 32 / bits;
            u32 codeMask = (1u << bits) - 1u;
            for (i64 wi = lane; wi < wordsPerRow; wi += 32) {
                u32 word = wr[wi];
                i64 k0 = wi * per, g = k0 / gs;
                float s = to_float(sr[g]), b = to_float(br[g]);
                for (int e = 0; e < per; ++e) {
                    float wv = s * (float)((word >> (e * bits)) & codeMask) + b;
#pragma unroll
                    for (int m = 0; m < QMV_MAX_M; ++m) {
                        if (m < M) acc[m] += to_float(xz[m * K + k0 + e]) * wv;
                    }
                }
            }
        } else {
            for (i64 k = lane; k < K; k += 32) {
                i64 g = k / gs;
                float wv = to_float(sr[g]) * (float)unpack_code(wr, k, bits) + to_float(br[g]);
#pragma unroll
                for (int m = 0; m < QMV_MAX_M; ++m) {
                    if (m < M) acc[m] += to_float(xz[m * K + k]) * wv;
                }
            }
        }
#pragma unroll
        for (int m = 0; m < QMV_MAX_M; ++m) {
            if (m < M) {
                float total = warp_sum(acc[m]);
                if (lane == 0) out[(z * M + m) * N + n] = from_float<T>(total);
            }
        }
    }
}

template <typename T> __device__ void qmv_plain(QMM_PARAMS) {
    i64 n = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    i64 wordsPerRow = N * bits / 32, groups = N / gs;
    for (i64 z = blockIdx.y; z < batches; z += gridDim.y) {
        QOffsets o = q_offsets(z, lhs, rhs, bn, bshape, xb, wb, sb, bb);
        const T* xz = x + o.x;
        float acc[QMV_MAX_M];
#pragma unroll
        for (int m = 0; m < QMV_MAX_M; ++m) acc[m] = 0.0f;
        i64 g = n / gs;
        for (i64 k = 0; k < K; ++k) {
            float wv = to_float(scales[o.s + k * groups + g]) * (float)unpack_code(w + o.w + k * wordsPerRow, n, bits)
                + to_float(biases[o.b + k * groups + g]);
#pragma unroll
            for (int m = 0; m < QMV_MAX_M; ++m) {
                if (m < M) acc[m] += to_float(xz[m * K + k]) * wv;
            }
        }
#pragma unroll
        for (int m = 0; m < QMV_MAX_M; ++m) {
            if (m < M) out[(z * M + m) * N + n] = from_float<T>(acc[m]);
        }
    }
}

template <typename T> __device__ void qmm_tiled(int transposed, QMM_PARAMS) {
    __shared__ float Xs[QMM_TILE][QMM_TILE + 1];  // [m][k]
    __shared__ float Ws[QMM_TILE][QMM_TILE + 1];  // [k][n]
    int tx = threadIdx.x, ty = threadIdx.y;  // block (32, 8)
    i64 m0 = (i64)blockIdx.y * QMM_TILE, n0 = (i64)blockIdx.x * QMM_TILE;
    i64 wordsPerRow = (transposed ? K : N) * bits / 32, groups = (transposed ? K : N) / gs;
    for (i64 z = blockIdx.z; z < batches; z += gridDim.z) {
        QOffsets o = q_offsets(z, lhs, rhs, bn, bshape, xb, wb, sb, bb);
        const T* xz = x + o.x;
        float acc[QMM_TILE / 8];
#pragma unroll
        for (int r = 0; r < QMM_TILE / 8; ++r) acc[r] = 0.0f;
        for (i64 k0 = 0; k0 < K; k0 += QMM_TILE) {
#pragma unroll
            for (int r = 0; r < QMM_TILE / 8; ++r) {
                int row = ty + 8 * r;
                i64 m = m0 + row, k = k0 + tx;
                Xs[row][tx] = (m < M && k < K) ? to_float(xz[m * K + k]) : 0.0f;
                // W tile element (k0 + row, n0 + tx)
                i64 kw = k0 + row, n = n0 + tx;
                float wv = 0.0f;
                if (kw < K && n < N) {
                    i64 r0 = transposed ? n : kw, c = transposed ? kw : n;
                    i64 g = r0 * groups + c / gs;
                    wv = to_float(scales[o.s + g]) * (float)unpack_code(w + o.w + r0 * wordsPerRow, c, bits)
                        + to_float(biases[o.b + g]);
                }
                Ws[row][tx] = wv;
            }
            __syncthreads();
#pragma unroll
            for (int r = 0; r < QMM_TILE / 8; ++r) {
                int row = ty + 8 * r;
#pragma unroll 8
                for (int kk = 0; kk < QMM_TILE; ++kk) acc[r] += Xs[row][kk] * Ws[kk][tx];
            }
            __syncthreads();
        }
#pragma unroll
        for (int r = 0; r < QMM_TILE / 8; ++r) {
            i64 m = m0 + ty + 8 * r, n = n0 + tx;
            if (m < M && n < N) out[(z * M + m) * N + n] = from_float<T>(acc[r]);
        }
    }
}

#define QMM_ARGS x, w, scales, biases, out, M, N, K, gs, bits, batches, lhs, rhs, bn, bshape, xb, wb, sb, bb
#define QMM_KERNEL_PARAMS(T) \
    const T *x, const u32 *w, const T *scales, const T *biases, T *out, i64 M, i64 N, i64 K, int gs, int bits, \
        i64 batches, const u32 *lhs, const u32 *rhs, int bn, Dims bshape, Dims xb, Dims wb, Dims sb, Dims bb

#define QUANTIZED(T, s) \
    extern "C" __global__ void quantized_params_##s(const T* w, float* out, i64 groups, int gs, int bits) { \
        quantize_parameters<T>(w, out, groups, gs, bits); \
    } \
    extern "C" __global__ void quantized_pack_##s(const T* w, const float* params, u32* out, i64 words, i64 count, \
                                                  int gs, int bits) { \
        quantize_pack<T>(w, params, out, words, count, gs, bits); \
    } \
    extern "C" __global__ void quantized_dequant_##s(const u32* wq, const T* scales, const T* biases, T* out, \
                                                     i64 count, int gs, int bits) { \
        dequantize<T>(wq, scales, biases, out, count, gs, bits); \
    } \
    extern "C" __global__ void __launch_bounds__(256) quantized_qmvt_##s(QMM_KERNEL_PARAMS(T)) { \
        qmv_transposed<T>(QMM_ARGS); \
    } \
    extern "C" __global__ void __launch_bounds__(256) quantized_qmv_##s(QMM_KERNEL_PARAMS(T)) { qmv_plain<T>(QMM_ARGS); } \
    extern "C" __global__ void __launch_bounds__(256) quantized_qmm_##s(int transposed, QMM_KERNEL_PARAMS(T)) { \
        qmm_tiled<T>(transposed, QMM_ARGS); \
    }
QUANTIZED(float, f32) QUANTIZED(f16, f16) QUANTIZED(bf16, bf16)
