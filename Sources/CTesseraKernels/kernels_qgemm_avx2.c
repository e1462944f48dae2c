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
// The kernels sit together in the `tessera` executable (Sources/tessera/hot-code.order).
#if defined(__clang__) && defined(__ELF__)
#pragma clang section text = ".text.tessera_kernels"
#endif
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

/// tk_qgemm4_prepare on AVX2: as the AVX-512 variant (kernels_qgemm_vnni.c)
/// with 4 vectors of 8 per block, vcvtps2dq rounding to nearest even as
/// nearbyintf, the integers clamped, then narrowed by saturating packs (exact:
/// every value fits a signed byte) and put back in order by one permute.
int tk_qg_prepare_avx2(const float *x, long M, long K, int group, int XB, void *prepared) {
    const long row = (long)XB * K + (K / 32) * 4 + (K / group) * 4;
    const float range = XB == 2 ? 127.0f * 257.0f : 127.0f;
    const __m256i hiR = _mm256_set1_epi32((int)range), loR = _mm256_set1_epi32(-(int)range);
    const __m256i c128 = _mm256_set1_epi32(128), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256 fmax = _mm256_set1_ps(3.4028235e38f), sign = _mm256_set1_ps(-0.0f);
    for (long m = 0; m < M; m++) {
        const float *xr = x + m * K;
        int8_t *planes = (int8_t *)prepared + m * row;
        float *d = (float *)(planes + (long)XB * K);
        for (long b = 0; b < K / 32; b++) {
            const long k = b * 32;
            __m256 v[4], mx = _mm256_setzero_ps();
            int ok = 0xFF;
            for (int i = 0; i < 4; i++) {
                v[i] = _mm256_loadu_ps(xr + k + 8 * i);
                __m256 a = _mm256_andnot_ps(sign, v[i]);
                ok &= _mm256_movemask_ps(_mm256_cmp_ps(a, fmax, _CMP_LE_OQ));
                mx = _mm256_max_ps(mx, a);
            }
            if (ok != 0xFF) return 0;  // inf or NaN
            __m128 h4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
            h4 = _mm_max_ps(h4, _mm_movehl_ps(h4, h4));
            h4 = _mm_max_ss(h4, _mm_shuffle_ps(h4, h4, 1));
            float amax = _mm_cvtss_f32(h4);
            if (amax > 0 && amax < 0x1p-96f) return 0;
            float scale = amax / range, inv = amax > 0 ? range / amax : 0;
            d[b] = scale;
            const __m256 vinv = _mm256_set1_ps(inv);
            __m256i lo[4], hi[4];
            for (int i = 0; i < 4; i++) {
                __m256i X = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vinv));
                X = _mm256_min_epi32(_mm256_max_epi32(X, loR), hiR);
                if (XB == 1) {
                    lo[i] = X;
                } else {
                    hi[i] = _mm256_srai_epi32(_mm256_add_epi32(X, c128), 8);
                    lo[i] = _mm256_sub_epi32(X, _mm256_slli_epi32(hi[i], 8));
                }
            }
            __m256i bl = _mm256_packs_epi16(_mm256_packs_epi32(lo[0], lo[1]), _mm256_packs_epi32(lo[2], lo[3]));
            _mm256_storeu_si256((__m256i *)(planes + k), _mm256_permutevar8x32_epi32(bl, order));
            if (XB == 2) {
                __m256i bh = _mm256_packs_epi16(_mm256_packs_epi32(hi[0], hi[1]), _mm256_packs_epi32(hi[2], hi[3]));
                _mm256_storeu_si256((__m256i *)(planes + K + k), _mm256_permutevar8x32_epi32(bh, order));
            }
        }
    }
    tk_qg_sums(x, M, K, group, XB, prepared);
    return 1;
}

#pragma clang attribute pop
#endif
