// cumsum / cumprod / cummax / cummin along one axis, inclusive or exclusive,
// forwards or reversed, as CPUScan.swift: float types accumulate in double
// and round each output once, 32/64-bit integers wrap, max/min propagate NaN,
// bool max/min are or/and. Rows as in sort.cu: `rows` of length n, row r at
// the offset of r over the kept axes (kn/kshape, input strides kxs, output
// strides kys), stepping xstride / ystride along the axis.
//  - scan_row_<op>_<t>: one thread per row, sequential (the CPU's order);
//    for short rows or many rows. Grid-stride over rows.
//  - scan_block_<op>_<t>: one block of SCAN_THREADS per row; chunks of
//    SCAN_THREADS elements scanned in shared memory (Hillis-Steele), each
//    chunk starting from the previous chunks' total.
// Kernel names: scan_<row|block>_<sum|prod|max|min>_<f64|f32|f16|bf16|i64|i32|u32>,
// scan_<row|block>_<max|min>_b8.
#include "common.cuh"

#define SCAN_THREADS 256

struct S_sum {
    __device__ __forceinline__ double operator()(double a, double b) const { return a + b; }
    __device__ __forceinline__ u32 operator()(u32 a, u32 b) const { return a + b; }
    __device__ __forceinline__ u64 operator()(u64 a, u64 b) const { return a + b; }
};
struct S_prod {
    __device__ __forceinline__ double operator()(double a, double b) const { return a * b; }
    __device__ __forceinline__ u32 operator()(u32 a, u32 b) const { return a * b; }
    __device__ __forceinline__ u64 operator()(u64 a, u64 b) const { return a * b; }
};
struct S_max {
    __device__ __forceinline__ double operator()(double a, double b) const {
        return (isnan(a) || isnan(b)) ? __longlong_as_double(0x7ff8000000000000ll) : (a > b ? a : b);
    }
};
struct S_min {
    __device__ __forceinline__ double operator()(double a, double b) const {
        return (isnan(a) || isnan(b)) ? __longlong_as_double(0x7ff8000000000000ll) : (a < b ? a : b);
    }
};
struct S_imax { __device__ __forceinline__ i32 operator()(i32 a, i32 b) const { return a > b ? a : b; } };
struct S_imin { __device__ __forceinline__ i32 operator()(i32 a, i32 b) const { return a < b ? a : b; } };
struct S_umax { __device__ __forceinline__ u32 operator()(u32 a, u32 b) const { return a > b ? a : b; } };
struct S_umin { __device__ __forceinline__ u32 operator()(u32 a, u32 b) const { return a < b ? a : b; } };
struct S_lmax { __device__ __forceinline__ i64 operator()(i64 a, i64 b) const { return a > b ? a : b; } };
struct S_lmin { __device__ __forceinline__ i64 operator()(i64 a, i64 b) const { return a < b ? a : b; } };
struct S_or { __device__ __forceinline__ u32 operator()(u32 a, u32 b) const { return a | b; } };
struct S_and { __device__ __forceinline__ u32 operator()(u32 a, u32 b) const { return a & b; } };

// Element ↔ accumulator.
__device__ __forceinline__ double scan_load(double x) { return x; }
__device__ __forceinline__ double scan_load(float x) { return (double)x; }
__device__ __forceinline__ i64 scan_load(i64 x) { return x; }
__device__ __forceinline__ double scan_load(f16 x) { return (double)to_float(x); }
__device__ __forceinline__ double scan_load(bf16 x) { return (double)to_float(x); }
__device__ __forceinline__ i32 scan_load(i32 x) { return x; }
__device__ __forceinline__ u32 scan_load(u32 x) { return x; }
__device__ __forceinline__ u32 scan_load(u8 x) { return x != 0; }
template <typename T, typename A> struct ScanStore;
template <> struct ScanStore<double, double> { __device__ __forceinline__ double operator()(double a) const { return a; } };
template <> struct ScanStore<i64, u64> { __device__ __forceinline__ i64 operator()(u64 a) const { return (i64)a; } };
template <> struct ScanStore<i64, i64> { __device__ __forceinline__ i64 operator()(i64 a) const { return a; } };
template <> struct ScanStore<float, double> { __device__ __forceinline__ float operator()(double a) const { return (float)a; } };
// Half types round once from double, as the CPU's T(math: Float(double)) does
// (double → float → half, each round-to-nearest-even).
template <> struct ScanStore<f16, double> { __device__ __forceinline__ f16 operator()(double a) const { return from_float<f16>((float)a); } };
template <> struct ScanStore<bf16, double> { __device__ __forceinline__ bf16 operator()(double a) const { return from_float<bf16>((float)a); } };
template <> struct ScanStore<i32, i32> { __device__ __forceinline__ i32 operator()(i32 a) const { return a; } };
template <> struct ScanStore<i32, u32> { __device__ __forceinline__ i32 operator()(u32 a) const { return (i32)a; } };
template <> struct ScanStore<u32, u32> { __device__ __forceinline__ u32 operator()(u32 a) const { return a; } };
template <> struct ScanStore<u8, u32> { __device__ __forceinline__ u8 operator()(u32 a) const { return a ? 1 : 0; } };

template <typename T, typename A> __device__ __forceinline__ A scan_load_as(T x) { return (A)scan_load(x); }

template <typename T, typename A, typename Op>
__device__ void scan_row(const T* x, T* y, A identity, i64 n, i64 rows, int kn, const Dims& kshape, const Dims& kxs,
                         const Dims& kys, i64 xstride, i64 ystride, int reverse, int inclusive) {
    Op op;
    ScanStore<T, A> store;
    TESSERA_GRID_LOOP(r, rows) {
        const T* xr = x + strided_offset(r, kn, kshape, kxs);
        T* yr = y + strided_offset(r, kn, kshape, kys);
        A acc = identity;
        for (i64 k = 0; k < n; ++k) {
            i64 i = reverse ? n - 1 - k : k;
            A v = scan_load_as<T, A>(xr[i * xstride]);
            if (inclusive) { acc = op(acc, v); yr[i * ystride] = store(acc); }
            else { yr[i * ystride] = store(acc); acc = op(acc, v); }
        }
    }
}

template <typename T, typename A, typename Op>
__device__ void scan_block(const T* x, T* y, A identity, i64 n, int kn, const Dims& kshape, const Dims& kxs,
                           const Dims& kys, i64 xstride, i64 ystride, int reverse, int inclusive) {
    __shared__ A part[SCAN_THREADS];
    Op op;
    ScanStore<T, A> store;
    i64 r = blockIdx.x;
    const T* xr = x + strided_offset(r, kn, kshape, kxs);
    T* yr = y + strided_offset(r, kn, kshape, kys);
    int t = threadIdx.x;
    A carry = identity;
    for (i64 base = 0; base < n; base += SCAN_THREADS) {
        i64 k = base + t;
        i64 i = reverse ? n - 1 - k : k;
        A v = k < n ? scan_load_as<T, A>(xr[i * xstride]) : identity;
        part[t] = v;
        __syncthreads();
        for (int d = 1; d < SCAN_THREADS; d <<= 1) {
            A left = t >= d ? part[t - d] : identity;
            __syncthreads();
            part[t] = op(left, part[t]);
            __syncthreads();
        }
        if (k < n) {
            A out = inclusive ? op(carry, part[t]) : (t == 0 ? carry : op(carry, part[t - 1]));
            yr[i * ystride] = store(out);
        }
        carry = op(carry, part[SCAN_THREADS - 1]);
        __syncthreads();
    }
}

#define SCAN(name, Op, T, A, suffix, identity) \
    extern "C" __global__ void scan_row_##name##_##suffix(const T* x, T* y, i64 n, i64 rows, int kn, Dims kshape, \
                                                           Dims kxs, Dims kys, i64 xstride, i64 ystride, \
                                                           int reverse, int inclusive) { \
        scan_row<T, A, Op>(x, y, (A)(identity), n, rows, kn, kshape, kxs, kys, xstride, ystride, reverse, inclusive); \
    } \
    extern "C" __global__ void __launch_bounds__(SCAN_THREADS) scan_block_##name##_##suffix( \
        const T* x, T* y, i64 n, i64 rows, int kn, Dims kshape, Dims kxs, Dims kys, i64 xstride, i64 ystride, \
        int reverse, int inclusive) { \
        scan_block<T, A, Op>(x, y, (A)(identity), n, kn, kshape, kxs, kys, xstride, ystride, reverse, inclusive); \
    }
#define SCAN_FLOATS(T, suffix) \
    SCAN(sum, S_sum, T, double, suffix, 0.0) SCAN(prod, S_prod, T, double, suffix, 1.0) \
    SCAN(max, S_max, T, double, suffix, -__longlong_as_double(0x7ff0000000000000ll)) \
    SCAN(min, S_min, T, double, suffix, __longlong_as_double(0x7ff0000000000000ll))
SCAN_FLOATS(double, f64) SCAN_FLOATS(float, f32) SCAN_FLOATS(f16, f16) SCAN_FLOATS(bf16, bf16)
SCAN(sum, S_sum, i64, u64, i64, 0ull) SCAN(prod, S_prod, i64, u64, i64, 1ull)
SCAN(max, S_lmax, i64, i64, i64, (i64)0x8000000000000000ull) SCAN(min, S_lmin, i64, i64, i64, 0x7fffffffffffffffll)
SCAN(sum, S_sum, i32, u32, i32, 0u) SCAN(prod, S_prod, i32, u32, i32, 1u)
SCAN(max, S_imax, i32, i32, i32, (i32)0x80000000) SCAN(min, S_imin, i32, i32, i32, 0x7fffffff)
SCAN(sum, S_sum, u32, u32, u32, 0u) SCAN(prod, S_prod, u32, u32, u32, 1u)
SCAN(max, S_umax, u32, u32, u32, 0u) SCAN(min, S_umin, u32, u32, u32, 0xffffffffu)
SCAN(max, S_or, u8, u32, b8, 0u) SCAN(min, S_and, u8, u32, b8, 1u)
