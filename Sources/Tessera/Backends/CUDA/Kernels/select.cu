// which(cond, a, b) with broadcasting, by element size (the dtype does not
// matter to a select): cond is bool bytes; all three inputs any strides
// (ndim == 0 means all contiguous); output row-contiguous.
// Kernel names: select_<bytes>, bytes in 1 2 4 8.
#include "common.cuh"

#define SELECT(T, bytes) \
    extern "C" __global__ void select_##bytes(const u8* c, const T* a, const T* b, T* y, i64 n, int ndim, \
                                              Dims shape, Dims cs, Dims as, Dims bs) { \
        TESSERA_GRID_LOOP(i, n) { \
            bool take = c[ndim == 0 ? i : strided_offset(i, ndim, shape, cs)] != 0; \
            y[i] = take ? a[ndim == 0 ? i : strided_offset(i, ndim, shape, as)] \
                        : b[ndim == 0 ? i : strided_offset(i, ndim, shape, bs)]; \
        } \
    }
SELECT(u8, 1) SELECT(u16, 2) SELECT(u32, 4) SELECT(u64, 8)
