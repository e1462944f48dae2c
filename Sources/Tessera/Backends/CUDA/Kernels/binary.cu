// Element-wise binary ops with broadcasting: both inputs any strides (0 on
// broadcast axes; ndim == 0 means both contiguous), output row-contiguous.
// float32/float16/bfloat16 compute in float with the CPU backend's semantics
// (NaN-propagating maximum/minimum, Python-style remainder); int32 wraps.
// Kernel names: binary_<op>_<dtype>, dtype in f32 f16 bf16 i32 b8.
#include "common.cuh"

#define FLOAT_OP(name, expr) \
    struct F_##name { __device__ __forceinline__ float operator()(float a, float b) const { return (expr); } };
FLOAT_OP(add, a + b)
FLOAT_OP(subtract, a - b)
FLOAT_OP(multiply, a * b)
FLOAT_OP(divide, a / b)
FLOAT_OP(floorDivide, floorf(a / b))
FLOAT_OP(power, powf(a, b))
FLOAT_OP(maximum, (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : fmaxf(a, b))
FLOAT_OP(minimum, (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : fminf(a, b))
FLOAT_OP(arctan2, atan2f(a, b))
struct F_remainder {
    __device__ __forceinline__ float operator()(float a, float b) const {
        float r = fmodf(a, b);
        if (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) r += b;
        return r;
    }
};
struct F_logAddExp {
    __device__ __forceinline__ float operator()(float a, float b) const {
        if (isinf(a) && a == b) return a;  // a - b would be NaN
        float m = fmaxf(a, b);
        if (isnan(a) || isnan(b)) return __int_as_float(0x7fc00000);
        return m + log1pf(expf(-fabsf(a - b)));
    }
};

#define CMP_OP(name, expr) \
    struct C_##name { template <typename T> __device__ __forceinline__ bool operator()(T a, T b) const { return (expr); } };
CMP_OP(equal, a == b)
CMP_OP(notEqual, a != b)
CMP_OP(less, a < b)
CMP_OP(lessEqual, a <= b)
CMP_OP(greater, a > b)
CMP_OP(greaterEqual, a >= b)

#define INDICES \
    i64 ai = ndim == 0 ? i : strided_offset(i, ndim, shape, as); \
    i64 bi = ndim == 0 ? i : strided_offset(i, ndim, shape, bs);
#define PARAMS(T, U) const T* a, const T* b, U* y, i64 n, int ndim, Dims shape, Dims as, Dims bs

#define BINARY_FLOAT(name, T, suffix) \
    extern "C" __global__ void binary_##name##_##suffix(PARAMS(T, T)) { \
        F_##name op; \
        TESSERA_GRID_LOOP(i, n) { INDICES y[i] = from_float<T>(op(to_float(a[ai]), to_float(b[bi]))); } \
    }
#define BINARY_CMP_FLOAT(name, T, suffix) \
    extern "C" __global__ void binary_##name##_##suffix(PARAMS(T, u8)) { \
        C_##name op; \
        TESSERA_GRID_LOOP(i, n) { INDICES y[i] = op(to_float(a[ai]), to_float(b[bi])) ? 1 : 0; } \
    }
#define BINARY_FLOAT_ALL(name) BINARY_FLOAT(name, float, f32) BINARY_FLOAT(name, f16, f16) BINARY_FLOAT(name, bf16, bf16)
#define BINARY_CMP_ALL(name) \
    BINARY_CMP_FLOAT(name, float, f32) BINARY_CMP_FLOAT(name, f16, f16) BINARY_CMP_FLOAT(name, bf16, bf16) \
    BINARY_INT(name, i32, u8, i32, op(x, z) ? 1 : 0, C_##name op;) \
    BINARY_INT(name, u8, u8, b8, op(x, z) ? 1 : 0, C_##name op;)

BINARY_FLOAT_ALL(add) BINARY_FLOAT_ALL(subtract) BINARY_FLOAT_ALL(multiply) BINARY_FLOAT_ALL(divide)
BINARY_FLOAT_ALL(floorDivide) BINARY_FLOAT_ALL(remainder) BINARY_FLOAT_ALL(power)
BINARY_FLOAT_ALL(maximum) BINARY_FLOAT_ALL(minimum) BINARY_FLOAT_ALL(arctan2) BINARY_FLOAT_ALL(logAddExp)

// Integer and bool kernels: x, z are the two loaded elements.
#define BINARY_INT(name, T, U, suffix, expr, setup) \
    extern "C" __global__ void binary_##name##_##suffix(PARAMS(T, U)) { \
        setup \
        TESSERA_GRID_LOOP(i, n) { INDICES T x = a[ai]; T z = b[bi]; y[i] = (U)(expr); } \
    }

BINARY_CMP_ALL(equal) BINARY_CMP_ALL(notEqual) BINARY_CMP_ALL(less) BINARY_CMP_ALL(lessEqual)
BINARY_CMP_ALL(greater) BINARY_CMP_ALL(greaterEqual)

__device__ __forceinline__ i32 int_floor_divide(i32 x, i32 z) {
    if (z == 0) return 0;
    if (x == (i32)0x80000000 && z == -1) return x;
    i32 q = x / z;
    return ((x % z != 0) && ((x < 0) != (z < 0))) ? q - 1 : q;
}
__device__ __forceinline__ i32 int_remainder(i32 x, i32 z) {
    if (z == 0 || (x == (i32)0x80000000 && z == -1)) return 0;
    i32 r = x % z;
    return (r != 0 && ((r < 0) != (z < 0))) ? (i32)((u32)r + (u32)z) : r;
}

BINARY_INT(add, i32, i32, i32, (u32)x + (u32)z, )
BINARY_INT(subtract, i32, i32, i32, (u32)x - (u32)z, )
BINARY_INT(multiply, i32, i32, i32, (u32)x * (u32)z, )
BINARY_INT(floorDivide, i32, i32, i32, int_floor_divide(x, z), )
BINARY_INT(remainder, i32, i32, i32, int_remainder(x, z), )
BINARY_INT(maximum, i32, i32, i32, x > z ? x : z, )
BINARY_INT(minimum, i32, i32, i32, x < z ? x : z, )
BINARY_INT(bitwiseAnd, i32, i32, i32, x & z, )
BINARY_INT(bitwiseOr, i32, i32, i32, x | z, )
BINARY_INT(bitwiseXor, i32, i32, i32, x ^ z, )
BINARY_INT(logicalAnd, u8, u8, b8, x != 0 && z != 0, )
BINARY_INT(logicalOr, u8, u8, b8, x != 0 || z != 0, )
BINARY_INT(bitwiseAnd, u8, u8, b8, x & z, )
BINARY_INT(bitwiseOr, u8, u8, b8, x | z, )
BINARY_INT(bitwiseXor, u8, u8, b8, x ^ z, )
