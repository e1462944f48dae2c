// The 4-bit prefill product on AVX2 integer dot products, for x86 CPUs
// without AVX-512 VNNI (and for AVX-512 ones with it turned off): the same
// prepared x (tk_qgemm4_prepare: XB = 1 or 2 signed-byte planes per block of
// 32 values, a float scale per block, float sums per group) and the same
// packed panels of 32 weight columns (tk_qg_panel) as kernels_qgemm_vnni.c,
// with vpmaddubsw in place of vpdpbusd: unsigned weight bytes (0..15) times
// signed x bytes, adjacent pairs summed to 16 bits (at most 2 * 15 * 128 =
// 3840 in magnitude, no saturation), the 8 steps of a block added in 16 bits
// (at most 8 * 3840 = 30720 < 32768: exact), then vpmaddwd by ones gives each
// 32-bit lane (one output column) the block's whole integer dot product,
// the very integer vpdpbusd would give. From there as the VNNI kernel:
// converted to float, times the block's scale d and the column's group
// scale s, plus the group's bias times the sum of x, so both kernels give
// the same floats. Register blocks: 2 rows x 16 columns (AVX2's 16 vector
// registers), 2 blocks per panel.
#include <stdint.h>
#include <string.h>
#include "internal.h"
#include "qgemm.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

/// RB (1..2) rows of prepared x against columns 16 h..<16 h + 16 of a packed panel.
static inline __attribute__((always_inline)) void qa_tile(int RB, int XB, const int8_t *const *xr, const uint8_t *panel,
                                                          const float *ps, const float *pb, long K, int group,
                                                          float *const *out, int cols, int h) {
    const long blocks = K / 32, bpg = group / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[2][2];
    for (int r = 0; r < 2; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (long b = 0; b < blocks; b++) {
        __m256i lo[2][2], hi[2][2];
        for (int r = 0; r < 2; r++) lo[r][0] = lo[r][1] = hi[r][0] = hi[r][1] = _mm256_setzero_si256();
        const uint8_t *w = panel + b * 8 * 128 + h * 64;
        for (int s = 0; s < 8; s++) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + s * 128));
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + s * 128 + 32));
            long k = b * 32 + s * 4;
            for (int r = 0; r < RB; r++) {
                int32_t v;
                memcpy(&v, xr[r] + k, 4);
                __m256i xb = _mm256_set1_epi32(v);
                lo[r][0] = _mm256_add_epi16(lo[r][0], _mm256_maddubs_epi16(w0, xb));
                lo[r][1] = _mm256_add_epi16(lo[r][1], _mm256_maddubs_epi16(w1, xb));
                if (XB == 2) {
                    memcpy(&v, xr[r] + K + k, 4);
                    xb = _mm256_set1_epi32(v);
                    hi[r][0] = _mm256_add_epi16(hi[r][0], _mm256_maddubs_epi16(w0, xb));
                    hi[r][1] = _mm256_add_epi16(hi[r][1], _mm256_maddubs_epi16(w1, xb));
                }
            }
        }
        long g = b / bpg;
        __m256 s0 = _mm256_loadu_ps(ps + g * 32 + h * 16), s1 = _mm256_loadu_ps(ps + g * 32 + h * 16 + 8);
        for (int r = 0; r < RB; r++) {
            const float *d = (const float *)(xr[r] + (long)XB * K);
            __m256 db = _mm256_set1_ps(d[b]);
            __m256 t0 = _mm256_cvtepi32_ps(_mm256_madd_epi16(lo[r][0], ones));
            __m256 t1 = _mm256_cvtepi32_ps(_mm256_madd_epi16(lo[r][1], ones));
            if (XB == 2) {
                const __m256 c256 = _mm256_set1_ps(256.0f);
                t0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(hi[r][0], ones)), c256, t0);
                t1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(hi[r][1], ones)), c256, t1);
            }
            acc[r][0] = _mm256_fmadd_ps(_mm256_mul_ps(t0, db), s0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(_mm256_mul_ps(t1, db), s1, acc[r][1]);
        }
        if (b % bpg == bpg - 1) {  // the group's biases times its sums of x
            __m256 b0 = _mm256_loadu_ps(pb + g * 32 + h * 16), b1 = _mm256_loadu_ps(pb + g * 32 + h * 16 + 8);
            for (int r = 0; r < RB; r++) {
                const float *sums = (const float *)(xr[r] + (long)XB * K) + blocks;
                __m256 sx = _mm256_set1_ps(sums[g]);
                acc[r][0] = _mm256_fmadd_ps(b0, sx, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(b1, sx, acc[r][1]);
            }
        }
    }
    int n = cols - h * 16;  // columns of this half that exist
    if (n <= 0) return;
    for (int r = 0; r < RB; r++) {
        if (n >= 16) {
            _mm256_storeu_ps(out[r] + h * 16, acc[r][0]);
            _mm256_storeu_ps(out[r] + h * 16 + 8, acc[r][1]);
        } else {
            float tmp[16];
            _mm256_storeu_ps(tmp, acc[r][0]);
            _mm256_storeu_ps(tmp + 8, acc[r][1]);
            memcpy(out[r] + h * 16, tmp, (size_t)n * 4);
        }
    }
}

/// out [M, N] float32 (row stride N), columns n0..<n1 (n0 a multiple of 32),
/// from x prepared by tk_qgemm4_prepare; `scratch` of tk_qgemm4_panel_bytes(K, group).
void tk_qgemm4_avx2(int sdt, const void *prepared, const uint32_t *wq, const void *scales, const void *biases,
                    float *out, long M, long N, long K, int group, int XB, long n0, long n1, void *scratch) {
    const long row = (long)XB * K + (K / 32) * 4 + (K / group) * 4, groups = K / group;
    const uint8_t *panel = (const uint8_t *)scratch;
    const float *ps = (const float *)(panel + K * 32), *pb = ps + groups * 32;
    for (long p = n0; p < n1; p += 32) {
        int cols = n1 - p < 32 ? (int)(n1 - p) : 32;
        tk_qg_panel(sdt, wq, scales, biases, N, K, group, p, scratch);
        for (int h = 0; h < 2 && h * 16 < cols; h++) {
            for (long m = 0; m < M; m += 2) {
                int rb = M - m < 2 ? 1 : 2;
                const int8_t *xr[2];
                float *o[2];
                for (int r = 0; r < 2; r++) {
                    long mm = m + (r < rb ? r : 0);
                    xr[r] = (const int8_t *)prepared + mm * row;
                    o[r] = out + mm * N + p;
                }
                if (XB == 2) {
                    if (rb == 2) qa_tile(2, 2, xr, panel, ps, pb, K, group, o, cols, h);
                    else qa_tile(1, 2, xr, panel, ps, pb, K, group, o, cols, h);
                } else {
                    if (rb == 2) qa_tile(2, 1, xr, panel, ps, pb, K, group, o, cols, h);
                    else qa_tile(1, 1, xr, panel, ps, pb, K, group, o, cols, h);
                }
            }
        }
    }
}

#pragma clang attribute pop
#endif
