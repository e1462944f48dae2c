// scatter: the output (already a row-contiguous copy of x) gets each update
// window combined at the starts gather_starts_* computed (gather.cu), as
// CPUIndexing.swift's ScatterKernel does. Element i = b * window + j of the
// updates (shape B + window, any strides: un/ushape/ustrides, un 0 for
// contiguous) lands at out[starts[b] + window offset of j] (wshape over the
// output's strides, wn 0 for contiguous).
// - set: the last b wins, as on the CPU: scatter_fill_i32 sets winner to -1,
//   scatter_winner takes the atomic max of b per target, scatter_set_<bytes>
//   writes only the winner's value (deterministic with duplicate indices).
//   With one update window (no duplicates possible) winner is null.
// - add/prod/max/min: atomics; 32-bit compare-and-swap loops where the
//   hardware has no atomic (products, float max/min, 16-bit floats, bools
//   through the aligned word that holds them). Float max/min propagate NaN;
//   16-bit floats combine in float and round once per update; integers wrap.
//   float64 and int64 use 64-bit compare-and-swap (atomicAdd for sums).
// Launch: grid-stride loops (LaunchGeometry.elementwise).
// Kernel names: scatter_fill_i32, scatter_winner, scatter_set_<bytes> (1 2 4 8),
// scatter_<add|prod|max|min>_<f64|f32|f16|bf16|i64|i32|u32|b8>.
#include "common.cuh"

#define SCATTER_PARAMS \
    const i64 *starts, i64 n, i64 window, int wn, Dims wshape, Dims wstrides, int un, Dims ushape, Dims ustrides
#define SCATTER_TARGET(i) \
    (starts[(i) / window] + (wn == 0 ? (i) % window : strided_offset((i) % window, wn, wshape, wstrides)))
#define SCATTER_SOURCE(i) (un == 0 ? (i) : strided_offset((i), un, ushape, ustrides))

extern "C" __global__ void scatter_fill_i32(i32* p, i64 n, i32 value) {
    TESSERA_GRID_LOOP(i, n) { p[i] = value; }
}

extern "C" __global__ void scatter_winner(i32* winner, SCATTER_PARAMS) {
    TESSERA_GRID_LOOP(i, n) { atomicMax(&winner[SCATTER_TARGET(i)], (i32)(i / window)); }
}

#define SCATTER_SET(T, bytes) \
    extern "C" __global__ void scatter_set_##bytes(const T* upd, const i32* winner, T* out, SCATTER_PARAMS) { \
        TESSERA_GRID_LOOP(i, n) { \
            i64 t = SCATTER_TARGET(i); \
            if (!winner || winner[t] == (i32)(i / window)) out[t] = upd[SCATTER_SOURCE(i)]; \
        } \
    }
SCATTER_SET(u8, 1) SCATTER_SET(u16, 2) SCATTER_SET(u32, 4) SCATTER_SET(u64, 8)

// Combining rules on float values (NaN-propagating max/min, as maximum/minimum).
struct C_add {
    __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
    __device__ __forceinline__ double operator()(double a, double b) const { return a + b; }
};
struct C_prod {
    __device__ __forceinline__ float operator()(float a, float b) const { return a * b; }
    __device__ __forceinline__ double operator()(double a, double b) const { return a * b; }
};
struct C_max {
    __device__ __forceinline__ float operator()(float a, float b) const {
        return (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : (b > a ? b : a);
    }
    __device__ __forceinline__ double operator()(double a, double b) const {
        return (isnan(a) || isnan(b)) ? __longlong_as_double(0x7ff8000000000000ll) : (b > a ? b : a);
    }
};
struct C_min {
    __device__ __forceinline__ float operator()(float a, float b) const {
        return (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : (b < a ? b : a);
    }
    __device__ __forceinline__ double operator()(double a, double b) const {
        return (isnan(a) || isnan(b)) ? __longlong_as_double(0x7ff8000000000000ll) : (b < a ? b : a);
    }
};

template <typename Op> __device__ __forceinline__ void atomic_combine(float* p, float v) {
    u32* word = (u32*)p;
    u32 old = *word, assumed;
    do {
        assumed = old;
        u32 next = __float_as_uint(Op()(__uint_as_float(assumed), v));
        if (next == assumed) return;
        old = atomicCAS(word, assumed, next);
    } while (old != assumed);
}
template <> __device__ __forceinline__ void atomic_combine<C_add>(float* p, float v) { atomicAdd(p, v); }

// 16-bit floats: compare-and-swap on the aligned 32-bit word holding the element.
template <typename H, typename Op> __device__ __forceinline__ void atomic_combine_half(H* p, float v) {
    u32* word = (u32*)((u64)p & ~(u64)3);
    u32 shift = ((u64)p & 2) ? 16u : 0u;
    u32 old = *word, assumed;
    do {
        assumed = old;
        H h;
        h.bits = (u16)(assumed >> shift);
        H r = from_float<H>(Op()(to_float(h), v));
        u32 next = (assumed & ~(0xffffu << shift)) | ((u32)r.bits << shift);
        if (next == assumed) return;
        old = atomicCAS(word, assumed, next);
    } while (old != assumed);
}
template <typename Op> __device__ __forceinline__ void atomic_combine(f16* p, float v) { atomic_combine_half<f16, Op>(p, v); }
template <typename Op> __device__ __forceinline__ void atomic_combine(bf16* p, float v) { atomic_combine_half<bf16, Op>(p, v); }

// float64: compare-and-swap on the 64-bit word (an atomicAdd for sums).
template <typename Op> __device__ __forceinline__ void atomic_combine64(double* p, double v) {
    u64* word = (u64*)p;
    u64 old = *word, assumed;
    do {
        assumed = old;
        double a = __longlong_as_double((long long)assumed);
        double r = Op()(a, v);
        u64 next = (u64)__double_as_longlong(r);
        if (next == assumed) return;
        old = atomicCAS((unsigned long long*)word, (unsigned long long)assumed, (unsigned long long)next);
    } while (old != assumed);
}

// int64 (wrapping): compare-and-swap loops on the 64-bit word.
__device__ __forceinline__ void atomic_int64(i64* p, i64 v, int op) {
    unsigned long long* word = (unsigned long long*)p;
    if (op == 0) { atomicAdd(word, (unsigned long long)v); return; }
    unsigned long long old = *word, assumed;
    do {
        assumed = old;
        i64 a = (i64)assumed;
        i64 r = op == 1 ? (i64)((u64)a * (u64)v) : op == 2 ? (v > a ? v : a) : (v < a ? v : a);
        if ((unsigned long long)r == assumed) return;
        old = atomicCAS(word, assumed, (unsigned long long)r);
    } while (old != assumed);
}

// 32-bit integers (wrapping): native atomics but for the product.
template <typename I> __device__ __forceinline__ void atomic_int(I* p, I v, int op) {
    if (op == 0) { atomicAdd(p, v); return; }
    if (op == 2) { atomicMax(p, v); return; }
    if (op == 3) { atomicMin(p, v); return; }
    u32* word = (u32*)p;
    u32 old = *word, assumed;
    do {
        assumed = old;
        u32 next = assumed * (u32)v;
        old = atomicCAS(word, assumed, next);
    } while (old != assumed);
}

// Bools (bytes 0/1): add and max are `or`, prod and min are `and`, on the word holding the byte.
__device__ __forceinline__ void atomic_bool(u8* p, u8 v, bool isOr) {
    u32* word = (u32*)((u64)p & ~(u64)3);
    u32 shift = (u32)((u64)p & 3) * 8u;
    if (isOr) {
        if (v) atomicOr(word, 1u << shift);
    } else if (!v) {
        atomicAnd(word, ~(0xffu << shift));
    }
}

#define SCATTER_FLOAT(name, Op, T, suffix) \
    extern "C" __global__ void scatter_##name##_##suffix(const T* upd, T* out, SCATTER_PARAMS) { \
        TESSERA_GRID_LOOP(i, n) { atomic_combine<Op>(&out[SCATTER_TARGET(i)], to_float(upd[SCATTER_SOURCE(i)])); } \
    }
#define SCATTER_FLOATS(name, Op) \
    SCATTER_FLOAT(name, Op, float, f32) SCATTER_FLOAT(name, Op, f16, f16) SCATTER_FLOAT(name, Op, bf16, bf16)
SCATTER_FLOATS(add, C_add) SCATTER_FLOATS(prod, C_prod) SCATTER_FLOATS(max, C_max) SCATTER_FLOATS(min, C_min)

#define SCATTER_F64(name, Op) \
    extern "C" __global__ void scatter_##name##_f64(const double* upd, double* out, SCATTER_PARAMS) { \
        TESSERA_GRID_LOOP(i, n) { atomic_combine64<Op>(&out[SCATTER_TARGET(i)], upd[SCATTER_SOURCE(i)]); } \
    }
SCATTER_F64(add, C_add) SCATTER_F64(prod, C_prod) SCATTER_F64(max, C_max) SCATTER_F64(min, C_min)

#define SCATTER_I64(name, code) \
    extern "C" __global__ void scatter_##name##_i64(const i64* upd, i64* out, SCATTER_PARAMS) { \
        TESSERA_GRID_LOOP(i, n) { atomic_int64(&out[SCATTER_TARGET(i)], upd[SCATTER_SOURCE(i)], code); } \
    }
SCATTER_I64(add, 0) SCATTER_I64(prod, 1) SCATTER_I64(max, 2) SCATTER_I64(min, 3)

#define SCATTER_INT(name, code, I, suffix) \
    extern "C" __global__ void scatter_##name##_##suffix(const I* upd, I* out, SCATTER_PARAMS) { \
        TESSERA_GRID_LOOP(i, n) { atomic_int<I>(&out[SCATTER_TARGET(i)], upd[SCATTER_SOURCE(i)], code); } \
    }
SCATTER_INT(add, 0, i32, i32) SCATTER_INT(prod, 1, i32, i32) SCATTER_INT(max, 2, i32, i32) SCATTER_INT(min, 3, i32, i32)
SCATTER_INT(add, 0, u32, u32) SCATTER_INT(prod, 1, u32, u32) SCATTER_INT(max, 2, u32, u32) SCATTER_INT(min, 3, u32, u32)

#define SCATTER_BOOL(name, isOr) \
    extern "C" __global__ void scatter_##name##_b8(const u8* upd, u8* out, SCATTER_PARAMS) { \
        TESSERA_GRID_LOOP(i, n) { atomic_bool(&out[SCATTER_TARGET(i)], upd[SCATTER_SOURCE(i)] != 0, isOr); } \
    }
SCATTER_BOOL(add, true) SCATTER_BOOL(max, true) SCATTER_BOOL(prod, false) SCATTER_BOOL(min, false)
