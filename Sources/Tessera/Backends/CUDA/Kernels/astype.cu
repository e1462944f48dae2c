// asType between float32, float16, bfloat16, int32 and bool. Input any
// strides (ndim == 0 means contiguous), output row-contiguous. Floats to
// int32 as the CPU backend does: truncate toward zero to int64 (saturating,
// NaN → 0), then keep the low 32 bits (so +inf gives -1, 3e9 wraps); anything
// to bool is `!= 0`.
// Kernel names: astype_<from>_<to>.
#include "common.cuh"

template <typename T> __device__ __forceinline__ float load_float(T x) { return to_float(x); }
template <> __device__ __forceinline__ float load_float<i32>(i32 x) { return (float)x; }
template <> __device__ __forceinline__ float load_float<u8>(u8 x) { return x ? 1.0f : 0.0f; }

template <typename U> struct Store {
    __device__ __forceinline__ U operator()(float v) const { return from_float<U>(v); }
};
template <> struct Store<i32> {
    __device__ __forceinline__ i32 operator()(float v) const { return (i32)(u32)(u64)__float2ll_rz(v); }
};
template <> struct Store<u8> {
    __device__ __forceinline__ u8 operator()(float v) const { return v != 0.0f ? 1 : 0; }
};

template <typename T, typename U>
__device__ __forceinline__ void astype(const T* x, U* y, i64 n, int ndim, const Dims& shape, const Dims& xs) {
    Store<U> store;
    TESSERA_GRID_LOOP(i, n) { y[i] = store(load_float(x[ndim == 0 ? i : strided_offset(i, ndim, shape, xs)])); }
}

#define ASTYPE(T, ts, U, us) \
    extern "C" __global__ void astype_##ts##_##us(const T* x, U* y, i64 n, int ndim, Dims shape, Dims xs) { \
        astype<T, U>(x, y, n, ndim, shape, xs); \
    }
#define ASTYPE_FROM(T, ts) \
    ASTYPE(T, ts, float, f32) ASTYPE(T, ts, f16, f16) ASTYPE(T, ts, bf16, bf16) ASTYPE(T, ts, u8, b8)
ASTYPE_FROM(float, f32) ASTYPE_FROM(f16, f16) ASTYPE_FROM(bf16, bf16) ASTYPE_FROM(u8, b8)
ASTYPE(float, f32, i32, i32) ASTYPE(f16, f16, i32, i32) ASTYPE(bf16, bf16, i32, i32) ASTYPE(u8, b8, i32, i32)

// int32 to floats goes through float (exact below 2^24, rounded above, as a
// float32 conversion is); int32 to bool and int32 to int32 stay integer.
ASTYPE(i32, i32, float, f32) ASTYPE(i32, i32, f16, f16) ASTYPE(i32, i32, bf16, bf16)
extern "C" __global__ void astype_i32_b8(const i32* x, u8* y, i64 n, int ndim, Dims shape, Dims xs) {
    TESSERA_GRID_LOOP(i, n) { y[i] = x[ndim == 0 ? i : strided_offset(i, ndim, shape, xs)] != 0 ? 1 : 0; }
}

// uint32 to float32 (random bits becoming uniform floats): round to nearest, as the CPU.
extern "C" __global__ void astype_u32_f32(const u32* x, float* y, i64 n, int ndim, Dims shape, Dims xs) {
    TESSERA_GRID_LOOP(i, n) { y[i] = (float)x[ndim == 0 ? i : strided_offset(i, ndim, shape, xs)]; }
}
