// Reductions: one block per output element; its threads stride over the
// reduced elements and combine through warp shuffles and shared memory.
// The host splits the input's axes into kept (shape ks, strides kst) and
// reduced (rs, rst); a single reduced axis of stride 1 reads contiguously
// (the row-reduce fast path). Half types accumulate in float.
// Launch: grid = outputs, block = REDUCE_THREADS (256).
// Kernel names: reduce_<op>_<dtype>: sum/prod/max/min for f32 f16 bf16 i32,
// all/any for b8.
#include "common.cuh"

#define REDUCE_THREADS 256

struct R_sum { template <typename A> __device__ __forceinline__ A operator()(A a, A b) const { return a + b; } };
struct R_prod { template <typename A> __device__ __forceinline__ A operator()(A a, A b) const { return a * b; } };
struct R_max {
    __device__ __forceinline__ float operator()(float a, float b) const { return (isnan(a) || isnan(b)) ? a + b : fmaxf(a, b); }
    __device__ __forceinline__ i32 operator()(i32 a, i32 b) const { return a > b ? a : b; }
};
struct R_min {
    __device__ __forceinline__ float operator()(float a, float b) const { return (isnan(a) || isnan(b)) ? a + b : fminf(a, b); }
    __device__ __forceinline__ i32 operator()(i32 a, i32 b) const { return a < b ? a : b; }
};
struct R_all { __device__ __forceinline__ i32 operator()(i32 a, i32 b) const { return a && b; } };
struct R_any { __device__ __forceinline__ i32 operator()(i32 a, i32 b) const { return a || b; } };

template <typename T> __device__ __forceinline__ float acc_load(T x) { return to_float(x); }
__device__ __forceinline__ i32 acc_load(i32 x) { return x; }
__device__ __forceinline__ i32 acc_load(u8 x) { return x != 0; }
template <typename T> struct AccStore { __device__ __forceinline__ T operator()(float v) const { return from_float<T>(v); } };
template <> struct AccStore<i32> { __device__ __forceinline__ i32 operator()(i32 v) const { return v; } };
template <> struct AccStore<u8> { __device__ __forceinline__ u8 operator()(i32 v) const { return v ? 1 : 0; } };

__device__ __forceinline__ float shuffle_down(float v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }
__device__ __forceinline__ i32 shuffle_down(i32 v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }

template <typename T, typename A, typename Op>
__device__ void reduce_block(const T* x, T* y, A identity, i64 nRed,
                             int kn, const Dims& ks, const Dims& kst, int rn, const Dims& rs, const Dims& rst) {
    __shared__ A partial[REDUCE_THREADS / 32];
    Op op;
    const T* base = x + strided_offset(blockIdx.x, kn, ks, kst);
    bool rowContiguous = rn == 1 && rst.v[0] == 1;
    A acc = identity;
    for (i64 r = threadIdx.x; r < nRed; r += blockDim.x) {
        i64 offset = rowContiguous ? r : strided_offset(r, rn, rs, rst);
        acc = op(acc, acc_load(base[offset]));
    }
    for (int d = 16; d > 0; d >>= 1) acc = op(acc, shuffle_down(acc, d));
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) partial[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < (int)(blockDim.x / 32) ? partial[lane] : identity;
        for (int d = 16; d > 0; d >>= 1) acc = op(acc, shuffle_down(acc, d));
        if (lane == 0) y[blockIdx.x] = AccStore<T>()(acc);
    }
}

#define REDUCE(name, T, suffix, A, identity) \
    extern "C" __global__ void __launch_bounds__(REDUCE_THREADS) reduce_##name##_##suffix( \
        const T* x, T* y, i64 nRed, int kn, Dims ks, Dims kst, int rn, Dims rs, Dims rst) { \
        reduce_block<T, A, R_##name>(x, y, (A)(identity), nRed, kn, ks, kst, rn, rs, rst); \
    }
#define REDUCE_FLOATS(name, identity) \
    REDUCE(name, float, f32, float, identity) REDUCE(name, f16, f16, float, identity) \
    REDUCE(name, bf16, bf16, float, identity)

REDUCE_FLOATS(sum, 0.0f) REDUCE_FLOATS(prod, 1.0f)
REDUCE_FLOATS(max, -__int_as_float(0x7f800000)) REDUCE_FLOATS(min, __int_as_float(0x7f800000))
REDUCE(sum, i32, i32, i32, 0) REDUCE(prod, i32, i32, i32, 1)
REDUCE(max, i32, i32, i32, (i32)0x80000000) REDUCE(min, i32, i32, i32, 0x7fffffff)
REDUCE(all, u8, b8, i32, 1) REDUCE(any, u8, b8, i32, 0)
