// The bfloat16 GEMM on AVX512-BF16 dot products (vdpbf16ps):
//   C[m, n] = sum_k x[m, k] W[n, k]   for n0 <= n < n1 and every m,
// W bfloat16 [N, K] with rows contiguous along k (a Linear layer's weight,
// the `x @ W.T` of a model's projections), x float32 rounded to bfloat16
// (round to nearest even, tk_float_to_bf16's rounding) or bfloat16 as it is,
// products and sums in float32 (vdpbf16ps: each bf16 x bf16 product is exact
// in float32, denormal inputs and outputs flush to zero).
//
// The weights are read where they lie, never packed: each step of the
// register tile broadcasts one 32-bit pair W[n, 2p], W[n, 2p + 1] of each of
// GB_NR = 6 weight rows against up to 4 vectors of 16 rows of x, whose pairs
// x[m, 2p], x[m, 2p + 1] sit in 32-bit lanes (vdpbf16ps sums both products of
// a lane into it). x is packed once per call by tk_gemm_bf16_pack_x in blocks
// of GB_MB = 64 rows: word [block][p][i] = bf16(x[64 block + i, 2p]) |
// bf16(x[.., 2p + 1]) << 16, a zero half past an odd K and zero words past M.
// The tile accumulates 6 columns x 64 rows over a block of K and is stored
// transposed into C (added to it after the first block of K). Threads take
// ranges of weight rows (n0, n1); every range sees all of x.
// The kernels sit together in the `tessera` executable (Sources/tessera/hot-code.order).
#if defined(__clang__) && defined(__ELF__)
#pragma clang section text = ".text.tessera_kernels"
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define GB_MB 64
#define GB_NR 6
/// Most pairs of K per block: 6 weight rows of it stay in L1 (9 KiB) while a
/// block of x (64 rows, 96 KiB) streams from L2.
#define GB_KCP 384

long tk_gemm_bf16_x_bytes(long M, long K) {
    if (M <= 0 || K <= 0) return 0;
    return ((M + GB_MB - 1) / GB_MB) * ((K + 1) / 2) * GB_MB * 4;
}

/// tk_float_to_bf16 on raw bits, in a form the compiler vectorizes.
static inline uint32_t gb_round(uint32_t x) {
    return (x & 0x7FFFFFFFu) > 0x7F800000u ? ((x >> 16) | 0x40u) : ((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

static inline __attribute__((always_inline)) uint32_t gb_half(int dt, const void *x, long i) {
    if (dt == TK_BF16) return ((const uint16_t *)x)[i];
    if (dt == TK_F32) {
        uint32_t b;
        memcpy(&b, (const float *)x + i, 4);
        return gb_round(b);
    }
    return tk_float_to_bf16(tk_load1(dt, x, i));
}

/// One row of K values of x as K/2 rounded up words of bf16 pairs.
static inline __attribute__((always_inline)) void gb_row_words(int dt, const void *row, long cs, long K, uint32_t *t) {
    long P = (K + 1) / 2, full = K / 2;
    if (dt == TK_F32 && cs == 1) {
        const uint32_t *f = (const uint32_t *)row;
        for (long p = 0; p < full; p++) t[p] = gb_round(f[2 * p]) | gb_round(f[2 * p + 1]) << 16;
    } else if (dt == TK_BF16 && cs == 1) {
        memcpy(t, row, (size_t)full * 4);
    } else {
        for (long p = 0; p < full; p++) t[p] = gb_half(dt, row, 2 * p * cs) | gb_half(dt, row, (2 * p + 1) * cs) << 16;
    }
    if (P > full) t[full] = gb_half(dt, row, (K - 1) * cs);
}

/// Blocks b0..<b1 of x into `packed` (the layout above). Always inlined into
/// a plain and an AVX-512 copy: the rounding loop vectorizes in the latter.
static inline __attribute__((always_inline)) void gb_pack(int dt, const void *x, long rsa, long csa, long M, long K,
                                                           long b0, long b1, void *packed) {
    if (M <= 0 || K <= 0) return;
    long P = (K + 1) / 2;
    size_t es = (size_t)tk_size(dt);
    uint32_t *t = malloc((size_t)GB_MB * P * 4);
    if (!t) return;
    for (long b = b0; b < b1; b++) {
        uint32_t *dst = (uint32_t *)packed + (size_t)b * P * GB_MB;
        long rows = M - b * GB_MB < GB_MB ? M - b * GB_MB : GB_MB;
        for (long i = 0; i < GB_MB; i++) {
            if (i < rows) {
                gb_row_words(dt, (const char *)x + (ptrdiff_t)((b * GB_MB + i) * rsa) * (ptrdiff_t)es, csa, K, t + i * P);
            } else {
                memset(t + i * P, 0, (size_t)P * 4);
            }
        }
        // [i][p] -> [p][i], 16 pairs at a time so that both sides stay in cache lines.
        for (long p0 = 0; p0 < P; p0 += 16) {
            long pe = P - p0 < 16 ? P : p0 + 16;
            for (long i = 0; i < GB_MB; i++) {
                const uint32_t *s = t + i * P;
                for (long p = p0; p < pe; p++) dst[p * GB_MB + i] = s[p];
            }
        }
    }
    free(t);
}

static int bf16_round_x = 0;

int tk_set_gemm_bf16_round_x(int enable) {
    __atomic_store_n(&bf16_round_x, enable ? 1 : 0, __ATOMIC_RELAXED);
    return enable ? 1 : 0;
}

int tk_gemm_bf16_round_x(void) { return __atomic_load_n(&bf16_round_x, __ATOMIC_RELAXED); }

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

static int detect_bf16(void) {
    unsigned a, b, c, d;
    if (tk_isa_supported() < TK_ISA_AVX512 || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1;  // AVX512_BF16
}

static int bf16_on = -1;

int tk_set_gemm_bf16(int enable) {
    int v = enable && detect_bf16() && !getenv("TESSERA_NO_BF16");
    __atomic_store_n(&bf16_on, v, __ATOMIC_RELEASE);
    return v;
}

int tk_gemm_bf16_available(void) {
    int v = __atomic_load_n(&bf16_on, __ATOMIC_ACQUIRE);
    if (v < 0) v = tk_set_gemm_bf16(1);
    return v && tk_isa() == TK_ISA_AVX512;
}

#pragma clang attribute push(                                                                               \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma,f16c"))), apply_to = function)

static inline __m512 gb_dp(__m512 acc, uint32_t w, __m512i x) {
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_set1_epi32((int)w), (__m512bh)x);
}

/// Rows 0..7 of q (8 lanes each) become its columns.
static inline __attribute__((always_inline)) void gb_transpose8(__m256 q[8]) {
    __m256 t0 = _mm256_unpacklo_ps(q[0], q[1]), t1 = _mm256_unpackhi_ps(q[0], q[1]);
    __m256 t2 = _mm256_unpacklo_ps(q[2], q[3]), t3 = _mm256_unpackhi_ps(q[2], q[3]);
    __m256 t4 = _mm256_unpacklo_ps(q[4], q[5]), t5 = _mm256_unpackhi_ps(q[4], q[5]);
    __m256 t6 = _mm256_unpacklo_ps(q[6], q[7]), t7 = _mm256_unpackhi_ps(q[6], q[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    q[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    q[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    q[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    q[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    q[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    q[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    q[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    q[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/// C[mb + i, nb + r] (+)= sum over pairs p0..<p1 (and the odd tail pair
/// `tail` when >= 0) for i < mr, r < nr; V vectors of 16 rows of x.
static inline __attribute__((always_inline)) void gb_tile(const int V, const uint16_t *const w[GB_NR],
                                                           const uint16_t *const *pf, const uint32_t *xp, long p0,
                                                           long p1, long tail, float *C, long ldc, long mr, long nr,
                                                           int add) {
    __m512 acc[GB_NR][4];
#pragma clang loop unroll(full)
    for (int r = 0; r < GB_NR; r++)
#pragma clang loop unroll(full)
        for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
    for (long p = p0; p < p1; p++) {
        if (pf && (p & 15) == 0) {  // the next weight rows' line at this offset (they stream from memory)
#pragma clang loop unroll(full)
            for (int r = 0; r < GB_NR; r++) _mm_prefetch((const char *)(pf[r] + 2 * p), _MM_HINT_T0);
        }
        const uint32_t *xq = xp + p * GB_MB;
        __m512i x[4];
#pragma clang loop unroll(full)
        for (int v = 0; v < V; v++) x[v] = _mm512_loadu_si512(xq + 16 * v);
#pragma clang loop unroll(full)
        for (int r = 0; r < GB_NR; r++) {
            uint32_t wv;
            memcpy(&wv, w[r] + 2 * p, 4);
#pragma clang loop unroll(full)
            for (int v = 0; v < V; v++) acc[r][v] = gb_dp(acc[r][v], wv, x[v]);
        }
    }
    if (tail >= 0) {
        const uint32_t *xq = xp + tail * GB_MB;
#pragma clang loop unroll(full)
        for (int r = 0; r < GB_NR; r++) {
            uint32_t wv = w[r][2 * tail];  // the pair's second half is past K: zero
#pragma clang loop unroll(full)
            for (int v = 0; v < V; v++) acc[r][v] = gb_dp(acc[r][v], wv, _mm512_loadu_si512(xq + 16 * v));
        }
    }
    // Transposed store: per half vector of 8 rows of x, an 8 x 8 transpose of
    // the 6 weight rows' sums (two zero rows) gives each row of C its 6 values.
    __mmask8 keep = (__mmask8)((1u << nr) - 1);
#pragma clang loop unroll(full)
    for (int v = 0; v < V; v++) {
#pragma clang loop unroll(full)
        for (int h = 0; h < 2; h++) {
            long i0 = 16 * v + 8 * h;
            if (i0 >= mr) break;
            __m256 q[8];
#pragma clang loop unroll(full)
            for (int r = 0; r < GB_NR; r++)
                q[r] = h ? _mm512_extractf32x8_ps(acc[r][v], 1) : _mm512_castps512_ps256(acc[r][v]);
            q[6] = q[7] = _mm256_setzero_ps();
            gb_transpose8(q);
            long rows = mr - i0 < 8 ? mr - i0 : 8;
            for (long i = 0; i < rows; i++) {
                float *c = C + (i0 + i) * ldc;
                __m256 val = add ? _mm256_add_ps(_mm256_maskz_loadu_ps(keep, c), q[i]) : q[i];
                _mm256_mask_storeu_ps(c, keep, val);
            }
        }
    }
}

static void gemm_bf16_avx512(const uint32_t *packed, long M, long K, const uint16_t *W, long ldw, long n0, long n1,
                             float *C, long ldc) {
    long P = (K + 1) / 2, full = K / 2;
    long blocks = (P + GB_KCP - 1) / GB_KCP, kcp = (P + blocks - 1) / blocks;
    for (long pc = 0; pc < P; pc += kcp) {
        long pe = P - pc < kcp ? P : pc + kcp;
        long pfe = pe < full ? pe : full;  // whole pairs end here
        long tail = pe > full ? full : -1;  // K odd: its last value pairs with a zero
        for (long nb = n0; nb < n1; nb += GB_NR) {
            long nr = n1 - nb < GB_NR ? n1 - nb : GB_NR;
            const uint16_t *w[GB_NR], *next[GB_NR];
            long nn = n1 - (nb + GB_NR) < GB_NR ? n1 - (nb + GB_NR) : GB_NR;  // rows of the next block
            for (int r = 0; r < GB_NR; r++) {
                w[r] = W + (nb + (r < nr ? r : nr - 1)) * ldw;
                next[r] = nn > 0 ? W + (nb + GB_NR + (r < nn ? r : nn - 1)) * ldw : w[r];
            }
            for (long mb = 0; mb < M; mb += GB_MB) {
                long mr = M - mb < GB_MB ? M - mb : GB_MB;
                const uint32_t *xp = packed + (size_t)(mb / GB_MB) * P * GB_MB;
                float *c = C + mb * ldc + nb;
                const uint16_t *const *pf = mb == 0 && nn > 0 ? next : NULL;  // the first pass over these rows
                switch ((mr + 15) / 16) {
                case 4: gb_tile(4, w, pf, xp, pc, pfe, tail, c, ldc, mr, nr, pc > 0); break;
                case 3: gb_tile(3, w, pf, xp, pc, pfe, tail, c, ldc, mr, nr, pc > 0); break;
                case 2: gb_tile(2, w, pf, xp, pc, pfe, tail, c, ldc, mr, nr, pc > 0); break;
                default: gb_tile(1, w, pf, xp, pc, pfe, tail, c, ldc, mr, nr, pc > 0); break;
                }
            }
        }
    }
}

static void gb_pack_avx512(int dt, const void *x, long rsa, long csa, long M, long K, long b0, long b1, void *packed) {
    gb_pack(dt, x, rsa, csa, M, K, b0, b1, packed);
}

#pragma clang attribute pop

void tk_gemm_bf16_pack_x(int dt, const void *x, long rsa, long csa, long M, long K, long b0, long b1, void *packed) {
    if (tk_isa() == TK_ISA_AVX512) gb_pack_avx512(dt, x, rsa, csa, M, K, b0, b1, packed);
    else gb_pack(dt, x, rsa, csa, M, K, b0, b1, packed);
}

int tk_gemm_bf16(const void *packed, long M, long K, const uint16_t *W, long ldw, long n0, long n1, float *C, long ldc) {
    if (!tk_gemm_bf16_available()) return 0;
    if (M <= 0 || n1 <= n0) return 1;
    if (K <= 0) {
        for (long i = 0; i < M; i++)
            for (long n = n0; n < n1; n++) C[i * ldc + n] = 0;
        return 1;
    }
    gemm_bf16_avx512((const uint32_t *)packed, M, K, W, ldw, n0, n1, C, ldc);
    return 1;
}
#else
void tk_gemm_bf16_pack_x(int dt, const void *x, long rsa, long csa, long M, long K, long b0, long b1, void *packed) {
    gb_pack(dt, x, rsa, csa, M, K, b0, b1, packed);
}
int tk_set_gemm_bf16(int enable) {
    (void)enable;
    return 0;
}
int tk_gemm_bf16_available(void) { return 0; }
int tk_gemm_bf16(const void *packed, long M, long K, const uint16_t *W, long ldw, long n0, long n1, float *C, long ldc) {
    (void)packed, (void)M, (void)K, (void)W, (void)ldw, (void)n0, (void)n1, (void)C, (void)ldc;
    return 0;
}
#endif
