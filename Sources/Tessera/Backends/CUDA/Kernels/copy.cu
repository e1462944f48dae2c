// Strided copies by element size: y (any strides) = x (any strides), both
// described over one shape. Used for contiguous copies, reshapes that need a
// copy, concatenate and sliceUpdate. Also arange.
// Kernel names: copy_<bytes> (bytes in 1 2 4 8), arange_f32, arange_i32.
#include "common.cuh"

#define COPY(T, bytes) \
    extern "C" __global__ void copy_##bytes(const T* x, T* y, i64 n, int ndim, Dims shape, Dims xs, Dims ys) { \
        TESSERA_GRID_LOOP(i, n) { \
            if (ndim == 0) { y[i] = x[i]; continue; } \
            y[strided_offset(i, ndim, shape, ys)] = x[strided_offset(i, ndim, shape, xs)]; \
        } \
    }
COPY(u8, 1) COPY(u16, 2) COPY(u32, 4) COPY(u64, 8)

// start + i * step computed in double, as the CPU does, then converted.
extern "C" __global__ void arange_f32(float* y, i64 n, double start, double step) {
    TESSERA_GRID_LOOP(i, n) { y[i] = (float)(start + (double)i * step); }
}
extern "C" __global__ void arange_i32(i32* y, i64 n, double start, double step) {
    TESSERA_GRID_LOOP(i, n) { y[i] = (i32)(start + (double)i * step); }
}
