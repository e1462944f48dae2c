// The kernels compiled for AVX2 with FMA and F16C.
// The kernels sit together in the `tessera` executable (Sources/tessera/hot-code.order).
#if defined(__clang__) && defined(__ELF__)
#pragma clang section text = ".text.tessera_kernels"
#endif
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define VW 8
#define TK_MR 6
#define TK_F16C 1
#define TK_TABLE tk_table_avx2
#include "kernels_impl.h"
#pragma clang attribute pop
#endif
