// Quantized kernels (MLX affine): qmv for decode, dequantized rows for prefill GEMM.
// Part of kernels_impl.h (included from there, once per instruction set);
// uses its vector types and helpers.

// ---- quantized (MLX affine) ----------------------------------------------------------------
// Per group, sum_k x[k] (s q[k] + b) = s (q . x) + b sum(x): the integers q
// are converted to float and multiplied into x, sum(x) per group is computed
// once per call; every weight byte is read once for all rows of x. For
// 4 bits, each 16-byte chunk (32 values)
// splits into the low nibbles (even k) and high nibbles (odd k), so x is
// permuted once into [even 16 | odd 16] per 32 values to match.

typedef uint8_t v16b __attribute__((vector_size(16)));

static inline void unpack16(v16b bytes, vf *out) {
    // 16 bytes -> 16 floats in 16/VW vectors
#if VW == 16
    out[0] = __builtin_convertvector(bytes, vf);
#elif VW == 8
    out[0] = __builtin_convertvector(__builtin_shufflevector(bytes, bytes, 0, 1, 2, 3, 4, 5, 6, 7), vf);
    out[1] = __builtin_convertvector(__builtin_shufflevector(bytes, bytes, 8, 9, 10, 11, 12, 13, 14, 15), vf);
#else
    out[0] = __builtin_convertvector(__builtin_shufflevector(bytes, bytes, 0, 1, 2, 3), vf);
    out[1] = __builtin_convertvector(__builtin_shufflevector(bytes, bytes, 4, 5, 6, 7), vf);
    out[2] = __builtin_convertvector(__builtin_shufflevector(bytes, bytes, 8, 9, 10, 11), vf);
    out[3] = __builtin_convertvector(__builtin_shufflevector(bytes, bytes, 12, 13, 14, 15), vf);
#endif
}

#define P16 (16 / VW)

/// The 32 integers of one 32-value chunk as float vectors in x's permuted order.
static inline __attribute__((always_inline)) void unpack32(int bits, const uint8_t *w, vf *q) {
#if VW == 16 && TK_F16C
    if (bits == 4) {
        // AVX-512: zero-extend the 16 bytes to dwords and turn each nibble into
        // its float with a 16-entry table lookup (vpermps reads the low 4 bits
        // of each index), which keeps the conversion off the FMA port.
        const __m512 lut = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)w));
        q[0] = (vf)_mm512_permutexvar_ps(v, lut);
        q[1] = (vf)_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), lut);
        return;
    }
#endif
    if (bits == 4) {
        v16b raw;
        memcpy(&raw, w, 16);
        unpack16(raw & 0x0F, q);
        unpack16(raw >> 4, q + P16);
    } else {
        v16b r0, r1;
        memcpy(&r0, w, 16);
        memcpy(&r1, w + 16, 16);
        unpack16(r0, q);
        unpack16(r1, q + P16);
    }
}

/// One group's dot products sum_k x[m, k] q[k] for MM rows of x, into acc[m]
/// (the group's scale and bias are applied by the caller).
static inline __attribute__((always_inline)) void qmv_group(int MM, int bits, int group, const float *xp, long K,
                                                            const uint8_t *w, long k0, vf *acc) {
#pragma clang loop unroll(full)
    for (int m = 0; m < MM; m++) acc[m] = (vf){0};
#pragma clang loop unroll(full)
    for (long c = 0; c < group; c += 32) {
        long k = k0 + c;
        vf q[2 * P16];
        unpack32(bits, w + k * bits / 8, q);
#pragma clang loop unroll(full)
        for (int m = 0; m < MM; m++) {
            const float *xk = xp + m * K + k;
#pragma clang loop unroll(full)
            for (int p = 0; p < 2 * P16; p++) acc[m] += q[p] * ldf(xk + p * VW);
        }
    }
}

/// Rows n0..<n1 of the output for MM rows of x (a compile-time constant after
/// inlining, so the accumulators live in registers), per group as
/// s (q . x) + b sum(x): `sx` holds sum(x) per group for each row of x
/// (stride `groups`). `sf`/`bf` are scratch for one row's scales and biases
/// in float32. Writes acc_out[m * ldo + n - n0].
static inline __attribute__((always_inline)) void qmv_block(int MM, int bits, int group, const float *xp,
                                                            const float *sx, const uint32_t *wq, int dt,
                                                            const void *scales, const void *biases, float *sf,
                                                            float *bf, float *acc_out, long ldo, long K, long n0,
                                                            long n1) {
    long words = K * bits / 32, groups = K / group;
    size_t es = (size_t)tk_size(dt);
    for (long n = n0; n < n1; n++) {
        const uint8_t *w = (const uint8_t *)(wq + n * words);
        if (n + 4 < n1) {
            // Ask for the row 4 on now: the hardware prefetcher stops at 4 KiB pages
            // and ramps up slowly on short rows (measured: ~30% on SmolLM2's shapes).
            const char *wa = (const char *)(w + 4 * words * 4);
            for (long i = 0; i < words * 4; i += 64) __builtin_prefetch(wa + i, 0, 3);
            const char *sa = (const char *)scales + (size_t)((n + 4) * groups) * es;
            const char *ba = (const char *)biases + (size_t)((n + 4) * groups) * es;
            for (long i = 0; i < (long)(groups * es); i += 64) {
                __builtin_prefetch(sa + i, 0, 3);
                __builtin_prefetch(ba + i, 0, 3);
            }
        }
        const float *s = sf, *b = bf;
        if (dt == TK_F32) {
            s = (const float *)scales + n * groups;
            b = (const float *)biases + n * groups;
        } else {
            to_f32(dt, (const char *)scales + (size_t)(n * groups) * es, sf, groups);
            to_f32(dt, (const char *)biases + (size_t)(n * groups) * es, bf, groups);
        }
        vf tot0[8], tot1[8], g0[8], g1[8];
#pragma clang loop unroll(full)
        for (int m = 0; m < MM; m++) tot0[m] = tot1[m] = (vf){0};
        long g = 0;
        for (; g + 2 <= groups; g += 2) {  // two groups at once: two independent chains
            qmv_group(MM, bits, group, xp, K, w, g * group, g0);
            qmv_group(MM, bits, group, xp, K, w, (g + 1) * group, g1);
            vf s0 = splat(s[g]), s1 = splat(s[g + 1]);
#pragma clang loop unroll(full)
            for (int m = 0; m < MM; m++) {
                tot0[m] += g0[m] * s0;
                tot1[m] += g1[m] * s1;
            }
        }
        if (g < groups) {
            qmv_group(MM, bits, group, xp, K, w, g * group, g0);
            vf s0 = splat(s[g]);
#pragma clang loop unroll(full)
            for (int m = 0; m < MM; m++) tot0[m] += g0[m] * s0;
        }
        for (int m = 0; m < MM; m++) {
            // The bias term: sum over groups of b * sum(x).
            vf bt = (vf){0};
            const float *sxm = sx + m * groups;
            long i = 0;
            for (; i + VW <= groups; i += VW) bt += ldf(b + i) * ldf(sxm + i);
            float r = hsum(tot0[m] + tot1[m] + bt);
            for (; i < groups; i++) r += b[i] * sxm[i];
            acc_out[m * ldo + n - n0] = r;
        }
    }
}

static void k_qmv(int dt, int sdt, const void *x, const uint32_t *wq, const void *scales, const void *biases, void *out,
                  long M, long N, long K, int group, int bits, long n0, long n1) {
    if (n1 <= n0 || M <= 0) return;
    long groups = K / group, cols = n1 - n0;
    float *xp = malloc((size_t)(M * K) * 4), *sx = malloc((size_t)(M * groups) * 4);
    float *res = malloc((size_t)(M * cols) * 4), *sf = malloc((size_t)groups * 8), *bf = sf + groups;
    float row[32];
    for (long m = 0; m < M; m++) {
        to_f32(dt, (const char *)x + (size_t)(m * K) * (size_t)tk_size(dt), xp + m * K, K);
        for (long g = 0; g < groups; g++) {
            double t = 0;  // sum(x) per group, before the permutation below
            for (long k = g * group; k < (g + 1) * group; k++) t += xp[m * K + k];
            sx[m * groups + g] = (float)t;
        }
        if (bits == 4) {
            for (long k = 0; k < K; k += 32) {
                memcpy(row, xp + m * K + k, sizeof row);
                for (int j = 0; j < 16; j++) {
                    xp[m * K + k + j] = row[2 * j];
                    xp[m * K + k + 16 + j] = row[2 * j + 1];
                }
            }
        }
    }
    for (long m0 = 0; m0 < M; m0 += 8) {
        long mm = M - m0 < 8 ? M - m0 : 8;
        const float *xb = xp + m0 * K, *sb = sx + m0 * groups;
        float *rb = res + m0 * cols;
#define QMV_G(MMV, B, G) qmv_block(MMV, B, G, xb, sb, wq, sdt, scales, biases, sf, bf, rb, cols, K, n0, n1)
#define QMV_B(MMV, B) (group == 32 ? QMV_G(MMV, B, 32) : group == 64 ? QMV_G(MMV, B, 64) : QMV_G(MMV, B, 128))
#define QMV_CASE(MMV)                                                                                   \
    case MMV:                                                                                           \
        if (bits == 4) QMV_B(MMV, 4);                                                                   \
        else QMV_B(MMV, 8);                                                                             \
        break;
        switch (mm) {
            QMV_CASE(1)
            QMV_CASE(2)
            QMV_CASE(3)
            QMV_CASE(4)
            QMV_CASE(5)
            QMV_CASE(6)
            QMV_CASE(7)
            QMV_CASE(8)
        }
#undef QMV_CASE
#undef QMV_B
#undef QMV_G
    }
    for (long m = 0; m < M; m++)
        from_f32(dt, res + m * cols, (char *)out + (size_t)(m * N + n0) * (size_t)tk_size(dt), cols);
    free(sf);
    free(res);
    free(sx);
    free(xp);
}

static void k_dequantize_rows(int dt, const uint32_t *wq, const void *scales, const void *biases, float *dst, long K,
                              int group, int bits, long n0, long n1) {
    long words = K * bits / 32, groups = K / group;
    for (long n = n0; n < n1; n++) {
        const uint8_t *w = (const uint8_t *)(wq + n * words);
        float *d = dst + (n - n0) * K;
        for (long g = 0; g < groups; g++) {
            float s = tk_load1(dt, scales, n * groups + g), b = tk_load1(dt, biases, n * groups + g);
            vf vs = splat(s), vb0 = splat(b);
            for (long c = 0; c < group; c += 32) {
                long k = g * group + c;
                vf q[4 * P16];
                if (bits == 4) {
                    v16b raw;
                    memcpy(&raw, w + k / 2, 16);
                    unpack16(raw & 0x0F, q);
                    unpack16(raw >> 4, q + P16);
                    float ev[16], od[16];
                    for (int p = 0; p < P16; p++) {
                        stf(ev + p * VW, q[p] * vs + vb0);
                        stf(od + p * VW, q[P16 + p] * vs + vb0);
                    }
                    for (int j = 0; j < 16; j++) {
                        d[k + 2 * j] = ev[j];
                        d[k + 2 * j + 1] = od[j];
                    }
                } else {
                    v16b r0, r1;
                    memcpy(&r0, w + k, 16);
                    memcpy(&r1, w + k + 16, 16);
                    unpack16(r0, q);
                    unpack16(r1, q + P16);
                    for (int p = 0; p < 2 * P16; p++) stf(d + k + p * VW, q[p] * vs + vb0);
                }
            }
        }
    }
}
