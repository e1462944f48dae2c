// Element-wise unary ops. float32/float16/bfloat16 compute in float; int32
// and bool have the few ops that make sense for them. Input: any strides
// (ndim == 0 means contiguous); output: row-contiguous.
// Kernel names: unary_<op>_<dtype>, dtype in f32 f16 bf16 i32 b8.
#include "common.cuh"

// MLX's erfinv (Giles' single-precision polynomials in log(1 - x²)), with
// the CPU backend's fused multiply-adds, so normal samples match MLX and the
// CPU bit for bit (CUDA's erfinvf rounds differently).
__device__ __forceinline__ float erfinv_mlx(float a) {
    float t = logf(fmaf(a, 0.0f - a, 1.0f)), p;
    if (fabsf(t) > 6.125f) {
        p = 3.03697567e-10f;
        p = fmaf(p, t, 2.93243101e-8f); p = fmaf(p, t, 1.22150334e-6f); p = fmaf(p, t, 2.84108955e-5f);
        p = fmaf(p, t, 3.93552968e-4f); p = fmaf(p, t, 3.02698812e-3f); p = fmaf(p, t, 4.83185798e-3f);
        p = fmaf(p, t, -2.64646143e-1f); p = fmaf(p, t, 8.40016484e-1f);
    } else {
        p = 5.43877832e-9f;
        p = fmaf(p, t, 1.43285448e-7f); p = fmaf(p, t, 1.22774793e-6f); p = fmaf(p, t, 1.12963626e-7f);
        p = fmaf(p, t, -5.61530760e-5f); p = fmaf(p, t, -1.47697632e-4f); p = fmaf(p, t, 2.31468678e-3f);
        p = fmaf(p, t, 1.15392581e-2f); p = fmaf(p, t, -2.32015476e-1f); p = fmaf(p, t, 8.86226892e-1f);
    }
    return a * p;
}

#define FLOAT_OP(name, expr) \
    struct Op_##name { __device__ __forceinline__ float operator()(float x) const { return (expr); } };

FLOAT_OP(abs, fabsf(x))
FLOAT_OP(negative, -x)
FLOAT_OP(sign, x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : (x == 0.0f ? x : 0.0f)))  // NaN gives 0, as MLX and torch
FLOAT_OP(square, x * x)
FLOAT_OP(sqrt, sqrtf(x))
FLOAT_OP(rsqrt, rsqrtf(x))
FLOAT_OP(reciprocal, 1.0f / x)
FLOAT_OP(exp, expf(x))
FLOAT_OP(expm1, expm1f(x))
FLOAT_OP(log, logf(x))
FLOAT_OP(log2, log2f(x))
FLOAT_OP(log10, log10f(x))
FLOAT_OP(log1p, log1pf(x))
FLOAT_OP(sin, sinf(x))
FLOAT_OP(cos, cosf(x))
FLOAT_OP(tan, tanf(x))
FLOAT_OP(arcsin, asinf(x))
FLOAT_OP(arccos, acosf(x))
FLOAT_OP(arctan, atanf(x))
FLOAT_OP(sinh, sinhf(x))
FLOAT_OP(cosh, coshf(x))
FLOAT_OP(tanh, tanhf(x))
FLOAT_OP(arcsinh, asinhf(x))
FLOAT_OP(arccosh, acoshf(x))
FLOAT_OP(arctanh, atanhf(x))
FLOAT_OP(sigmoid, 1.0f / (1.0f + expf(-x)))
FLOAT_OP(erf, erff(x))
FLOAT_OP(erfinv, erfinv_mlx(x))
FLOAT_OP(floor, floorf(x))
FLOAT_OP(ceil, ceilf(x))
FLOAT_OP(round, rintf(x))

template <typename T, typename Op>
__device__ __forceinline__ void unary_float(const T* x, T* y, i64 n, int ndim, const Dims& shape, const Dims& xs) {
    Op op;
    TESSERA_GRID_LOOP(i, n) {
        i64 xi = ndim == 0 ? i : strided_offset(i, ndim, shape, xs);
        y[i] = from_float<T>(op(to_float(x[xi])));
    }
}

#define UNARY_FLOAT(name, T, suffix) \
    extern "C" __global__ void unary_##name##_##suffix(const T* x, T* y, i64 n, int ndim, Dims shape, Dims xs) { \
        unary_float<T, Op_##name>(x, y, n, ndim, shape, xs); \
    }
#define UNARY_FLOAT_ALL(name) UNARY_FLOAT(name, float, f32) UNARY_FLOAT(name, f16, f16) UNARY_FLOAT(name, bf16, bf16)

UNARY_FLOAT_ALL(abs) UNARY_FLOAT_ALL(negative) UNARY_FLOAT_ALL(sign) UNARY_FLOAT_ALL(square)
UNARY_FLOAT_ALL(sqrt) UNARY_FLOAT_ALL(rsqrt) UNARY_FLOAT_ALL(reciprocal)
UNARY_FLOAT_ALL(exp) UNARY_FLOAT_ALL(expm1) UNARY_FLOAT_ALL(log) UNARY_FLOAT_ALL(log2)
UNARY_FLOAT_ALL(log10) UNARY_FLOAT_ALL(log1p)
UNARY_FLOAT_ALL(sin) UNARY_FLOAT_ALL(cos) UNARY_FLOAT_ALL(tan)
UNARY_FLOAT_ALL(arcsin) UNARY_FLOAT_ALL(arccos) UNARY_FLOAT_ALL(arctan)
UNARY_FLOAT_ALL(sinh) UNARY_FLOAT_ALL(cosh) UNARY_FLOAT_ALL(tanh)
UNARY_FLOAT_ALL(arcsinh) UNARY_FLOAT_ALL(arccosh) UNARY_FLOAT_ALL(arctanh)
UNARY_FLOAT_ALL(sigmoid) UNARY_FLOAT_ALL(erf) UNARY_FLOAT_ALL(erfinv)
UNARY_FLOAT_ALL(floor) UNARY_FLOAT_ALL(ceil) UNARY_FLOAT_ALL(round)

// Float classification: output bool (one byte, 0 or 1).
#define UNARY_CLASSIFY(name, expr, T, suffix) \
    extern "C" __global__ void unary_##name##_##suffix(const T* x, u8* y, i64 n, int ndim, Dims shape, Dims xs) { \
        TESSERA_GRID_LOOP(i, n) { \
            float v = to_float(x[ndim == 0 ? i : strided_offset(i, ndim, shape, xs)]); \
            y[i] = (expr) ? 1 : 0; \
        } \
    }
#define UNARY_CLASSIFY_ALL(name, expr) \
    UNARY_CLASSIFY(name, expr, float, f32) UNARY_CLASSIFY(name, expr, f16, f16) UNARY_CLASSIFY(name, expr, bf16, bf16)
UNARY_CLASSIFY_ALL(isNaN, isnan(v))
UNARY_CLASSIFY_ALL(isInf, isinf(v))
UNARY_CLASSIFY_ALL(isFinite, isfinite(v))

// int32 and bool. Integer negation and squaring wrap, as on the CPU.
#define UNARY_INT(name, T, suffix, expr) \
    extern "C" __global__ void unary_##name##_##suffix(const T* x, T* y, i64 n, int ndim, Dims shape, Dims xs) { \
        TESSERA_GRID_LOOP(i, n) { \
            T v = x[ndim == 0 ? i : strided_offset(i, ndim, shape, xs)]; \
            y[i] = (expr); \
        } \
    }
UNARY_INT(abs, i32, i32, (i32)(v < 0 ? 0u - (u32)v : (u32)v))
UNARY_INT(negative, i32, i32, (i32)(0u - (u32)v))
UNARY_INT(sign, i32, i32, (v > 0) - (v < 0))
UNARY_INT(square, i32, i32, (i32)((u32)v * (u32)v))
UNARY_INT(bitwiseInvert, i32, i32, ~v)
UNARY_INT(logicalNot, u8, b8, (u8)(v == 0))
