// The 4-bit qmv kernel on AVX-512 VNNI (integer dot products), used by the
// AVX-512 variant when the CPU has VNNI (dispatch.c).
//
// Per group g of a weight row: sum_k x[k] (s q[k] + b) = s (q . x) + b sum(x).
// sum(x) per group is computed once per call from x in float. For q . x, x is
// rounded once per call to integers X with one float scale d per lane block of
// 8 values (qmv_vnni_x.h): 24-bit by default (error per value at most 6e-8
// of its block's largest, as fine as float32's own rounding), split into
// three signed bytes X = 65536 h + 256 m + l; or 16-bit (tk_set_qmv_x_bytes(2):
// 1.5e-5 of it), two bytes X = 256 m + l and one product fewer. vpdpbusd
// multiplies the weight nibbles (unsigned bytes 0..15) with each byte; the
// int32 sums are exact (below 2^30). Each 64-byte chunk of a weight row (128
// values) gives 16 lanes of 8 values; a lane's sum, converted to float, is
// scaled by s of its group times d of its block and accumulated in float.
//
// Nibble order: byte j of a chunk holds value 2j (low nibble) and 2j+1 (high
// nibble); lane l of vpdpbusd covers bytes 4l..4l+3, so the low nibbles are
// values 8l, 8l+2, 8l+4, 8l+6 and the high nibbles 8l+1, ..., 8l+7. x is
// stored per chunk in that order: the even values' bytes, then the odd
// values' (2 XB x 64 bytes), then the 16 lane scales.
//
// One row of x (decode) takes four weight rows per pass: each x chunk is
// loaded once for the four, and their sums leave through one shared
// horizontal reduction (qmv_sum4), which on K = 576 rows (4.5 chunks) had
// cost about as much as a chunk. Measured here (one thread, cache-hot), the
// 1536x576 and 576x1536 products ran 20-30% faster than a row per pass.
// The kernels sit together in the `tessera` executable (Sources/tessera/hot-code.order).
#if defined(__clang__) && defined(__ELF__)
#pragma clang section text = ".text.tessera_kernels"
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include "internal.h"

#pragma clang attribute push(                                                                               \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)

#include "qmv_vnni_x.h"  // load16, QX_CHUNK, R, the prepared-x entry points
enum { QMV_AHEAD = 4 };  // rows prefetched ahead (4-16 measured alike on SmolLM2's shapes)

/// Rows n0..<n1 for one prepared row of x, four weight rows per pass (their
/// x loads shared, one horizontal sum for the four: qmv_sum4): the decode case. Writes
/// res[n - n0] for the rows it does and returns the first row it left (fewer
/// than four remain).
static inline __attribute__((always_inline)) long qmv4_rows_by4(int G, int XB, const uint8_t *qx, const float *sx,
                                                                const uint32_t *wq, int dt, const void *scales,
                                                                const void *biases, float *res, long K, long n0,
                                                                long n1) {
    const long groups = K / G, full = K / 128, chunks = (K + 127) / 128, rowBytes = K / 2;
    const int cpw = G / 8;
    const size_t es = (size_t)tk_size(dt), rowScales = (size_t)groups * es;
    const __m512i nib = _mm512_set1_epi8(0x0F);
    __m512i idx[16];
    qx_scale_index(G, idx);
    const __mmask64 tail = (__mmask64)((1ull << ((K - full * 128) / 2)) - 1);
    long n = n0;
    for (; n + 4 <= n1; n += 4) {
        const uint8_t *w = (const uint8_t *)wq + n * rowBytes;
        const char *sp = (const char *)scales + (size_t)n * rowScales;
        const char *bp = (const char *)biases + (size_t)n * rowScales;
        if (n + 8 <= n1) {  // the next four rows (contiguous), as in qmv4_rows
            const char *wa = (const char *)(w + 4 * rowBytes), *sa = sp + 4 * rowScales, *ba = bp + 4 * rowScales;
            for (long b = 0; b < 4 * rowBytes; b += 64) _mm_prefetch(wa + b, _MM_HINT_T0);
            for (long b = 0; b < (long)(4 * rowScales); b += 64) {
                _mm_prefetch(sa + b, _MM_HINT_T0);
                _mm_prefetch(ba + b, _MM_HINT_T0);
            }
        }
        __m512 acc[4];
#pragma clang loop unroll(full)
        for (int r = 0; r < 4; r++) acc[r] = _mm512_setzero_ps();
        for (long c0 = 0, g0 = 0; c0 < chunks; c0 += cpw, g0 += 16) {
            int ng = groups - g0 < 16 ? (int)(groups - g0) : 16;
            __m512 sv[4];
            qx_window4(dt, sp, bp, rowScales, g0, ng, sx, sv, acc);
            int nj = chunks - c0 < cpw ? (int)(chunks - c0) : cpw;
            for (int j = 0; j < nj; j++) {
                long c = c0 + j;
                const uint8_t *xc = qx + c * QX_CHUNK(XB);
                __m512 d = _mm512_loadu_ps((const float *)(xc + XB * 128));
#pragma clang loop unroll(full)
                for (int r = 0; r < 4; r++) {
                    const uint8_t *wr = w + r * rowBytes + c * 64;
                    __m512i wv = c < full ? _mm512_loadu_si512(wr) : _mm512_maskz_loadu_epi8(tail, wr);
                    __m512i lo = _mm512_and_si512(wv, nib), hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), nib);
                    __m512i ih, im, il;
                    qx_chunk_sums(XB, lo, hi, xc, &ih, &im, &il);
                    __m512i t = _mm512_add_epi32(_mm512_slli_epi32(_mm512_add_epi32(_mm512_slli_epi32(ih, 8), im), 8), il);
                    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(_mm512_permutexvar_ps(idx[j], sv[r]), d),
                                             acc[r]);
                }
            }
        }
        _mm_storeu_ps(res + n - n0, qmv_sum4(acc[0], acc[1], acc[2], acc[3]));
    }
    return n;
}

/// Rows n0..<n1 of the output for MM prepared rows of x (MM and G compile-time
/// constants after inlining). Writes float results to res[m * ldr + n - n0].
static inline __attribute__((always_inline)) void qmv4_rows(int MM, int G, int XB, const uint8_t *qx, const float *sx,
                                                            long sxStride, long qxStride, const uint32_t *wq, int dt,
                                                            const void *scales, const void *biases, float *res,
                                                            long ldr, long K, long n0, long n1) {
    const long groups = K / G, full = K / 128, chunks = (K + 127) / 128, rowBytes = K / 2;
    const int cpw = G / 8;  // chunks per window of 16 groups
    const size_t es = (size_t)tk_size(dt);
    const __m512i nib = _mm512_set1_epi8(0x0F);
    __m512i idx[16];
    qx_scale_index(G, idx);
    const __mmask64 tail = (__mmask64)((1ull << ((K - full * 128) / 2)) - 1);
    long first = n0;
    if (MM == 1) first = qmv4_rows_by4(G, XB, qx, sx, wq, dt, scales, biases, res, K, n0, n1);
    for (long n = first; n < n1; n++) {
        const uint8_t *w = (const uint8_t *)wq + n * rowBytes;
        const char *sp = (const char *)scales + (size_t)(n * groups) * es;
        const char *bp = (const char *)biases + (size_t)(n * groups) * es;
        if (n + QMV_AHEAD < n1) {
            // The hardware prefetcher stops at 4 KiB pages and ramps up slowly on short
            // rows: ask for the row QMV_AHEAD rows on (weights, scales, biases) now.
            const char *wa = (const char *)(w + QMV_AHEAD * rowBytes);
            for (long b = 0; b < rowBytes; b += 64) _mm_prefetch(wa + b, _MM_HINT_T0);
            const char *sa = sp + (size_t)(QMV_AHEAD * groups) * es, *ba = bp + (size_t)(QMV_AHEAD * groups) * es;
            for (long b = 0; b < (long)(groups * es); b += 64) {
                _mm_prefetch(sa + b, _MM_HINT_T0);
                _mm_prefetch(ba + b, _MM_HINT_T0);
            }
        }
        __m512 acc[8], accb[8];
#pragma clang loop unroll(full)
        for (int m = 0; m < MM; m++) acc[m] = accb[m] = _mm512_setzero_ps();
        for (long c0 = 0, g0 = 0; c0 < chunks; c0 += cpw, g0 += 16) {
            int ng = groups - g0 < 16 ? (int)(groups - g0) : 16;
            __m512 sv = load16(dt, sp + (size_t)g0 * es, ng), bv = load16(dt, bp + (size_t)g0 * es, ng);
#pragma clang loop unroll(full)
            for (int m = 0; m < MM; m++) accb[m] = _mm512_fmadd_ps(bv, _mm512_loadu_ps(sx + m * sxStride + g0), accb[m]);
            int nj = chunks - c0 < cpw ? (int)(chunks - c0) : cpw;
            for (int j = 0; j < nj; j++) {
                long c = c0 + j;
                __m512i wv = c < full ? _mm512_loadu_si512(w + c * 64) : _mm512_maskz_loadu_epi8(tail, w + c * 64);
                __m512i lo = _mm512_and_si512(wv, nib), hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), nib);
                __m512 se = _mm512_permutexvar_ps(idx[j], sv);
#pragma clang loop unroll(full)
                for (int m = 0; m < MM; m++) {
                    const uint8_t *xc = qx + m * qxStride + c * QX_CHUNK(XB);
                    // ((q.h) 256 + q.m) 256 + q.l (q.h is 0 with XB 2), even values from
                    // the low nibbles, odd from the high
                    __m512i ih, im, il;
                    qx_chunk_sums(XB, lo, hi, xc, &ih, &im, &il);
                    __m512i t = _mm512_add_epi32(_mm512_slli_epi32(_mm512_add_epi32(_mm512_slli_epi32(ih, 8), im), 8), il);
                    acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t),
                                             _mm512_mul_ps(se, _mm512_loadu_ps((const float *)(xc + XB * 128))), acc[m]);
                }
            }
        }
#pragma clang loop unroll(full)
        for (int m = 0; m < MM; m++) res[m * ldr + n - n0] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m], accb[m]));
    }
}

// x byte order: the first XB planes hold the even values of a block (low nibbles), the rest the odd ones (high nibbles).
QMV_VNNI_ENTRIES(4, qmv4_rows, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15))

#pragma clang attribute pop
#endif
