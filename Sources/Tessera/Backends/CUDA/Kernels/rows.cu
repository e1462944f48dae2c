// Row kernels along the last axis: softmax, logSoftmax, rmsNorm, layerNorm.
// A row's start comes from the kept axes (kn, ks, kst: the input's shape and
// strides without the last axis); xs is the stride along the row. The output
// is row-contiguous. Half types compute in float and round once.
// Two team sizes: `warp` (one warp per row, 8 rows per 256-thread block; rows
// up to ROWS_WARP_MAX) and `block` (one block of ROWS_BLOCK_THREADS per row).
// Kernel names: rows_<softmax|logsoftmax|norm>_<warp|block>_<f32|f16|bf16>.
// rows_norm is rmsNorm (center 0) and layerNorm (center 1); a null weight or
// bias is skipped.
#include "dense.cuh"

#define ROWS_WARP_THREADS 256
#define ROWS_BLOCK_THREADS 512

struct RowTeam {
    i64 row;
    int tid, count;
    bool active;
};

template <bool WARP> __device__ __forceinline__ RowTeam row_team(i64 rows) {
    RowTeam t;
    if (WARP) {
        t.row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
        t.tid = threadIdx.x & 31;
        t.count = 32;
    } else {
        t.row = blockIdx.x;
        t.tid = threadIdx.x;
        t.count = blockDim.x;
    }
    t.active = t.row < rows;
    return t;
}

template <typename T, bool WARP, bool LOG>
__device__ void softmax_rows(const T* x, T* y, i64 rows, i64 n, i64 xs, int kn, const Dims& ks, const Dims& kst) {
    __shared__ float scratch[32];
    RowTeam t = row_team<WARP>(rows);
    if (!t.active) return;  // whole warps (WARP) or whole blocks
    const T* xr = x + strided_offset(t.row, kn, ks, kst);
    T* yr = y + t.row * n;
    float m = -DENSE_INF;
    for (i64 j = t.tid; j < n; j += t.count) m = max_nan(m, to_float(xr[j * xs]));
    m = team_reduce<WARP, 1>(m, scratch);
    if (isinf(m) && m < 0.0f) m = 0.0f;  // all -inf: exp(x - 0), as the CPU; a +inf makes the row NaN
    float s = 0.0f;
    for (i64 j = t.tid; j < n; j += t.count) s += expf(to_float(xr[j * xs]) - m);
    s = team_reduce<WARP, 0>(s, scratch);
    if (LOG) {
        float ls = logf(s);
        for (i64 j = t.tid; j < n; j += t.count) yr[j] = from_float<T>(to_float(xr[j * xs]) - m - ls);
    } else {
        for (i64 j = t.tid; j < n; j += t.count) yr[j] = from_float<T>(expf(to_float(xr[j * xs]) - m) / s);
    }
}

template <typename T, bool WARP>
__device__ void norm_rows(const T* x, const T* w, i64 ws, const T* b, i64 bs, T* y, float eps, int center, i64 rows,
                          i64 n, i64 xs, int kn, const Dims& ks, const Dims& kst) {
    __shared__ float scratch[32];
    RowTeam t = row_team<WARP>(rows);
    if (!t.active) return;
    const T* xr = x + strided_offset(t.row, kn, ks, kst);
    T* yr = y + t.row * n;
    float mean = 0.0f;
    if (center) {
        float s = 0.0f;
        for (i64 j = t.tid; j < n; j += t.count) s += to_float(xr[j * xs]);
        mean = team_reduce<WARP, 0>(s, scratch) / (float)n;
    }
    float sq = 0.0f;
    for (i64 j = t.tid; j < n; j += t.count) {
        float d = to_float(xr[j * xs]) - mean;
        sq += d * d;
    }
    sq = team_reduce<WARP, 0>(sq, scratch);
    float inverse = 1.0f / sqrtf(sq / (float)n + eps);
    for (i64 j = t.tid; j < n; j += t.count) {
        float v = (to_float(xr[j * xs]) - mean) * inverse;
        if (w) v *= to_float(w[j * ws]);
        if (b) v += to_float(b[j * bs]);
        yr[j] = from_float<T>(v);
    }
}

#define ROWS_SOFTMAX(T, s, team, WARP, threads) \
    extern "C" __global__ void __launch_bounds__(threads) rows_softmax_##team##_##s( \
        const T* x, T* y, i64 rows, i64 n, i64 xs, int kn, Dims ks, Dims kst) { \
        softmax_rows<T, WARP, false>(x, y, rows, n, xs, kn, ks, kst); \
    } \
    extern "C" __global__ void __launch_bounds__(threads) rows_logsoftmax_##team##_##s( \
        const T* x, T* y, i64 rows, i64 n, i64 xs, int kn, Dims ks, Dims kst) { \
        softmax_rows<T, WARP, true>(x, y, rows, n, xs, kn, ks, kst); \
    } \
    extern "C" __global__ void __launch_bounds__(threads) rows_norm_##team##_##s( \
        const T* x, const T* w, i64 ws, const T* b, i64 bs, T* y, float eps, int center, i64 rows, i64 n, i64 xs, \
        int kn, Dims ks, Dims kst) { \
        norm_rows<T, WARP>(x, w, ws, b, bs, y, eps, center, rows, n, xs, kn, ks, kst); \
    }
#define ROWS_ALL(T, s) ROWS_SOFTMAX(T, s, warp, true, ROWS_WARP_THREADS) ROWS_SOFTMAX(T, s, block, false, ROWS_BLOCK_THREADS)
ROWS_ALL(float, f32) ROWS_ALL(f16, f16) ROWS_ALL(bf16, bf16)
