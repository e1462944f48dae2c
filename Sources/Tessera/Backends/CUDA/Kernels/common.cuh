// Shared by every Tessera CUDA kernel: fixed-width types, float16/bfloat16
// storage types converted to float in registers, and strided index math.
// Header-free on purpose (no cuda_fp16.h / cuda_bf16.h): NVRTC then needs no
// CUDA headers at run time, only libnvrtc. Layout: element strides, rank <= 8,
// shape and strides passed by value in `Dims`.
#pragma once

typedef long long i64;
typedef unsigned long long u64;
typedef int i32;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

#define TESSERA_MAX_DIMS 8

struct Dims { i64 v[TESSERA_MAX_DIMS]; };

// IEEE half and bfloat16 as raw 16-bit storage.
struct f16 { u16 bits; };
struct bf16 { u16 bits; };

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(f16 x) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
    return f;
}
__device__ __forceinline__ float to_float(bf16 x) { return __uint_as_float(((u32)x.bits) << 16); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ f16 from_float<f16>(float x) {
    f16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(x));
    return h;
}
// Round to nearest even, as the CPU backend's bit shifting does; NaN stays quiet NaN.
template <> __device__ __forceinline__ bf16 from_float<bf16>(float x) {
    u32 u = __float_as_uint(x);
    bf16 b;
    if ((u & 0x7fffffffu) > 0x7f800000u) { b.bits = (u16)((u >> 16) | 0x40); return b; }
    u += 0x7fffu + ((u >> 16) & 1u);
    b.bits = (u16)(u >> 16);
    return b;
}

// The element offset of linear index `i` in a strided array of rank `ndim`.
__device__ __forceinline__ i64 strided_offset(i64 i, int ndim, const Dims& shape, const Dims& strides) {
    // Unrolled with constant indices so shape/strides stay in the parameter
    // bank (a dynamic index would copy them to a local-memory stack frame).
    i64 offset = 0;
#pragma unroll
    for (int d = TESSERA_MAX_DIMS - 1; d >= 0; --d) {
        if (d < ndim) {
            i64 n = shape.v[d];
            offset += (i % n) * strides.v[d];
            i /= n;
        }
    }
    return offset;
}

// Grid-stride loop over [0, n).
#define TESSERA_GRID_LOOP(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)
