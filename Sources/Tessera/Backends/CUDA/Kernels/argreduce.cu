// argMax / argMin along one axis: one warp per output, 8 outputs per
// 256-thread block. The output's kept axes (kn, ks, kst) give the start of
// each reduced line; n and xs its length and stride. Output uint32 indices.
// As the CPU: the first NaN wins; otherwise the first of equal extremes.
// Kernel names: argreduce_<max|min>_<f32|f16|bf16|i32>.
#include "dense.cuh"

__device__ __forceinline__ bool is_nan_value(float v) { return isnan(v); }
__device__ __forceinline__ bool is_nan_value(i32) { return false; }
__device__ __forceinline__ float arg_load(float x) { return x; }
__device__ __forceinline__ float arg_load(f16 x) { return to_float(x); }
__device__ __forceinline__ float arg_load(bf16 x) { return to_float(x); }
__device__ __forceinline__ i32 arg_load(i32 x) { return x; }

// Whether candidate (a, ia) is preferred over (b, ib); index -1 is "none".
template <bool MAX, typename V> __device__ __forceinline__ bool arg_better(V a, i64 ia, V b, i64 ib) {
    if (ia < 0) return false;
    if (ib < 0) return true;
    bool an = is_nan_value(a), bn = is_nan_value(b);
    if (an || bn) return an && (!bn || ia < ib);
    if (a == b) return ia < ib;
    return MAX ? a > b : a < b;
}

template <typename T, bool MAX>
__device__ void argreduce_warp(const T* x, u32* y, i64 outputs, i64 n, i64 xs, int kn, const Dims& ks, const Dims& kst) {
    i64 o = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (o >= outputs) return;
    int lane = threadIdx.x & 31;
    const T* base = x + strided_offset(o, kn, ks, kst);
    auto best = arg_load(T());
    i64 bestIndex = -1;
    for (i64 j = lane; j < n; j += 32) {
        auto v = arg_load(base[j * xs]);
        if (arg_better<MAX>(v, j, best, bestIndex)) { best = v; bestIndex = j; }
    }
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
        auto other = __shfl_xor_sync(0xffffffffu, best, d);
        i64 otherIndex = __shfl_xor_sync(0xffffffffu, bestIndex, d);
        if (arg_better<MAX>(other, otherIndex, best, bestIndex)) { best = other; bestIndex = otherIndex; }
    }
    if (lane == 0) y[o] = bestIndex < 0 ? 0u : (u32)bestIndex;
}

#define ARGREDUCE(T, s) \
    extern "C" __global__ void __launch_bounds__(256) argreduce_max_##s( \
        const T* x, u32* y, i64 outputs, i64 n, i64 xs, int kn, Dims ks, Dims kst) { \
        argreduce_warp<T, true>(x, y, outputs, n, xs, kn, ks, kst); \
    } \
    extern "C" __global__ void __launch_bounds__(256) argreduce_min_##s( \
        const T* x, u32* y, i64 outputs, i64 n, i64 xs, int kn, Dims ks, Dims kst) { \
        argreduce_warp<T, false>(x, y, outputs, n, xs, kn, ks, kst); \
    }
ARGREDUCE(float, f32) ARGREDUCE(f16, f16) ARGREDUCE(bf16, bf16) ARGREDUCE(i32, i32)
