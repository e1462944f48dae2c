// Shared by the dense-family kernels (rows, argreduce, rope, matmul,
// attention, quantized): warp and block reductions in float, and the
// packed-code reader of MLX's affine quantization. Header-free, like
// common.cuh. Dynamic shared memory is declared one way everywhere:
// `extern __shared__ float dense_smem[];` through DENSE_SMEM.
#pragma once
#include "common.cuh"

#define DENSE_INF __int_as_float(0x7f800000)
#define DENSE_SMEM extern __shared__ float dense_smem[]

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
    return v;
}

// Maximum that ignores NaN (fmaxf); NaN scores propagate through the sums instead.
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, d));
    return v;
}

// Maximum that propagates NaN (as the CPU softmax does).
__device__ __forceinline__ float max_nan(float a, float b) {
    return (isnan(a) || isnan(b)) ? a + b : fmaxf(a, b);
}
__device__ __forceinline__ float warp_max_nan(float v) {
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, d));
    return v;
}

// A reduction over the team that shares a row: one warp (WARP) or the whole
// block (through `scratch`, 32 floats of shared memory). Every thread of the
// team gets the result. Block teams must call it from every thread.
template <bool WARP, int OP>  // OP: 0 sum, 1 max_nan
__device__ __forceinline__ float team_reduce(float v, float* scratch) {
    v = OP == 0 ? warp_sum(v) : warp_max_nan(v);
    if (WARP) return v;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();  // an earlier reduction's readers are done with scratch
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float identity = OP == 0 ? 0.0f : -DENSE_INF;
    float t = lane < (int)(blockDim.x >> 5) ? scratch[lane] : identity;
    return OP == 0 ? warp_sum(t) : warp_max_nan(t);
}

// Element `index` of a packed little-endian bit stream of `bits`-wide codes (bits <= 8).
__device__ __forceinline__ u32 unpack_code(const u32* words, i64 index, int bits) {
    i64 bit = index * bits;
    i64 word = bit >> 5;
    int shift = (int)(bit & 31);
    u32 value = words[word] >> shift;
    if (shift + bits > 32) value |= words[word + 1] << (32 - shift);
    return value & ((1u << bits) - 1u);
}
