// The kernels compiled for the baseline of the target (SSE2 on x86_64, NEON
// on arm64): 128-bit vectors, no FMA assumed.
// The kernels sit together in the `tessera` executable (Sources/tessera/hot-code.order).
#if defined(__clang__) && defined(__ELF__)
#pragma clang section text = ".text.tessera_kernels"
#endif
#define VW 4
#define TK_MR 6
#define TK_F16C 0
#define TK_TABLE tk_table_baseline
#include "kernels_impl.h"
