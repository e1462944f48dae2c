// Internal to the VNNI qmv kernels (kernels_qmv_vnni.c for 4 bits,
// kernels_qmv8_vnni.c for 8 bits): x rounded to integers X with one float
// scale d per block of 8 values (x ~ d X), each X split into XB signed bytes
// for vpdpbusd; group sums of x; scales and biases as floats. XB = 3 (the
// default precision): |X| <= R = 127 * (65536 + 256 + 1), X = 65536 h + 256 m
// + l, error per value at most max|x| of its block / 2R, 6e-8 of it, as fine
// as float32's own rounding. XB = 2 (tk_set_qmv_x_bytes(2)): |X| <= 127 * 257,
// X = 256 h + l, at most 1.5e-5 of it, one integer product per weight chunk
// fewer. The prepared x records XB, so the rows always read what was
// prepared. x86-64 only, included after <immintrin.h>.
#ifndef CTESSERA_QMV_VNNI_X_H
#define CTESSERA_QMV_VNNI_X_H

#include <math.h>
#include "internal.h"

#pragma clang attribute push(                                                                               \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)

/// Bytes of prepared x per 128 values: 2 * XB planes of 64 bytes, then 16 block scales.
#define QX_CHUNK(XB) ((XB) * 128 + 16 * 4)
/// The largest |X| for XB bytes per value.
static inline float qx_range(int xb) { return xb == 3 ? 127.0f * (65536 + 256 + 1) : 127.0f * (256 + 1); }
/// Bytes before the prepared x: the XB it was prepared with.
enum { QX_HEADER = 64 };

/// 16 (or `n` < 16, the rest zero) scales or biases of `dtype` at p as floats.
static inline __m512 load16(int dtype, const void *p, int n) {
    __mmask16 m = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
    if (dtype == TK_F32) return _mm512_maskz_loadu_ps(m, p);
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (dtype == TK_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/// sum(x) per group of x (K floats) into sx, groups rounded up to 16 with
/// zeros, so that the kernels load them 16 at a time.
static inline void qx_group_sums(const float *x, long K, int group, float *sx) {
    long groups = K / group;
    for (long g = 0; g < (groups + 15) / 16 * 16; g++) {
        __m256 t = _mm256_setzero_ps();
        if (g < groups)
            for (long k = g * group; k < (g + 1) * group; k += 8) t = _mm256_add_ps(t, _mm256_loadu_ps(x + k));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        sx[g] = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
    }
}

/// Flags in `bad` the lanes of |v| (`a`) that are not finite, and the blocks
/// whose max |x| (`mx`) is below 2^-96 but not 0, where R / mx could overflow.
static inline __m256 qx_flag_bad(__m256 bad, __m256 a, __m256 mx) {
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, _mm256_set1_ps(3.4028235e38f), _CMP_NLE_UQ));
    return _mm256_or_ps(bad, _mm256_and_ps(_mm256_cmp_ps(mx, _mm256_set1_ps(0x1p-96f), _CMP_LT_OQ),
                                           _mm256_cmp_ps(mx, _mm256_setzero_ps(), _CMP_GT_OQ)));
}

/// X = round(v inv) clamped to [-R, R], split into X = 65536 h + 256 m + l
/// (xb 3) or X = 256 m + l (xb 2, h unused) with h, m, l in [-128, 127]
/// (floor shifts), as int32 lanes.
static inline void qx_split(int xb, __m256 v, __m256 inv, __m256i *h, __m256i *mid, __m256i *lo) {
    const __m256i r128 = _mm256_set1_epi32(128);
    const int R = (int)qx_range(xb);
    __m256i X = _mm256_cvtps_epi32(_mm256_mul_ps(v, inv));  // round to nearest even
    X = _mm256_min_epi32(_mm256_max_epi32(X, _mm256_set1_epi32(-R)), _mm256_set1_epi32(R));
    __m256i X1 = _mm256_srai_epi32(_mm256_add_epi32(X, r128), 8);  // X = 256 X1 + lo
    *lo = _mm256_sub_epi32(X, _mm256_slli_epi32(X1, 8));
    if (xb == 2) {
        *mid = X1;
        *h = _mm256_setzero_si256();
        return;
    }
    *h = _mm256_srai_epi32(_mm256_add_epi32(X1, r128), 8);  // X1 = 256 h + m
    *mid = _mm256_sub_epi32(X1, _mm256_slli_epi32(*h, 8));
}

/// One 128-value chunk's lane sums against prepared x at `xc` (XB bytes per
/// value): `a` and `b` hold the weight bytes of each block's values in the
/// first and second half of the planes. One int32 sum of 8 terms per x byte:
/// h, m and l (XB 3) or m and l (XB 2, h zero).
static inline __attribute__((always_inline)) void qx_chunk_sums(int XB, __m512i a, __m512i b, const uint8_t *xc,
                                                                __m512i *h, __m512i *m, __m512i *l) {
    const __m512i z = _mm512_setzero_si512();
    const long half = XB * 64;  // bytes from a plane of the first half to its match in the second
    *h = z;
    if (XB == 3)
        *h = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, a, _mm512_loadu_si512(xc)), b, _mm512_loadu_si512(xc + half));
    const uint8_t *xm = xc + (XB - 2) * 64;  // the m plane
    *m = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, a, _mm512_loadu_si512(xm)), b, _mm512_loadu_si512(xm + half));
    *l = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, a, _mm512_loadu_si512(xm + 64)), b,
                             _mm512_loadu_si512(xm + 64 + half));
}

/// The scale permutation of each chunk of a window of 16 groups (G / 8
/// chunks): lane l of chunk j belongs to group j * (128 / G) + l / (G / 8).
static inline void qx_scale_index(int G, __m512i *idx) {
    for (int j = 0; j < G / 8; j++) {
        int32_t t[16];
        for (int l = 0; l < 16; l++) t[l] = j * (128 / G) + l / (G / 8);
        idx[j] = _mm512_loadu_si512(t);
    }
}

/// The start of a window of `ng` groups from g0 for four weight rows (their
/// scales and biases `rowScales` bytes apart): the rows' scales into sv, and
/// each row's b * sum(x) over the window added to its accumulator.
static inline __attribute__((always_inline)) void qx_window4(int dt, const char *sp, const char *bp, size_t rowScales,
                                                             long g0, int ng, const float *sx, __m512 *sv,
                                                             __m512 *acc) {
    const size_t es = (size_t)tk_size(dt);
    __m512 sxv = _mm512_loadu_ps(sx + g0);
#pragma clang loop unroll(full)
    for (int r = 0; r < 4; r++) {
        sv[r] = load16(dt, sp + r * rowScales + (size_t)g0 * es, ng);
        acc[r] = _mm512_fmadd_ps(load16(dt, bp + r * rowScales + (size_t)g0 * es, ng), sxv, acc[r]);
    }
}

/// The sums of four accumulators' lanes, as [sum a0, sum a1, sum a2, sum a3].
static inline __m128 qmv_sum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    // per 128-bit lane: pairs of a0 and a1 (then a2 and a3), then one sum of each
    __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
    __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
    __m512 u = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 v = _mm256_add_ps(_mm512_castps512_ps256(u), _mm512_extractf32x8_ps(u, 1));
    return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
}

/// Prepares one row of x (K floats, K a multiple of 32) into `qx` (chunks of
/// QX_CHUNK(xb) bytes per 128 values, blocks of 8 values) and its group sums
/// into `sx` (groups rounded up to 16, zero padded). A chunk holds 2 xb
/// 64-byte planes, then the 16 block scales d (floats). Block l (values
/// 8l..8l+7) has bytes 4l..4l+3 of each plane: with xb 3 the h, m and l bytes
/// of 4 of its values in planes 0-2, of the other 4 in planes 3-5; with xb 2
/// the m and l bytes in planes 0-1 and 2-3. `order`, a byte shuffle of
/// [h0..h7 | m0..m7] (or [m0..m7 | l0..l7] for xb 2), says which: its bytes
/// 0-3 pick the first plane's bytes, 4-7 the second's, 8-11 and 12-15 those
/// of the other half's first two planes (with xb 3 the l bytes follow bytes
/// 0-3 and 8-11), so one order serves both. Returns 0 when x holds a non-finite or tiny (below 2^-96)
/// value: the caller then takes the float kernel.
static inline int prepare_x_ordered(const float *x, long K, int group, uint8_t *qx, float *sx, __m128i order, int xb) {
    long chunks = (K + 127) / 128;
    qx_group_sums(x, K, group, sx);
    const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 bad = _mm256_setzero_ps();  // lanes that saw a non-finite or tiny value
    for (long c = 0; c < chunks; c++) {
        uint8_t *base = qx + c * QX_CHUNK(xb);
        float *d = (float *)(base + xb * 128);
        const float R = qx_range(xb);
        for (int l = 0; l < 16; l++) {
            long k0 = c * 128 + l * 8;
            __m256 v = k0 < K ? _mm256_loadu_ps(x + k0) : _mm256_setzero_ps();
            __m256 a = _mm256_and_ps(v, absMask);
            // max over the 8 lanes
            __m256 mx = _mm256_max_ps(a, _mm256_permute2f128_ps(a, a, 1));
            mx = _mm256_max_ps(mx, _mm256_shuffle_ps(mx, mx, 0x4E));
            mx = _mm256_max_ps(mx, _mm256_shuffle_ps(mx, mx, 0xB1));
            bad = qx_flag_bad(bad, a, mx);
            float m0 = _mm256_cvtss_f32(mx);
            d[l] = m0 / R;
            __m256i h, mid, lo;
            qx_split(xb, v, _mm256_set1_ps(m0 > 0 ? R / m0 : 0), &h, &mid, &lo);
            int32_t p[4], q[4];
            if (xb == 2) {
                // [m0..m7 | l0..l7] in `order`: 4 bytes per plane
                __m128i ml = _mm_shuffle_epi8(_mm_unpacklo_epi64(_mm256_cvtepi32_epi8(mid), _mm256_cvtepi32_epi8(lo)), order);
                _mm_storeu_si128((__m128i *)p, ml);
                for (int plane = 0; plane < 4; plane++) memcpy(base + 64 * plane + 4 * l, &p[plane], 4);
                continue;
            }
            // [h0..h7 | m0..m7] and [l0..l7 | 0] in `order`: 4 bytes per plane
            __m128i hm = _mm_shuffle_epi8(_mm_unpacklo_epi64(_mm256_cvtepi32_epi8(h), _mm256_cvtepi32_epi8(mid)), order);
            __m128i ll = _mm_shuffle_epi8(_mm256_cvtepi32_epi8(lo), order);
            _mm_storeu_si128((__m128i *)p, hm);
            _mm_storeu_si128((__m128i *)q, ll);
            memcpy(base + 4 * l, &p[0], 4);
            memcpy(base + 64 + 4 * l, &p[1], 4);
            memcpy(base + 128 + 4 * l, &q[0], 4);
            memcpy(base + 192 + 4 * l, &p[2], 4);
            memcpy(base + 256 + 4 * l, &p[3], 4);
            memcpy(base + 320 + 4 * l, &q[2], 4);
        }
    }
    return _mm256_movemask_ps(bad) == 0;
}

// The 8-bit kernels' weight chunks (kernels_qmv8_vnni.c, kernels_qmv_batch_vnni.c).

/// Masks of the last chunk's bytes (K % 128 of them, a multiple of 32; all
/// 128 when K is a multiple of 128) in its two 64-byte loads.
static inline void qmv8_last_masks(long K, __mmask64 *lastA, __mmask64 *lastB) {
    const long last = K - ((K + 127) / 128 - 1) * 128;
    *lastA = last >= 64 ? ~0ull : (1ull << last) - 1;
    *lastB = last >= 128 ? ~0ull : last > 64 ? (1ull << (last - 64)) - 1 : 0;
}

/// Chunk c of a weight row (128 bytes from w + 128 c; the last of `chunks`
/// masked) as P = its dwords 0, 2, ..., 30 and Q = 1, 3, ..., 31: lane l of
/// P and Q together holds values 8l..8l+7.
static inline __attribute__((always_inline)) void qmv8_chunk(const uint8_t *w, long c, long chunks, __mmask64 lastA,
                                                             __mmask64 lastB, __m512i *p, __m512i *q) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    __m512i a, b;
    if (c < chunks - 1) {
        a = _mm512_loadu_si512(w + c * 128);
        b = _mm512_loadu_si512(w + c * 128 + 64);
    } else {
        a = _mm512_maskz_loadu_epi8(lastA, w + c * 128);
        b = _mm512_maskz_loadu_epi8(lastB, w + c * 128 + 64);
    }
    *p = _mm512_permutex2var_epi32(a, even, b);
    *q = _mm512_permutex2var_epi32(a, odd, b);
}

#pragma clang attribute pop
/// Bytes of prepared x for M rows of K values with xb bytes per value (after
/// the header): the strides, then each row's group sums and its chunks.
static inline long qmv_prepared_layout(long M, long K, int group, int xb, long *sxStride, long *qxStride) {
    *sxStride = (K / group + 15) / 16 * 16;
    *qxStride = (K + 127) / 128 * QX_CHUNK(xb);
    return M * (*sxStride * 4 + *qxStride);
}

/// Scratch bytes for qmv_vnni_prepare at either precision (with room for one row of x in float).
static inline long qmv_vnni_scratch(long M, long K, int group) {
    long a, b;
    return QX_HEADER + qmv_prepared_layout(M, K, group, 3, &a, &b) + K * 4;
}

/// Prepares M rows of x (dtype `dt`) into `scratch` in byte `order` at the
/// precision tk_qmv_x_bytes() says now; 0 when x holds a value the integer
/// path cannot take (non-finite or tiny).
static inline int qmv_vnni_prepare(int dt, const void *x, long M, long K, int group, void *scratch, __m128i order) {
    const int xb = tk_qmv_x_bytes();
    *(int32_t *)scratch = xb;
    long sxStride, qxStride, bytes = qmv_prepared_layout(M, K, group, xb, &sxStride, &qxStride);
    float *sx = (float *)((char *)scratch + QX_HEADER), *xf = (float *)((char *)sx + bytes);
    uint8_t *qx = (uint8_t *)(sx + M * sxStride);
    for (long m = 0; m < M; m++) {
        const char *xr = (const char *)x + (size_t)(m * K) * (size_t)tk_size(dt);
        if (dt != TK_F32)
            for (long k = 0; k < K; k++) xf[k] = tk_load1(dt, xr, k);
        if (!prepare_x_ordered(dt != TK_F32 ? xf : (const float *)xr, K, group, qx + m * qxStride, sx + m * sxStride,
                               order, xb))
            return 0;
    }
    return 1;
}

/// A kernel's rows r0..<r1 for `mm` <= 8 prepared rows of x (xb bytes per
/// value), float results at res[m * ldr + n - r0], scales and biases in `sdt`.
typedef void (*qmv_vnni_block)(long mm, int group, int xb, const uint8_t *qx, const float *sx, long sxStride,
                               long qxStride, const uint32_t *wq, int sdt, const void *scales, const void *biases,
                               float *res, long ldr, long K, long r0, long r1);

/// Output rows n0..<n1 from prepared x: blocks of 8 rows of x; float32
/// results go straight to `out`, other dtypes through a float block.
static inline void qmv_vnni_run(qmv_vnni_block block, int dt, int sdt, const void *scratch, const uint32_t *wq,
                                const void *scales, const void *biases, void *out, long M, long N, long K, int group,
                                long n0, long n1) {
    if (n1 <= n0 || M <= 0) return;
    const int xb = *(const int32_t *)scratch;
    long sxStride, qxStride;
    qmv_prepared_layout(M, K, group, xb, &sxStride, &qxStride);
    const float *sx = (const float *)((const char *)scratch + QX_HEADER);
    const uint8_t *qx = (const uint8_t *)(sx + M * sxStride);
    float tmp[8 * 256];
    for (long m0 = 0; m0 < M; m0 += 8) {
        long mm = M - m0 < 8 ? M - m0 : 8;
        for (long r0 = n0; r0 < n1; r0 += dt == TK_F32 ? n1 - n0 : 256) {
            long r1 = dt == TK_F32 ? n1 : (r0 + 256 < n1 ? r0 + 256 : n1);
            float *res = dt == TK_F32 ? (float *)out + m0 * N + r0 : tmp;
            long ldr = dt == TK_F32 ? N : r1 - r0;
            block(mm, group, xb, qx + m0 * qxStride, sx + m0 * sxStride, sxStride, qxStride, wq, sdt, scales, biases,
                  res, ldr, K, r0, r1);
            if (dt != TK_F32)
                for (long m = 0; m < mm; m++)
                    for (long n = r0; n < r1; n++) tk_store1(dt, out, (m0 + m) * N + n, tmp[m * ldr + n - r0]);
        }
    }
}

/// The whole product in one call (tk_qmvN_vnni): 0, doing nothing, when x
/// cannot take the integer path, so that the caller runs the float kernel.
static inline int qmv_vnni_whole(qmv_vnni_block block, __m128i order, int dt, const void *x,
                                 const uint32_t *wq, const void *scales, const void *biases, void *out, long M, long N,
                                 long K, int group, long n0, long n1) {
    if (n1 <= n0 || M <= 0) return 1;
    void *scratch = malloc((size_t)qmv_vnni_scratch(M, K, group));
    int ok = qmv_vnni_prepare(dt, x, M, K, group, scratch, order);
    if (ok) qmv_vnni_run(block, dt, dt, scratch, wq, scales, biases, out, M, N, K, group, n0, n1);
    free(scratch);
    return ok;
}

/// One case of a block function: the row kernel with MM rows of x, the group
/// size and the bytes per x value as constants.
#define QMV_VNNI_CASE(ROWS, MM)                                                                                     \
    case MM:                                                                                                        \
        if (xb == 3) {                                                                                              \
            if (group == 32) ROWS(MM, 32, 3, qx, sx, sxStride, qxStride, wq, sdt, scales, biases, res, ldr, K, r0, r1); \
            else if (group == 64) ROWS(MM, 64, 3, qx, sx, sxStride, qxStride, wq, sdt, scales, biases, res, ldr, K, r0, r1); \
            else ROWS(MM, 128, 3, qx, sx, sxStride, qxStride, wq, sdt, scales, biases, res, ldr, K, r0, r1);        \
        } else {                                                                                                    \
            if (group == 32) ROWS(MM, 32, 2, qx, sx, sxStride, qxStride, wq, sdt, scales, biases, res, ldr, K, r0, r1); \
            else if (group == 64) ROWS(MM, 64, 2, qx, sx, sxStride, qxStride, wq, sdt, scales, biases, res, ldr, K, r0, r1); \
            else ROWS(MM, 128, 2, qx, sx, sxStride, qxStride, wq, sdt, scales, biases, res, ldr, K, r0, r1);        \
        }                                                                                                           \
        break;

/// Defines a kernel's entry points tk_qmvB_vnni_scratch/_prepare/_rows and
/// tk_qmvB_vnni from its row kernel ROWS(MM, G, XB, ...) (MM <= 8 rows of x,
/// the group size and the bytes per x value as compile-time constants) and its
/// x byte ORDER (the same for both precisions).
#define QMV_VNNI_ENTRIES(B, ROWS, ORDER)                                                                  \
    static void qmv##B##_block(long mm, int group, int xb, const uint8_t *qx, const float *sx, long sxStride,     \
                               long qxStride, const uint32_t *wq, int sdt, const void *scales, const void *biases, \
                               float *res, long ldr, long K, long r0, long r1) {                                  \
        switch (mm) {                                                                                             \
            QMV_VNNI_CASE(ROWS, 1) QMV_VNNI_CASE(ROWS, 2) QMV_VNNI_CASE(ROWS, 3) QMV_VNNI_CASE(ROWS, 4)             \
            QMV_VNNI_CASE(ROWS, 5) QMV_VNNI_CASE(ROWS, 6) QMV_VNNI_CASE(ROWS, 7) QMV_VNNI_CASE(ROWS, 8)             \
        }                                                                                                         \
    }                                                                                                             \
    long tk_qmv##B##_vnni_scratch(long M, long K, int group) { return qmv_vnni_scratch(M, K, group); }           \
    int tk_qmv##B##_vnni_prepare(int dt, const void *x, long M, long K, int group, void *scratch) {               \
        return qmv_vnni_prepare(dt, x, M, K, group, scratch, ORDER);                                              \
    }                                                                                                             \
    void tk_qmv##B##_vnni_rows(int dt, int sdt, const void *scratch, const uint32_t *wq, const void *scales,      \
                               const void *biases, void *out, long M, long N, long K, int group, long n0, long n1) { \
        qmv_vnni_run(qmv##B##_block, dt, sdt, scratch, wq, scales, biases, out, M, N, K, group, n0, n1);          \
    }                                                                                                             \
    int tk_qmv##B##_vnni(int dt, const void *x, const uint32_t *wq, const void *scales, const void *biases,        \
                         void *out, long M, long N, long K, int group, long n0, long n1) {                        \
        return qmv_vnni_whole(qmv##B##_block, ORDER, dt, x, wq, scales, biases, out, M, N, K, group, n0, n1);      \
    }

#endif
