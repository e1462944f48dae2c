// The 4-bit quantized matrix product for many rows of x (prefill: M > 16) on
// AVX-512 VNNI integer dot products: out[m, n] = sum_k x[m, k] W[n, k] with
// W[n, k] = s[n, g] q[n, k] + b[n, g] (MLX's affine format, transpose=True).
//
// Per group g: sum_k x W = s (q . x) + b sum(x). sum(x) per group is taken
// from x in float. For q . x, each block of 32 values of a row of x is
// rounded to integers X with one float scale d (x ~ d X): XB = 2 bytes
// (|X| <= 127 * 257, error per value at most max|x| of its block / 65278, as
// the decode kernels' 16-bit precision) or XB = 1 (|X| <= 127, llama.cpp's
// 8-bit activations). X = 256 h + l is split into signed bytes h, l.
// vpdpbusd multiplies unsigned weight bytes (0..15) with signed x bytes, four
// per int32 lane: a lane holds one output column, so after the 8 steps of a
// block (32 values) a lane holds the whole integer dot product of the block
// for its column (exact: |sum| < 32 * 15 * 128). It is converted to float,
// scaled by d of the block and s of the column's group, and accumulated.
//
// Weights are repacked per panel of 32 output columns (two vectors of 16):
// for each 4 values of K, 64 bytes, lane j holding column n + j's 4 codes
// (columns past N are zero). A panel is packed once and multiplied with
// every row of x, 4 rows per register block (acc: 8 float vectors, 16
// integer vectors: for XB = 1 the even and odd steps of a block sum apart, so
// that enough independent vpdpbusd chains hide its latency). Threads take
// panels (tk_qgemm4's n0..n1). The packing (tk_qg_panel) and the rounding of
// x are shared with the AVX2 kernel (kernels_qgemm_avx2.c), which tk_qgemm4
// runs where VNNI is missing or turned off.
// The kernels sit together in the `tessera` executable (Sources/tessera/hot-code.order).
#if defined(__clang__) && defined(__ELF__)
#pragma clang section text = ".text.tessera_kernels"
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "internal.h"
#include "qgemm.h"

/// Bytes of prepared x for M rows of K values with XB bytes per value:
/// per row, XB planes of K signed bytes, K/32 block scales and K/group group sums.
long tk_qgemm4_x_bytes(long M, long K, int group, int XB) {
    if (M <= 0 || K <= 0 || K % 32 != 0 || group <= 0 || K % group != 0 || XB < 1 || XB > 2) return -1;
    return M * ((long)XB * K + (K / 32) * 4 + (K / group) * 4);
}

/// Rounds float32 x [M, K] into `prepared` (tk_qgemm4_x_bytes of it): the
/// plain C reference (the baseline variant runs it; tk_qgemm4_prepare's AVX2
/// and AVX-512 variants give the same bytes, tested against it). Returns 0
/// when some block cannot be rounded faithfully (a non-finite value, or all
/// its values below 2^-96 in magnitude but not all zero): the caller takes
/// the float kernel for the whole product then.
int tk_qgemm4_prepare_ref(const float *x, long M, long K, int group, int XB, void *prepared) {
    const long row = (long)XB * K + (K / 32) * 4 + (K / group) * 4;
    const float range = XB == 2 ? 127.0f * 257.0f : 127.0f;
    for (long m = 0; m < M; m++) {
        const float *xr = x + m * K;
        int8_t *planes = (int8_t *)prepared + m * row;
        float *d = (float *)(planes + (long)XB * K);
        float *sums = d + K / 32;
        for (long b = 0; b < K / 32; b++) {
            float amax = 0;
            int finite = 1;
            for (int j = 0; j < 32; j++) {
                float a = fabsf(xr[b * 32 + j]);
                finite &= a <= 3.4028235e38f;  // false for inf and NaN
                amax = a > amax ? a : amax;
            }
            if (!finite || (amax > 0 && amax < 0x1p-96f)) return 0;
            float scale = amax / range, inv = amax > 0 ? range / amax : 0;
            d[b] = scale;
            for (int j = 0; j < 32; j++) {
                long k = b * 32 + j;
                float v = nearbyintf(xr[k] * inv);
                v = v > range ? range : v < -range ? -range : v;
                int X = (int)v;
                if (XB == 1) {
                    planes[k] = (int8_t)X;
                } else {
                    int h = (X + 128) >> 8;  // floor: l in [-128, 127], h in [-127, 127]
                    planes[k] = (int8_t)(X - 256 * h);
                    planes[K + k] = (int8_t)h;
                }
            }
        }
        for (long g = 0; g < K / group; g++) {
            float s = 0;
            for (int j = 0; j < group; j++) s += xr[g * group + j];
            sums[g] = s;
        }
    }
    return 1;
}

#if defined(__x86_64__)
#include <immintrin.h>

/// The group sums of prepared x (sums[g] = x[g * group] + ... in order, as
/// the reference), 4 rows in lockstep so that their dependent add chains overlap.
void tk_qg_sums(const float *x, long M, long K, int group, int XB, void *prepared) {
    const long row = (long)XB * K + (K / 32) * 4 + (K / group) * 4;
    for (long m = 0; m < M; m += 4) {
        const int rows = M - m < 4 ? (int)(M - m) : 4;
        for (long g = 0; g < K / group; g++) {
            float s[4] = {0, 0, 0, 0};
            for (int j = 0; j < group; j++)
                for (int r = 0; r < rows; r++) s[r] += x[(m + r) * K + g * group + j];
            for (int r = 0; r < rows; r++) {
                int8_t *planes = (int8_t *)prepared + (m + r) * row;
                float *sums = (float *)(planes + (long)XB * K) + K / 32;
                sums[g] = s[r];
            }
        }
    }
}

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"))), \
                             apply_to = function)

/// tk_qgemm4_prepare on AVX-512: per block of 32 values the same amax, scale
/// and inverse as the reference, x * inv rounded by vcvtps2dq (nearest even
/// under the default MXCSR, as nearbyintf), clamped in integers (the same as
/// clamping the rounded float), narrowed by vpmovdb.
static int qg_prepare_avx512(const float *x, long M, long K, int group, int XB, void *prepared) {
    const long row = (long)XB * K + (K / 32) * 4 + (K / group) * 4;
    const float range = XB == 2 ? 127.0f * 257.0f : 127.0f;
    const __m512i hiR = _mm512_set1_epi32((int)range), loR = _mm512_set1_epi32(-(int)range);
    const __m512i c128 = _mm512_set1_epi32(128);
    const __m512 fmax = _mm512_set1_ps(3.4028235e38f);
    for (long m = 0; m < M; m++) {
        const float *xr = x + m * K;
        int8_t *planes = (int8_t *)prepared + m * row;
        float *d = (float *)(planes + (long)XB * K);
        for (long b = 0; b < K / 32; b++) {
            const long k = b * 32;
            __m512 v[2] = {_mm512_loadu_ps(xr + k), _mm512_loadu_ps(xr + k + 16)};
            __m512 a0 = _mm512_abs_ps(v[0]), a1 = _mm512_abs_ps(v[1]);
            __mmask16 ok = _mm512_cmp_ps_mask(a0, fmax, _CMP_LE_OQ) & _mm512_cmp_ps_mask(a1, fmax, _CMP_LE_OQ);
            if (ok != 0xFFFF) return 0;  // inf or NaN
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
            if (amax > 0 && amax < 0x1p-96f) return 0;
            float scale = amax / range, inv = amax > 0 ? range / amax : 0;
            d[b] = scale;
            const __m512 vinv = _mm512_set1_ps(inv);
            for (int h = 0; h < 2; h++) {
                __m512i X = _mm512_cvtps_epi32(_mm512_mul_ps(v[h], vinv));
                X = _mm512_min_epi32(_mm512_max_epi32(X, loR), hiR);
                if (XB == 1) {
                    _mm_storeu_si128((__m128i *)(planes + k + 16 * h), _mm512_cvtepi32_epi8(X));
                } else {
                    __m512i hb = _mm512_srai_epi32(_mm512_add_epi32(X, c128), 8);
                    __m512i lb = _mm512_sub_epi32(X, _mm512_slli_epi32(hb, 8));
                    _mm_storeu_si128((__m128i *)(planes + k + 16 * h), _mm512_cvtepi32_epi8(lb));
                    _mm_storeu_si128((__m128i *)(planes + K + k + 16 * h), _mm512_cvtepi32_epi8(hb));
                }
            }
        }
    }
    tk_qg_sums(x, M, K, group, XB, prepared);
    return 1;
}

#pragma clang attribute pop
#endif

/// Rounds float32 x [M, K] into `prepared` (tk_qgemm4_x_bytes of it), by the
/// variant the ISA setting picks (AVX-512, AVX2 or the plain C reference):
/// the same bytes from each. Returns 0 as tk_qgemm4_prepare_ref does.
int tk_qgemm4_prepare(const float *x, long M, long K, int group, int XB, void *prepared) {
#if defined(__x86_64__)
    if (tk_isa() == TK_ISA_AVX512) return qg_prepare_avx512(x, M, K, group, XB, prepared);
    if (tk_isa() >= TK_ISA_AVX2) return tk_qg_prepare_avx2(x, M, K, group, XB, prepared);
#endif
    return tk_qgemm4_prepare_ref(x, M, K, group, XB, prepared);
}

/// Fills a panel (tk_qgemm4_panel_bytes of scratch) for columns n0..<n0+32 (those
/// below N; the rest zero) of 4-bit wq [N, K/8 words]: codes as
/// panel[(k/4) * 128 + c * 4 + t] = q[n0 + c, k + t] (lane c % 16 of vector
/// c / 16 holds column c's 4 codes), then the scales and biases transposed,
/// ps[g * 32 + c] = s[n0 + c, g] (zero past the columns) after the codes.
/// Each 8 codes of a row (one 32-bit word) spread to 8 bytes with shifts
/// and masks, 2 stores: a small part of a panel's products at 128+ rows.
void tk_qg_panel(int sdt, const uint32_t *wq, const void *scales, const void *biases, long N, long K, int group,
                 long n0, void *scratch) {
    const long rowBytes = K / 2;
    uint8_t *panel = (uint8_t *)scratch;
    for (int c = 0; c < 32; c++) {
        long n = n0 + c;
        uint8_t *dst = panel + c * 4;
        if (n >= N) {
            for (long s = 0; s < K / 4; s++) memset(dst + s * 128, 0, 4);
            continue;
        }
        const uint8_t *src = (const uint8_t *)wq + n * rowBytes;
        for (long s = 0; s < K / 8; s++) {
            uint32_t w;
            memcpy(&w, src + 4 * s, 4);
            uint64_t v = w;  // nibble i (code 8s + i) to byte i
            v = (v | (v << 16)) & 0x0000FFFF0000FFFFull;
            v = (v | (v << 8)) & 0x00FF00FF00FF00FFull;
            v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0Full;
            uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
            memcpy(dst + (2 * s) * 128, &lo, 4);
            memcpy(dst + (2 * s + 1) * 128, &hi, 4);
        }
    }
    tk_qg_panel_scales(sdt, scales, biases, N, K, group, n0, scratch);
}

/// tk_qg_panel for 8-bit wq [N, K/4 words]: the same layout, codes 0..255
/// (a word holds 4 codes, the first in its low byte).
void tk_qg_panel8(int sdt, const uint32_t *wq, const void *scales, const void *biases, long N, long K, int group,
                  long n0, void *scratch) {
    uint8_t *panel = (uint8_t *)scratch;
    for (int c = 0; c < 32; c++) {
        long n = n0 + c;
        uint8_t *dst = panel + c * 4;
        const uint8_t *src = (const uint8_t *)wq + n * K;
        for (long s = 0; s < K / 4; s++) {
            if (n < N) memcpy(dst + s * 128, src + 4 * s, 4);
            else memset(dst + s * 128, 0, 4);
        }
    }
    tk_qg_panel_scales(sdt, scales, biases, N, K, group, n0, scratch);
}

/// The scales and biases part of tk_qg_panel.
void tk_qg_panel_scales(int sdt, const void *scales, const void *biases, long N, long K, int group, long n0,
                        void *scratch) {
    const long groups = K / group;
    const size_t es = (size_t)tk_size(sdt);
    float *ps = (float *)((uint8_t *)scratch + K * 32), *pb = ps + groups * 32;
    for (int c = 0; c < 32; c++) {
        long n = n0 + c;
        const char *sr = (const char *)scales + (size_t)n * groups * es, *br = (const char *)biases + (size_t)n * groups * es;
        for (long g = 0; g < groups; g++) {
            ps[g * 32 + c] = n < N ? tk_load1(sdt, sr, g) : 0;
            pb[g * 32 + c] = n < N ? tk_load1(sdt, br, g) : 0;
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(                                                                               \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)

/// 16 scales or biases of `dtype` at p (n < 16: the rest zero) as floats.
static inline __m512 qg_load16(int dtype, const void *p, int n) {
    __mmask16 m = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
    if (dtype == TK_F32) return _mm512_maskz_loadu_ps(m, p);
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (dtype == TK_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/// tk_qg_panel_scales for a whole panel: each column's row of scales
/// (biases) widened 16 at a time, then stored down its column of ps (pb).
static void qg_scales_avx512(int sdt, const void *scales, const void *biases, long K, int group, long n0,
                             void *scratch) {
    const long groups = K / group;
    const size_t es = (size_t)tk_size(sdt);
    float *ps = (float *)((uint8_t *)scratch + K * 32), *pb = ps + groups * 32;
    for (int c = 0; c < 32; c++) {
        for (int which = 0; which < 2; which++) {
            const char *src = (const char *)(which ? biases : scales) + (size_t)(n0 + c) * groups * es;
            float *dst = (which ? pb : ps) + c;
            for (long g0 = 0; g0 < groups; g0 += 16) {
                int n = groups - g0 < 16 ? (int)(groups - g0) : 16;
                float t[16];
                _mm512_storeu_ps(t, qg_load16(sdt, src + g0 * es, n));
                for (int j = 0; j < n; j++) dst[(g0 + j) * 32] = t[j];
            }
        }
    }
}

/// tk_qg_panel for a whole panel (n0 + 32 <= N) with AVX-512: per 8 codes of
/// 16 columns one gather of their 32-bit words, the nibbles split by masks
/// and shifts, interleaved to bytes (unpack) and sorted into the two
/// 4-code steps (permute): the same bytes as tk_qg_panel, ~10x fewer instructions.
static void qg_panel_avx512(int sdt, const uint32_t *wq, const void *scales, const void *biases, long K, int group,
                            long n0, void *scratch) {
    const long rowBytes = K / 2;
    uint8_t *panel = (uint8_t *)scratch;
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)rowBytes));
    // word j = 4L + i of the 16: codes 0-3 in dword 4L + 2i of unpacklo (i < 2) or of unpackhi (i >= 2); codes 4-7 next
    const __m512i first = _mm512_setr_epi32(0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30);
    const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(1));
    const __m512i nib = _mm512_set1_epi8(15);
    for (int v = 0; v < 2; v++) {
        const uint8_t *base = (const uint8_t *)wq + (n0 + 16 * v) * rowBytes;
        for (long s = 0; s < K / 8; s++) {
            __m512i w = _mm512_i32gather_epi32(idx, base + 4 * s, 1);
            __m512i t = _mm512_and_si512(w, nib), u = _mm512_and_si512(_mm512_srli_epi32(w, 4), nib);
            __m512i a = _mm512_unpacklo_epi8(t, u), b = _mm512_unpackhi_epi8(t, u);
            _mm512_storeu_si512(panel + (2 * s) * 128 + v * 64, _mm512_permutex2var_epi32(a, first, b));
            _mm512_storeu_si512(panel + (2 * s + 1) * 128 + v * 64, _mm512_permutex2var_epi32(a, second, b));
        }
    }
    qg_scales_avx512(sdt, scales, biases, K, group, n0, scratch);
}

/// tk_qg_panel8 for a whole panel (n0 + 32 <= N) with AVX-512: per 4 codes
/// of 16 columns one gather of their 32-bit words, stored as they are (a
/// word of 8-bit codes already holds a column's 4 codes in order).
static void qg_panel8_avx512(int sdt, const uint32_t *wq, const void *scales, const void *biases, long K, int group,
                             long n0, void *scratch) {
    uint8_t *panel = (uint8_t *)scratch;
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)K));
    for (int v = 0; v < 2; v++) {
        const uint8_t *base = (const uint8_t *)wq + (n0 + 16 * v) * K;
        for (long s = 0; s < K / 4; s++)
            _mm512_storeu_si512(panel + s * 128 + v * 64, _mm512_i32gather_epi32(idx, base + 4 * s, 1));
    }
    qg_scales_avx512(sdt, scales, biases, K, group, n0, scratch);
}

/// RB (1..4) rows of prepared x against one packed panel: out rows get columns n0..<n0+cols.
static inline __attribute__((always_inline)) void qg_tile(int RB, int XB, const int8_t *const *xr, const uint8_t *panel,
                                                          const float *ps, const float *pb, long K, int group,
                                                          float *const *out, int cols) {
    const long blocks = K / 32, bpg = group / 32;
    __m512 acc[4][2];
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (long b = 0; b < blocks; b++) {
        __m512i lo[4][2], hi[4][2];
        for (int r = 0; r < 4; r++)
            lo[r][0] = lo[r][1] = hi[r][0] = hi[r][1] = _mm512_setzero_si512();
        const uint8_t *w = panel + b * 8 * 128;
        for (int s = 0; s < 8; s++) {
            __m512i w0 = _mm512_loadu_si512(w + s * 128), w1 = _mm512_loadu_si512(w + s * 128 + 64);
            long k = b * 32 + s * 4;
            for (int r = 0; r < RB; r++) {
                int32_t v;
                memcpy(&v, xr[r] + k, 4);
                __m512i xb = _mm512_set1_epi32(v);
                if (XB == 1 && (s & 1)) {  // odd steps into the second set: twice the independent sums
                    hi[r][0] = _mm512_dpbusd_epi32(hi[r][0], w0, xb);
                    hi[r][1] = _mm512_dpbusd_epi32(hi[r][1], w1, xb);
                    continue;
                }
                lo[r][0] = _mm512_dpbusd_epi32(lo[r][0], w0, xb);
                lo[r][1] = _mm512_dpbusd_epi32(lo[r][1], w1, xb);
                if (XB == 2) {
                    memcpy(&v, xr[r] + K + k, 4);
                    xb = _mm512_set1_epi32(v);
                    hi[r][0] = _mm512_dpbusd_epi32(hi[r][0], w0, xb);
                    hi[r][1] = _mm512_dpbusd_epi32(hi[r][1], w1, xb);
                }
            }
        }
        long g = b / bpg;
        __m512 s0 = _mm512_loadu_ps(ps + g * 32), s1 = _mm512_loadu_ps(ps + g * 32 + 16);
        for (int r = 0; r < RB; r++) {
            const float *d = (const float *)(xr[r] + (long)XB * K);
            __m512 db = _mm512_set1_ps(d[b]);
            if (XB == 1) lo[r][0] = _mm512_add_epi32(lo[r][0], hi[r][0]), lo[r][1] = _mm512_add_epi32(lo[r][1], hi[r][1]);
            __m512 t0 = _mm512_cvtepi32_ps(lo[r][0]), t1 = _mm512_cvtepi32_ps(lo[r][1]);
            if (XB == 2) {
                const __m512 c256 = _mm512_set1_ps(256.0f);
                t0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi[r][0]), c256, t0);
                t1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi[r][1]), c256, t1);
            }
            acc[r][0] = _mm512_fmadd_ps(_mm512_mul_ps(t0, db), s0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(_mm512_mul_ps(t1, db), s1, acc[r][1]);
        }
        if (b % bpg == bpg - 1) {  // the group's biases times its sums of x
            __m512 b0 = _mm512_loadu_ps(pb + g * 32), b1 = _mm512_loadu_ps(pb + g * 32 + 16);
            for (int r = 0; r < RB; r++) {
                const float *sums = (const float *)(xr[r] + (long)XB * K) + blocks;
                __m512 sx = _mm512_set1_ps(sums[g]);
                acc[r][0] = _mm512_fmadd_ps(b0, sx, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(b1, sx, acc[r][1]);
            }
        }
    }
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (1u << (cols - 16)) - 1);
    for (int r = 0; r < RB; r++) {
        _mm512_mask_storeu_ps(out[r], m0, acc[r][0]);
        _mm512_mask_storeu_ps(out[r] + 16, m1, acc[r][1]);
    }
}

/// out [M, N] float32 (row stride N), columns n0..<n1 (n0 a multiple of 32),
/// from x prepared by tk_qgemm4_prepare; `scratch` of tk_qgemm4_panel_bytes(K, group).
/// BITS 4 or 8: only the packing of a panel differs (unsigned codes 0..15 or
/// 0..255 in the same byte layout; vpdpbusd takes either exactly).
static void qgemm_vnni(int BITS, int sdt, const void *prepared, const uint32_t *wq, const void *scales,
                       const void *biases, float *out, long M, long N, long K, int group, int XB, long n0, long n1,
                       void *scratch) {
    const long row = (long)XB * K + (K / 32) * 4 + (K / group) * 4, groups = K / group;
    uint8_t *panel = (uint8_t *)scratch;
    float *ps = (float *)(panel + K * 32), *pb = ps + groups * 32;
    for (long p = n0; p < n1; p += 32) {
        int cols = n1 - p < 32 ? (int)(n1 - p) : 32;
        if (BITS == 8) {
            if (p + 32 <= N) qg_panel8_avx512(sdt, wq, scales, biases, K, group, p, scratch);
            else tk_qg_panel8(sdt, wq, scales, biases, N, K, group, p, scratch);
        } else if (p + 32 <= N) qg_panel_avx512(sdt, wq, scales, biases, K, group, p, scratch);
        else tk_qg_panel(sdt, wq, scales, biases, N, K, group, p, scratch);
        for (long m = 0; m < M; m += 4) {
            int rb = M - m < 4 ? (int)(M - m) : 4;
            const int8_t *xr[4];
            float *o[4];
            for (int r = 0; r < 4; r++) {
                long mm = m + (r < rb ? r : rb - 1);
                xr[r] = (const int8_t *)prepared + mm * row;
                o[r] = out + mm * N + p;
            }
#define QG_CALL(RB)                                                                 \
    if (XB == 2) qg_tile(RB, 2, xr, panel, ps, pb, K, group, o, cols); \
    else qg_tile(RB, 1, xr, panel, ps, pb, K, group, o, cols)
            switch (rb) {
            case 4: QG_CALL(4); break;
            case 3: QG_CALL(3); break;
            case 2: QG_CALL(2); break;
            default: QG_CALL(1); break;
            }
#undef QG_CALL
        }
    }
}

#pragma clang attribute pop

static int qgemm_vnni_ok(void) { return tk_isa() == TK_ISA_AVX512 && tk_qmv_vnni(); }
static int qgemm_isa_ok(void) { return tk_isa() >= TK_ISA_AVX2; }
#else
static int qgemm_vnni_ok(void) { return 0; }
static int qgemm_isa_ok(void) { return 0; }
#endif

long tk_qgemm4_panel_bytes(long K, int group) { return K * 32 + (K / group) * 32 * 4 * 2; }

int tk_qgemm4_available(int sdtype, long K, int group) {
    return qgemm_isa_ok() && (sdtype == TK_F32 || sdtype == TK_F16 || sdtype == TK_BF16) && K > 0 && K % 32 == 0 &&
           (group == 32 || group == 64 || group == 128) && K % group == 0;
}

int tk_qgemm4_vnni_active(void) { return qgemm_vnni_ok(); }

int tk_qgemm4(int sdtype, const void *prepared, const uint32_t *wq, const void *scales, const void *biases, float *out,
              long M, long N, long K, int group, int XB, long n0, long n1, void *scratch) {
    if (!tk_qgemm4_available(sdtype, K, group) || (XB != 1 && XB != 2) || n0 % 32 != 0) return 0;
#if defined(__x86_64__)
    if (qgemm_vnni_ok())
        qgemm_vnni(4, sdtype, prepared, wq, scales, biases, out, M, N, K, group, XB, n0, n1 > N ? N : n1, scratch);
    else
        tk_qgemm4_avx2(sdtype, prepared, wq, scales, biases, out, M, N, K, group, XB, n0, n1 > N ? N : n1, scratch);
    return 1;
#else
    (void)prepared, (void)wq, (void)scales, (void)biases, (void)out, (void)M, (void)N, (void)n1, (void)scratch;
    return 0;
#endif
}

/// Whether tk_qgemm8 runs here: AVX-512 with VNNI only (the AVX2 kernel's
/// vpmaddubsw would saturate its 16-bit pair sums on codes up to 255), the
/// same scale types, K and group sizes as tk_qgemm4.
int tk_qgemm8_available(int sdtype, long K, int group) {
    return qgemm_vnni_ok() && tk_qgemm4_available(sdtype, K, group);
}

static int qgemm8_on = 0;

int tk_qgemm8_enabled(void) { return qgemm8_on; }

int tk_set_qgemm8_enabled(int on) {
    int was = qgemm8_on;
    qgemm8_on = on != 0;
    return was;
}

int tk_qgemm8(int sdtype, const void *prepared, const uint32_t *wq, const void *scales, const void *biases, float *out,
              long M, long N, long K, int group, int XB, long n0, long n1, void *scratch) {
    if (!tk_qgemm8_available(sdtype, K, group) || (XB != 1 && XB != 2) || n0 % 32 != 0) return 0;
#if defined(__x86_64__)
    qgemm_vnni(8, sdtype, prepared, wq, scales, biases, out, M, N, K, group, XB, n0, n1 > N ? N : n1, scratch);
    return 1;
#else
    (void)prepared, (void)wq, (void)scales, (void)biases, (void)out, (void)M, (void)N, (void)n1, (void)scratch;
    return 0;
#endif
}
