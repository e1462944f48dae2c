// The kernels compiled for AVX-512 (F, BW, DQ, VL) with FMA and F16C.
// The kernels sit together in the `tessera` executable (Sources/tessera/hot-code.order).
#if defined(__clang__) && defined(__ELF__)
#pragma clang section text = ".text.tessera_kernels"
#endif
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))), \
                             apply_to = function)
#define VW 16
#define TK_MR 12
#define TK_F16C 1
#define TK_TABLE tk_table_avx512
#include "kernels_impl.h"
#pragma clang attribute pop
#endif
