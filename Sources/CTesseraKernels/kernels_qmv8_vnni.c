// The 8-bit qmv kernel on AVX-512 VNNI (integer dot products), used by the
// AVX-512 variant when the CPU has VNNI (dispatch.c); the 4-bit one is
// kernels_qmv_vnni.c, the shared rounding of x qmv_vnni_x.h.
//
// Per group g of a weight row: sum_k x[k] (s q[k] + b) = s (q . x) + b sum(x),
// sum(x) per group computed once per call in float. For q . x, x is rounded
// to 24-bit integers X = 65536 h + 256 m + l (or, with tk_set_qmv_x_bytes(2),
// 16-bit X = 256 m + l) with one float scale d per block of 8 values
// (qmv_vnni_x.h), and vpdpbusd multiplies the weight bytes (unsigned 0..255,
// as stored) with the signed bytes.
//
// Byte j of a weight row is value j. Two 64-byte loads A, B (128 values, 32
// dwords of 4 values) are permuted (vpermt2d, off the port the integer
// products use) into P = dwords 0, 2, ..., 30 and Q = dwords 1, 3, ..., 31,
// so that lane l of P and Q together holds block l, values 8l..8l+7, as in
// the 4-bit kernel; x is prepared with values 8l..8l+3 in the first XB
// planes and 8l+4..8l+7 in the rest.
//
// Exactness: each of a lane's three sums has 8 terms of at most 255 * 128,
// so |sum| < 2^18, and (q.h) 256 + q.m < 2^27 is exact in int32; the last
// step ((q.h) 256 + q.m) 256 + q.l would reach 2^35, so it is done in float
// (one rounding of the 27-bit value, then an fma scaled by a power of two),
// where the 4-bit kernel (8 terms of at most 15 * 128) stays in int32; with
// two bytes, (q.m) 256 + q.l < 2^27 is exact in int32 and rounds once. The
// lane's sum is then scaled by s of its group times d of its block and
// accumulated in float.
// The kernels sit together in the `tessera` executable (Sources/tessera/hot-code.order).
#if defined(__clang__) && defined(__ELF__)
#pragma clang section text = ".text.tessera_kernels"
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include "internal.h"

#pragma clang attribute push(                                                                               \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)

#include "qmv_vnni_x.h"  // load16, prepare_x_ordered, QX_CHUNK

// Weight bytes read ahead with software prefetch: the hardware prefetchers
// alone left the SmolLM2 head (49152x576, 35 MB with float32 scales and
// biases) at ~3.6 ms on one thread here, prefetching 4 KiB ahead at ~2.7 ms.
enum { QMV8_PREFETCH = 4096 };

// qmv8_last_masks and qmv8_chunk (a chunk of a weight row as P and Q): qmv_vnni_x.h.

/// Rows n0..<n1 for one prepared row of x, four weight rows per pass (x loads
/// shared, one horizontal sum for the four; qmv_sum4 in qmv_vnni_x.h): the
/// decode case. Writes res[n - n0] for the rows it does and returns the first
/// row it left (fewer than four remain).
static inline __attribute__((always_inline)) long qmv8_rows_by4(int G, int XB, const uint8_t *qx, const float *sx,
                                                                const uint32_t *wq, int dt, const void *scales,
                                                                const void *biases, float *res, long K, long n0,
                                                                long n1) {
    const long groups = K / G, chunks = (K + 127) / 128;
    const int cpw = G / 8;
    const size_t es = (size_t)tk_size(dt), rowScales = (size_t)groups * es;
    const __m512 f256 = _mm512_set1_ps(256);
    __m512i idx[16];
    qx_scale_index(G, idx);
    __mmask64 lastA, lastB;
    qmv8_last_masks(K, &lastA, &lastB);
    const long ahead = (QMV8_PREFETCH + K - 1) / K;  // rows
    long n = n0;
    for (; n + 4 <= n1; n += 4) {
        const uint8_t *w = (const uint8_t *)wq + n * K;
        const char *sp = (const char *)scales + (size_t)n * rowScales;
        const char *bp = (const char *)biases + (size_t)n * rowScales;
        if (n + ahead + 4 <= n1) {  // the scales and biases of the rows the weight prefetch has reached
            const char *ps = sp + (size_t)ahead * rowScales, *pb = bp + (size_t)ahead * rowScales;
            for (long o = 0; o < (long)(4 * rowScales); o += 64) {
                _mm_prefetch(ps + o, _MM_HINT_T0);
                _mm_prefetch(pb + o, _MM_HINT_T0);
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
                    const uint8_t *wr = w + r * K + c * 128;
                    _mm_prefetch((const char *)wr + QMV8_PREFETCH, _MM_HINT_T0);
                    _mm_prefetch((const char *)wr + QMV8_PREFETCH + 64, _MM_HINT_T0);
                    __m512i p, q;
                    qmv8_chunk(w + r * K, c, chunks, lastA, lastB, &p, &q);
                    __m512i ih, im, il;
                    qx_chunk_sums(XB, p, q, xc, &ih, &im, &il);
                    __m512i hm = _mm512_add_epi32(_mm512_slli_epi32(ih, 8), im);  // exact, below 2^27
                    __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hm), f256, _mm512_cvtepi32_ps(il));
                    acc[r] = _mm512_fmadd_ps(t, _mm512_mul_ps(_mm512_permutexvar_ps(idx[j], sv[r]), d), acc[r]);
                }
            }
        }
        _mm_storeu_ps(res + n - n0, qmv_sum4(acc[0], acc[1], acc[2], acc[3]));
    }
    return n;
}

/// Rows n0..<n1 of the output for MM prepared rows of x (MM and G compile-time
/// constants after inlining). Writes float results to res[m * ldr + n - n0].
static inline __attribute__((always_inline)) void qmv8_rows(int MM, int G, int XB, const uint8_t *qx, const float *sx,
                                                            long sxStride, long qxStride, const uint32_t *wq, int dt,
                                                            const void *scales, const void *biases, float *res,
                                                            long ldr, long K, long n0, long n1) {
    const long groups = K / G, chunks = (K + 127) / 128;
    const int cpw = G / 8;  // chunks (of 128 values) per window of 16 groups
    const size_t es = (size_t)tk_size(dt);
    const __m512 f256 = _mm512_set1_ps(256);
    __m512i idx[16];
    qx_scale_index(G, idx);
    __mmask64 lastA, lastB;
    qmv8_last_masks(K, &lastA, &lastB);
    const long ahead = (QMV8_PREFETCH + K - 1) / K;  // rows
    long first = n0;
    if (MM == 1) first = qmv8_rows_by4(G, XB, qx, sx, wq, dt, scales, biases, res, K, n0, n1);
    for (long n = first; n < n1; n++) {
        const uint8_t *w = (const uint8_t *)wq + n * K;
        const char *sp = (const char *)scales + (size_t)(n * groups) * es;
        const char *bp = (const char *)biases + (size_t)(n * groups) * es;
        __m512 acc[8], accb[8];
        if (n + ahead < n1) {  // the scales and biases of the row the weight prefetch has reached
            const char *ps = sp + (size_t)(ahead * groups) * es, *pb = bp + (size_t)(ahead * groups) * es;
            for (long o = 0; o < (long)((size_t)groups * es); o += 64) {
                _mm_prefetch(ps + o, _MM_HINT_T0);
                _mm_prefetch(pb + o, _MM_HINT_T0);
            }
        }
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
                _mm_prefetch((const char *)w + c * 128 + QMV8_PREFETCH, _MM_HINT_T0);
                _mm_prefetch((const char *)w + c * 128 + QMV8_PREFETCH + 64, _MM_HINT_T0);
                __m512i p, q;
                qmv8_chunk(w, c, chunks, lastA, lastB, &p, &q);
                __m512 se = _mm512_permutexvar_ps(idx[j], sv);
#pragma clang loop unroll(full)
                for (int m = 0; m < MM; m++) {
                    const uint8_t *xc = qx + m * qxStride + c * QX_CHUNK(XB);
                    __m512i ih, im, il;
                    qx_chunk_sums(XB, p, q, xc, &ih, &im, &il);
                    // ((q.h) 256 + q.m) 256 + q.l (q.h is 0 with XB 2), the last step in
                    // float: one rounding (the fma of exact terms)
                    __m512i hm = _mm512_add_epi32(_mm512_slli_epi32(ih, 8), im);  // exact, below 2^27
                    __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hm), f256, _mm512_cvtepi32_ps(il));
                    acc[m] = _mm512_fmadd_ps(t, _mm512_mul_ps(se, _mm512_loadu_ps((const float *)(xc + XB * 128))), acc[m]);
                }
            }
        }
#pragma clang loop unroll(full)
        for (int m = 0; m < MM; m++) res[m * ldr + n - n0] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m], accb[m]));
    }
}

// x byte order: values 8l..8l+3 of block l in the first XB planes, 8l+4..8l+7 in the rest.
QMV_VNNI_ENTRIES(8, qmv8_rows, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15))

#pragma clang attribute pop
#endif
