// gather (and the window starts scatter shares). For each position b of the
// index shape B, the window of x starting at index_j[b] on axes[j] (0 on the
// other axes) is copied, as CPUIndexing.swift does:
//  1. gather_starts_<idx> once per index array: starts[b] (+)= the index,
//     counted from the end once if negative, clamped to [0, hi], times the
//     axis stride (hi = axis size - window size). Index arrays of any integer
//     dtype and any strides (ndim/shape/strides over B; ndim 0: contiguous).
//     gather_zero_starts clears starts when there is no index array.
//  2. gather_<bytes>: y[i] = x[starts[i / window] + window offset of i % window]
//     (the window's shape over x's strides; wn 0: contiguous).
// Launch: grid-stride loops (LaunchGeometry.elementwise).
// Kernel names: gather_starts_<i8|i16|i32|i64|u8|u16|u32|u64>, gather_zero_starts,
// gather_<bytes>, bytes in 1 2 4 8.
#include "common.cuh"

#define GATHER_STARTS(IT, suffix) \
    extern "C" __global__ void gather_starts_##suffix(const IT* index, i64* starts, i64 count, int ndim, Dims shape, \
                                                      Dims strides, i64 axisSize, i64 hi, i64 stride, int accumulate) { \
        TESSERA_GRID_LOOP(b, count) { \
            i64 v = (i64)index[ndim == 0 ? b : strided_offset(b, ndim, shape, strides)]; \
            if (v < 0) v += axisSize; \
            v = v < 0 ? 0 : (v > hi ? hi : v); \
            starts[b] = (accumulate ? starts[b] : 0) + v * stride; \
        } \
    }
GATHER_STARTS(signed char, i8) GATHER_STARTS(short, i16) GATHER_STARTS(i32, i32) GATHER_STARTS(i64, i64)
GATHER_STARTS(u8, u8) GATHER_STARTS(u16, u16) GATHER_STARTS(u32, u32) GATHER_STARTS(u64, u64)

extern "C" __global__ void gather_zero_starts(i64* p, i64 n) {
    TESSERA_GRID_LOOP(i, n) { p[i] = 0; }
}

#define GATHER(T, bytes) \
    extern "C" __global__ void gather_##bytes(const T* x, const i64* starts, T* y, i64 n, i64 window, int wn, \
                                              Dims wshape, Dims wstrides) { \
        TESSERA_GRID_LOOP(i, n) { \
            i64 b = i / window, j = i - b * window; \
            y[i] = x[starts[b] + (wn == 0 ? j : strided_offset(j, wn, wshape, wstrides))]; \
        } \
    }
GATHER(u8, 1) GATHER(u16, 2) GATHER(u32, 4) GATHER(u64, 8)
