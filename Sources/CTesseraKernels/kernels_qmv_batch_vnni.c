// The batched VNNI qmv kernels (4 and 8 bits): up to 16 rows of x, each
// prepared alone (tk_qmv_prepare with one row), against the same weight rows
// n0..<n1, for a continuously batched decode step. Each weight chunk is
// loaded and unpacked (4 bits: nibbles; 8 bits: the P/Q permutation) once
// for all rows of x, with its scales and biases, while every row of x gets
// exactly the arithmetic the one-row kernel gives it (kernels_qmv_vnni.c,
// kernels_qmv8_vnni.c, called with that row alone over the same n0..<n1):
//   - weight rows n0, n0 + 4, ... in passes of four with the accumulators
//     started by b * sum(x) at each window of 16 groups, the lane sums scaled
//     by (s of the group) * (d of the block) and added by one fma per chunk,
//     and qmv_sum4's reduction of the four; the (n1 - n0) % 4 rows left at
//     the end one at a time with the bias terms in a separate accumulator
//     and _mm512_reduce_add_ps of their sum;
//   - the same integer products (exact), the same conversions and the same
//     float operations in the same order, so a row's result is bit for bit
//     the one-row kernel's whatever rows sit beside it (tested against it in
//     CPUQuantizedBatchTests.swift).
// With x at 24 bits the accumulators of all rows of x live on the stack (16
// rows x 4 weight rows is more than the 32 registers), which costs a load and
// a store per fma against the four unpacking operations and scale
// permutations saved. With x at 16 bits (the CLI's default precision,
// `high`) qb2_passes runs the rows of x two at a time over a pass's chunks,
// their accumulators in registers, the scale permutations (and 8-bit weight
// chunks) prepared once per pass: 4-11% faster per row at 8 rows of x on
// SmolLM2's 4-bit shapes (Tools/qmv_batch_probe.c); it is bound by the six
// products per (row of x, weight row, chunk) that share two pipes on Zen 5
// (four dot products, the scale product and the fma: ~0.75 ns each measured
// alone, against ~0.95 here).
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

#include "qmv_vnni_x.h"

enum { QB_MAX = 16, QB_BLOCK = 64 };  // rows of x per call of the block; weight rows per output block

/// Where the weight chunks of one row come from and how they are unpacked,
/// and its groups (G values each, cpw chunks per window of 16 groups) and
/// the bytes of a row's scales (es bytes each).
typedef struct {
    long K, chunks, full, rowBytes, groups;
    int cpw;
    size_t es, rowScales;
    __mmask64 tail, lastA, lastB;
} qb_shape;

static inline qb_shape qb_make(int B, int G, long K, int dt) {
    qb_shape s;
    s.K = K;
    s.groups = K / G;
    s.cpw = G / 8;
    s.es = (size_t)tk_size(dt);
    s.rowScales = (size_t)s.groups * s.es;
    s.chunks = (K + 127) / 128;
    s.full = K / 128;
    s.rowBytes = B == 4 ? K / 2 : K;
    s.tail = (__mmask64)((1ull << ((K - s.full * 128) / 2)) - 1);
    qmv8_last_masks(K, &s.lastA, &s.lastB);
    return s;
}

/// Chunk c of weight row `w` as the two operands of qx_chunk_sums (4 bits:
/// low and high nibbles; 8 bits: P and Q), as the one-row kernels unpack it.
static inline __attribute__((always_inline)) void qb_chunk(int B, const qb_shape *s, const uint8_t *w, long c,
                                                           __m512i *a, __m512i *b) {
    if (B == 4) {
        const __m512i nib = _mm512_set1_epi8(0x0F);
        __m512i wv = c < s->full ? _mm512_loadu_si512(w + c * 64) : _mm512_maskz_loadu_epi8(s->tail, w + c * 64);
        *a = _mm512_and_si512(wv, nib);
        *b = _mm512_and_si512(_mm512_srli_epi16(wv, 4), nib);
    } else {
        qmv8_chunk(w, c, s->chunks, s->lastA, s->lastB, a, b);
    }
}

/// The lane sums of a chunk against prepared x at xc, as floats, exactly as
/// the one-row kernels form them: in int32 for 4 bits, the last step in
/// float (one fma of exact terms) for 8 bits.
static inline __attribute__((always_inline)) __m512 qb_sums(int B, int XB, __m512i a, __m512i b, const uint8_t *xc) {
    __m512i ih, im, il;
    qx_chunk_sums(XB, a, b, xc, &ih, &im, &il);
    if (B == 4)
        return _mm512_cvtepi32_ps(
            _mm512_add_epi32(_mm512_slli_epi32(_mm512_add_epi32(_mm512_slli_epi32(ih, 8), im), 8), il));
    __m512i hm = _mm512_add_epi32(_mm512_slli_epi32(ih, 8), im);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(hm), _mm512_set1_ps(256), _mm512_cvtepi32_ps(il));
}

/// Asks for the four weight rows after the pass at w (their weights, scales
/// at sp and biases at bp, rowScales bytes per row), as the one-row kernel does.
static inline __attribute__((always_inline)) void qb_prefetch4(const uint8_t *w, const char *sp, const char *bp,
                                                               long rowBytes, size_t rowScales) {
    const char *wa = (const char *)(w + 4 * rowBytes), *sa = sp + 4 * rowScales, *ba = bp + 4 * rowScales;
    for (long o = 0; o < 4 * rowBytes; o += 64) _mm_prefetch(wa + o, _MM_HINT_T0);
    for (long o = 0; o < (long)(4 * rowScales); o += 64) {
        _mm_prefetch(sa + o, _MM_HINT_T0);
        _mm_prefetch(ba + o, _MM_HINT_T0);
    }
}

/// The chunk's lane sums as integers for x at 16 bits (XB 2): the m bytes'
/// products, times 256, then the l bytes' products added by the same
/// instructions; the exact int32 256 (q . m) + q . l that the one-row
/// kernels form (4 bits: in int32; 8 bits: one fma of those exact terms in
/// float, the same rounding of the same value as converting this sum).
static inline __attribute__((always_inline)) __m512i qb2_sums(__m512i a, __m512i b, const __m512i *xv) {
    const __m512i z = _mm512_setzero_si512();
    __m512i im = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, a, xv[0]), b, xv[2]);
    __m512i il = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, a, xv[1]), b, xv[3]);
    return _mm512_add_epi32(_mm512_slli_epi32(im, 8), il);
}

/// MB (1 or 2) rows of x from m0 against the four weight rows of a pass
/// over a segment of `nch` chunks from c0 (windows of cpw chunks from group
/// g0; the rows' unpacked chunks in a/b, permuted scales in se, each
/// window's bias vectors in bv): the accumulators start at zero (the first
/// segment) or from acc, take each window's bias terms and then its chunks'
/// sums in the one-row kernel's order, and end in acc, or, after the last
/// segment, as the four rows' sums (qmv_sum4) at res[m * QB_BLOCK].
static inline __attribute__((always_inline)) void qb2_segment(int B, const qb_shape *sh, const uint8_t *wr, int MB,
                                                              long m0, const uint8_t *const *qx,
                                                              const float *const *sx, long g0, long c0, int nch,
                                                              int cpw, const __m512i (*a)[16],
                                                              const __m512i (*b)[16], const __m512 (*se)[16],
                                                              const __m512 (*bv)[4], int first, int last,
                                                              __m512 (*acc)[4], float *res) {
    __m512 v[2][4];
#pragma clang loop unroll(full)
    for (int m = 0; m < MB; m++)
#pragma clang loop unroll(full)
        for (int r = 0; r < 4; r++) v[m][r] = first ? _mm512_setzero_ps() : acc[m0 + m][r];
    for (int w = 0, j0 = 0; j0 < nch; w++, j0 += cpw) {
#pragma clang loop unroll(full)
        for (int m = 0; m < MB; m++) {
            __m512 sxv = _mm512_loadu_ps(sx[m0 + m] + g0 + 16 * w);
#pragma clang loop unroll(full)
            for (int r = 0; r < 4; r++) v[m][r] = _mm512_fmadd_ps(bv[w][r], sxv, v[m][r]);
        }
        const int j1 = j0 + cpw < nch ? j0 + cpw : nch;
        for (int j = j0; j < j1; j++) {
            const long c = c0 + j;
            __m512i wa[4], wb[4];
#pragma clang loop unroll(full)
            for (int r = 0; r < 4; r++) {
                if (B == 4) {  // unpacked here, from the weights in cache (fewer stores than reading them back)
                    qb_chunk(4, sh, wr + r * sh->rowBytes, c, &wa[r], &wb[r]);
                } else {
                    wa[r] = a[r][j];
                    wb[r] = b[r][j];
                }
            }
#pragma clang loop unroll(full)
            for (int m = 0; m < MB; m++) {
                const uint8_t *xc = qx[m0 + m] + c * QX_CHUNK(2);
                // planes: m bytes of the even values, l bytes of the even, m of the odd, l of the odd
                const __m512i xv[4] = {_mm512_loadu_si512(xc), _mm512_loadu_si512(xc + 64),
                                       _mm512_loadu_si512(xc + 128), _mm512_loadu_si512(xc + 192)};
                const __m512 d = _mm512_loadu_ps((const float *)(xc + 256));
#pragma clang loop unroll(full)
                for (int r = 0; r < 4; r++)
                    v[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(qb2_sums(wa[r], wb[r], xv)),
                                              _mm512_mul_ps(se[r][j], d), v[m][r]);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int m = 0; m < MB; m++) {
        if (last) {
            _mm_storeu_ps(res + (m0 + m) * QB_BLOCK, qmv_sum4(v[m][0], v[m][1], v[m][2], v[m][3]));
        } else {
#pragma clang loop unroll(full)
            for (int r = 0; r < 4; r++) acc[m0 + m][r] = v[m][r];
        }
    }
}

/// The passes of four weight rows from nb for x at 16 bits (XB 2), in
/// segments of up to 16 chunks (whole windows; one segment for K up to 2048):
/// a segment's chunks of the four rows are unpacked once, with their
/// permuted scales, then every row of x runs over them two at a time with
/// its accumulators in registers (stored only between segments). Each row's
/// arithmetic is qb_rows' (and so the one-row kernel's): the same integer
/// sums, the same float operations in the same order. Returns the first row
/// it left (fewer than four remain).
static inline __attribute__((always_inline)) long qb2_passes(int B, const qb_shape *shape, const __m512i *idx,
                                                             long M, const uint8_t *const *qx,
                                                             const float *const *sx, const uint32_t *wq, int dt,
                                                             const void *scales, const void *biases, float *res,
                                                             long nb, long ne, __m512 (*acc)[4]) {
    const qb_shape s = *shape;
    const long groups = s.groups, chunks = s.chunks;
    const int cpw = s.cpw;
    const size_t es = s.es, rowScales = s.rowScales;
    __m512i a[4][16], b[4][16];
    __m512 se[4][16], bv[4][4];
    long n = nb;
    for (; n + 4 <= ne; n += 4) {
        const uint8_t *w = (const uint8_t *)wq + n * s.rowBytes;
        const char *sp = (const char *)scales + (size_t)n * rowScales;
        const char *bp = (const char *)biases + (size_t)n * rowScales;
        if (n + 8 <= ne) qb_prefetch4(w, sp, bp, s.rowBytes, rowScales);
        for (long c0 = 0, g0 = 0; c0 < chunks; c0 += 16, g0 += 16 * 16 / cpw) {
            const int nch = chunks - c0 < 16 ? (int)(chunks - c0) : 16;
            for (int wi = 0, j0 = 0; j0 < nch; wi++, j0 += cpw) {
                const long gw = g0 + 16 * wi;
                const int ng = groups - gw < 16 ? (int)(groups - gw) : 16;
                const int j1 = j0 + cpw < nch ? j0 + cpw : nch;
#pragma clang loop unroll(full)
                for (int r = 0; r < 4; r++) {
                    __m512 sv = load16(dt, sp + r * rowScales + (size_t)gw * es, ng);
                    bv[wi][r] = load16(dt, bp + r * rowScales + (size_t)gw * es, ng);
                    for (int j = j0; j < j1; j++) {
                        if (B == 8) qb_chunk(8, &s, w + r * s.rowBytes, c0 + j, &a[r][j], &b[r][j]);
                        se[r][j] = _mm512_permutexvar_ps(idx[j - j0], sv);
                    }
                }
            }
            const int first = c0 == 0, last = c0 + 16 >= chunks;
            float *out = res + n - nb;
            long m = 0;
            for (; m + 2 <= M; m += 2)
                qb2_segment(B, &s, w, 2, m, qx, sx, g0, c0, nch, cpw, a, b, se, bv, first, last, acc, out);
            if (m < M) qb2_segment(B, &s, w, 1, m, qx, sx, g0, c0, nch, cpw, a, b, se, bv, first, last, acc, out);
        }
    }
    return n;
}

/// Weight rows nb..<ne (nb - n0 a multiple of 4; the rows left over at the
/// end one at a time, as in the one-row kernel) for M <= QB_MAX rows of
/// prepared x (row m's group sums at sx[m], chunks at qx[m]), float results
/// at res[m * QB_BLOCK + n - nb].
static inline __attribute__((always_inline)) void qb_rows(int B, int G, int XB, long M, const uint8_t *const *qx,
                                                          const float *const *sx, const uint32_t *wq, int dt,
                                                          const void *scales, const void *biases, float *res, long K,
                                                          long nb, long ne) {
    const qb_shape s = qb_make(B, G, K, dt);
    const long groups = s.groups, chunks = s.chunks;
    const int cpw = s.cpw;
    const size_t es = s.es, rowScales = s.rowScales;
    __m512i idx[16];
    qx_scale_index(G, idx);
    __m512 acc[QB_MAX][4], accb[QB_MAX];
    long n = nb;
    if (XB == 2) n = qb2_passes(B, &s, idx, M, qx, sx, wq, dt, scales, biases, res, nb, ne, acc);
    for (; XB != 2 && n + 4 <= ne; n += 4) {
        const uint8_t *w = (const uint8_t *)wq + n * s.rowBytes;
        const char *sp = (const char *)scales + (size_t)n * rowScales;
        const char *bp = (const char *)biases + (size_t)n * rowScales;
        if (n + 8 <= ne) qb_prefetch4(w, sp, bp, s.rowBytes, rowScales);
        for (long m = 0; m < M; m++)
            for (int r = 0; r < 4; r++) acc[m][r] = _mm512_setzero_ps();
        for (long c0 = 0, g0 = 0; c0 < chunks; c0 += cpw, g0 += 16) {
            int ng = groups - g0 < 16 ? (int)(groups - g0) : 16;
            __m512 sv[4], bv[4];
#pragma clang loop unroll(full)
            for (int r = 0; r < 4; r++) {
                sv[r] = load16(dt, sp + r * rowScales + (size_t)g0 * es, ng);
                bv[r] = load16(dt, bp + r * rowScales + (size_t)g0 * es, ng);
            }
            for (long m = 0; m < M; m++) {  // qx_window4's bias terms
                __m512 sxv = _mm512_loadu_ps(sx[m] + g0);
#pragma clang loop unroll(full)
                for (int r = 0; r < 4; r++) acc[m][r] = _mm512_fmadd_ps(bv[r], sxv, acc[m][r]);
            }
            int nj = chunks - c0 < cpw ? (int)(chunks - c0) : cpw;
            for (int j = 0; j < nj; j++) {
                long c = c0 + j;
                __m512i a[4], b[4];
                __m512 se[4];
#pragma clang loop unroll(full)
                for (int r = 0; r < 4; r++) {
                    qb_chunk(B, &s, w + r * s.rowBytes, c, &a[r], &b[r]);
                    se[r] = _mm512_permutexvar_ps(idx[j], sv[r]);
                }
                for (long m = 0; m < M; m++) {
                    const uint8_t *xc = qx[m] + c * QX_CHUNK(XB);
                    __m512 d = _mm512_loadu_ps((const float *)(xc + XB * 128));
#pragma clang loop unroll(full)
                    for (int r = 0; r < 4; r++)
                        acc[m][r] = _mm512_fmadd_ps(qb_sums(B, XB, a[r], b[r], xc), _mm512_mul_ps(se[r], d), acc[m][r]);
                }
            }
        }
        for (long m = 0; m < M; m++)
            _mm_storeu_ps(res + m * QB_BLOCK + n - nb, qmv_sum4(acc[m][0], acc[m][1], acc[m][2], acc[m][3]));
    }
    for (; n < ne; n++) {  // the one-row kernel's rows after its passes of four
        const uint8_t *w = (const uint8_t *)wq + n * s.rowBytes;
        const char *sp = (const char *)scales + (size_t)n * rowScales;
        const char *bp = (const char *)biases + (size_t)n * rowScales;
        for (long m = 0; m < M; m++) acc[m][0] = accb[m] = _mm512_setzero_ps();
        for (long c0 = 0, g0 = 0; c0 < chunks; c0 += cpw, g0 += 16) {
            int ng = groups - g0 < 16 ? (int)(groups - g0) : 16;
            __m512 sv = load16(dt, sp + (size_t)g0 * es, ng), bv = load16(dt, bp + (size_t)g0 * es, ng);
            for (long m = 0; m < M; m++) accb[m] = _mm512_fmadd_ps(bv, _mm512_loadu_ps(sx[m] + g0), accb[m]);
            int nj = chunks - c0 < cpw ? (int)(chunks - c0) : cpw;
            for (int j = 0; j < nj; j++) {
                long c = c0 + j;
                __m512i a, b;
                qb_chunk(B, &s, w, c, &a, &b);
                __m512 se = _mm512_permutexvar_ps(idx[j], sv);
                for (long m = 0; m < M; m++) {
                    const uint8_t *xc = qx[m] + c * QX_CHUNK(XB);
                    acc[m][0] = _mm512_fmadd_ps(qb_sums(B, XB, a, b, xc),
                                                _mm512_mul_ps(se, _mm512_loadu_ps((const float *)(xc + XB * 128))),
                                                acc[m][0]);
                }
            }
        }
        for (long m = 0; m < M; m++) res[m * QB_BLOCK + n - nb] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m][0], accb[m]));
    }
}

#define QB_CASE(B, G, XB)                                                                                         \
    qb_rows(B, G, XB, M, qx, sx, wq, sdt, scales, biases, res, K, nb, ne)

/// Rows n0..<n1 for M <= QB_MAX rows of x prepared one row each (row m's
/// scratch at scratch + m * stride, all with the same bytes per value xb),
/// row m's output at out + m * N (elements of dt).
static void qb_run(int B, int dt, int sdt, const void *scratch, long stride, int xb, const uint32_t *wq,
                   const void *scales, const void *biases, void *out, long M, long N, long K, int group, long n0,
                   long n1) {
    const uint8_t *qx[QB_MAX];
    const float *sx[QB_MAX];
    long sxStride, qxStride;
    qmv_prepared_layout(1, K, group, xb, &sxStride, &qxStride);
    for (long m = 0; m < M; m++) {
        sx[m] = (const float *)((const char *)scratch + m * stride + QX_HEADER);
        qx[m] = (const uint8_t *)(sx[m] + sxStride);
    }
    float res[QB_MAX * QB_BLOCK];
    for (long nb = n0; nb < n1; nb += QB_BLOCK) {
        long ne = nb + QB_BLOCK < n1 ? nb + QB_BLOCK : n1;
        if (B == 4) {
            if (xb == 3) {
                if (group == 32) QB_CASE(4, 32, 3); else if (group == 64) QB_CASE(4, 64, 3); else QB_CASE(4, 128, 3);
            } else {
                if (group == 32) QB_CASE(4, 32, 2); else if (group == 64) QB_CASE(4, 64, 2); else QB_CASE(4, 128, 2);
            }
        } else {
            if (xb == 3) {
                if (group == 32) QB_CASE(8, 32, 3); else if (group == 64) QB_CASE(8, 64, 3); else QB_CASE(8, 128, 3);
            } else {
                if (group == 32) QB_CASE(8, 32, 2); else if (group == 64) QB_CASE(8, 64, 2); else QB_CASE(8, 128, 2);
            }
        }
        for (long m = 0; m < M; m++) {
            const float *r = res + m * QB_BLOCK;
            if (dt == TK_F32) memcpy((float *)out + m * N + nb, r, (size_t)(ne - nb) * 4);
            else
                for (long n = nb; n < ne; n++) tk_store1(dt, out, m * N + n, r[n - nb]);
        }
    }
}
#undef QB_CASE

/// tk_qmv_prepared_batch for 4 or 8 bits (dispatch.c): blocks of QB_MAX rows
/// of x; rows prepared with different bytes per value (tk_set_qmv_x_bytes
/// changed between their preparations) run one at a time.
void tk_qmv_vnni_batch(int bits, int dt, int sdt, const void *scratch, long stride, const uint32_t *wq,
                       const void *scales, const void *biases, void *out, long M, long N, long K, int group, long n0,
                       long n1) {
    if (n1 <= n0 || M <= 0) return;
    const size_t es = (size_t)tk_size(dt);
    for (long m0 = 0; m0 < M; m0 += QB_MAX) {
        long mm = M - m0 < QB_MAX ? M - m0 : QB_MAX;
        const char *sc = (const char *)scratch + m0 * stride;
        char *o = (char *)out + (size_t)(m0 * N) * es;
        const int xb = *(const int32_t *)sc;
        int same = 1;
        for (long m = 1; m < mm; m++) same &= *(const int32_t *)(sc + m * stride) == xb;
        if (same) {
            qb_run(bits, dt, sdt, sc, stride, xb, wq, scales, biases, o, mm, N, K, group, n0, n1);
        } else {
            for (long m = 0; m < mm; m++)
                qb_run(bits, dt, sdt, sc + m * stride, stride, *(const int32_t *)(sc + m * stride), wq, scales,
                       biases, o + (size_t)(m * N) * es, 1, N, K, group, n0, n1);
        }
    }
}

#pragma clang attribute pop
#endif
