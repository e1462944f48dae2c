// sort / argSort / partition / argPartition along one axis (partitions are
// full sorts, as on the CPU). Every element becomes the 64-bit key
// (order key << 32) | index: the order key is an unsigned image of the value
// that orders as the CPU's `less` does (floats: -0 == +0, every NaN equal and
// after +inf; signed integers with the sign bit flipped), and the index
// breaks ties, so any sort of the keys gives the CPU's stable order exactly.
// Rows: `rows` of length n; row r starts at the offset of r over the kept
// axes (kn/kshape, input strides kxs, output strides kys); along the axis
// the input steps xstride, the output ystride.
//  - sort_block_<t>: grid (chunks, min(rows, 65535)) striding over rows; one block sorts SORT_CHUNK (or the
//    next power of two ≥ n) keys in shared memory (bitonic). A row in one
//    chunk is written out at once (mode 0 values, 1 indices); longer rows
//    write sorted chunks of keys to scratch [rows, n].
//  - sort_merge: one thread per key merges sorted runs of `width` pairwise
//    (each key's place = its rank in its run + its rank in the partner run).
//  - sort_emit_<bytes> / sort_emit_index: keys → values / uint32 indices.
// Launch: sort_block with block = pow2 / 2 threads (≤ 1024) and pow2 * 8
// bytes of dynamic shared memory; the others grid-stride.
// Kernel names: sort_block_<f32|f16|bf16|i32|u32|i16|u16|i8|u8|b8>,
// sort_merge, sort_emit_<1|2|4>, sort_emit_index.
#include "common.cuh"

#define SORT_CHUNK 2048

__device__ __forceinline__ u32 float_order_key(float f) {
    if (isnan(f)) return 0xffffffffu;
    if (f == 0.0f) f = 0.0f;  // -0 orders with +0
    u32 u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ u32 order_key(float v) { return float_order_key(v); }
__device__ __forceinline__ u32 order_key(f16 v) { return float_order_key(to_float(v)); }
__device__ __forceinline__ u32 order_key(bf16 v) { return float_order_key(to_float(v)); }
__device__ __forceinline__ u32 order_key(i32 v) { return (u32)v ^ 0x80000000u; }
__device__ __forceinline__ u32 order_key(u32 v) { return v; }
__device__ __forceinline__ u32 order_key(short v) { return (u32)((i32)v + 32768); }
__device__ __forceinline__ u32 order_key(u16 v) { return v; }
__device__ __forceinline__ u32 order_key(signed char v) { return (u32)((i32)v + 128); }
struct boolean { u8 v; };
__device__ __forceinline__ u32 order_key(boolean v) { return v.v != 0; }
__device__ __forceinline__ u32 order_key(u8 v) { return v; }

__device__ __forceinline__ i64 row_offset(i64 r, int kn, const Dims& kshape, const Dims& kstrides) {
    return strided_offset(r, kn, kshape, kstrides);
}

template <typename T>
__device__ void sort_block(const T* x, T* yv, u32* yi, u64* scratch, i64 n, i64 rows, int pow2, int mode, int kn,
                           const Dims& kshape, const Dims& kxs, const Dims& kys, i64 xstride, i64 ystride) {
    extern __shared__ u64 sort_keys[];
    i64 chunk = blockIdx.x, begin = chunk * pow2;
    for (i64 row = blockIdx.y; row < rows; row += gridDim.y) {
        const T* xr = x + row_offset(row, kn, kshape, kxs);
        for (int i = threadIdx.x; i < pow2; i += blockDim.x) {
            i64 e = begin + i;
            sort_keys[i] = e < n ? (((u64)order_key(xr[e * xstride]) << 32) | (u64)e) : ~0ull;
        }
        __syncthreads();
        for (int k = 2; k <= pow2; k <<= 1) {
            for (int j = k >> 1; j > 0; j >>= 1) {
                for (int t = threadIdx.x; t < pow2 / 2; t += blockDim.x) {
                    int i = 2 * j * (t / j) + (t % j), l = i + j;
                    bool ascending = (i & k) == 0;
                    u64 a = sort_keys[i], b = sort_keys[l];
                    if ((a > b) == ascending) { sort_keys[i] = b; sort_keys[l] = a; }
                }
                __syncthreads();
            }
        }
        i64 count = n - begin < pow2 ? n - begin : pow2;
        if (gridDim.x == 1) {
            i64 yo = row_offset(row, kn, kshape, kys);
            for (int i = threadIdx.x; i < count; i += blockDim.x) {
                u32 index = (u32)sort_keys[i];
                if (mode == 0) yv[yo + i * ystride] = xr[(i64)index * xstride];
                else yi[yo + i * ystride] = index;
            }
        } else {
            for (int i = threadIdx.x; i < count; i += blockDim.x) scratch[row * n + begin + i] = sort_keys[i];
        }
        __syncthreads();
    }
}

#define SORT_BLOCK(T, suffix) \
    extern "C" __global__ void __launch_bounds__(1024) sort_block_##suffix( \
        const T* x, T* yv, u32* yi, u64* scratch, i64 n, i64 rows, int pow2, int mode, int kn, Dims kshape, \
        Dims kxs, Dims kys, i64 xstride, i64 ystride) { \
        sort_block<T>(x, yv, yi, scratch, n, rows, pow2, mode, kn, kshape, kxs, kys, xstride, ystride); \
    }
SORT_BLOCK(float, f32) SORT_BLOCK(f16, f16) SORT_BLOCK(bf16, bf16) SORT_BLOCK(i32, i32) SORT_BLOCK(u32, u32)
SORT_BLOCK(short, i16) SORT_BLOCK(u16, u16) SORT_BLOCK(signed char, i8) SORT_BLOCK(u8, u8) SORT_BLOCK(boolean, b8)

// The number of keys in sorted run [lo, hi) less than v.
__device__ __forceinline__ i64 rank_in(const u64* run, i64 lo, i64 hi, u64 v) {
    while (lo < hi) {
        i64 mid = lo + (hi - lo) / 2;
        if (run[mid] < v) lo = mid + 1; else hi = mid;
    }
    return lo;
}

extern "C" __global__ void sort_merge(const u64* src, u64* dst, i64 n, i64 width, i64 total) {
    TESSERA_GRID_LOOP(e, total) {
        i64 row = e / n, i = e - row * n;
        const u64* r = src + row * n;
        u64* d = dst + row * n;
        i64 run = i / width, start = run * width;
        u64 v = r[i];
        if ((run & 1) == 0) {
            i64 bLo = start + width, bHi = start + 2 * width < n ? start + 2 * width : n;
            i64 below = bLo < n ? rank_in(r, bLo, bHi, v) - bLo : 0;
            d[i + below] = v;
        } else {
            i64 aLo = start - width;
            d[aLo + (i - start) + (rank_in(r, aLo, start, v) - aLo)] = v;
        }
    }
}

#define SORT_EMIT(T, bytes) \
    extern "C" __global__ void sort_emit_##bytes(const u64* keys, const T* x, T* y, i64 n, i64 total, int kn, \
                                                 Dims kshape, Dims kxs, Dims kys, i64 xstride, i64 ystride) { \
        TESSERA_GRID_LOOP(e, total) { \
            i64 row = e / n, i = e - row * n; \
            u32 index = (u32)keys[e]; \
            y[row_offset(row, kn, kshape, kys) + i * ystride] = \
                x[row_offset(row, kn, kshape, kxs) + (i64)index * xstride]; \
        } \
    }
SORT_EMIT(u8, 1) SORT_EMIT(u16, 2) SORT_EMIT(u32, 4)

extern "C" __global__ void sort_emit_index(const u64* keys, u32* y, i64 n, i64 total, int kn, Dims kshape, Dims kys,
                                           i64 ystride) {
    TESSERA_GRID_LOOP(e, total) {
        i64 row = e / n, i = e - row * n;
        y[row_offset(row, kn, kshape, kys) + i * ystride] = (u32)keys[e];
    }
}
