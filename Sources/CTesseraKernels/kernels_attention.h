// Attention for a few query rows against one key/value head, without BLAS:
// scores by dot products (register-blocked over query rows, the lanes of VW
// keys summed by a shuffle tree), the Swift GEMM path's scale/causal/mask
// steps, softmax_row (the same code as tk_softmax_rows), then P V
// accumulated in registers. Part of kernels_impl.h (included from there, once
// per instruction set); uses its vector types, helpers and softmax_row.

#define ATT_RB 4   // query rows per register block
#define ATT_KB 64  // keys per block of P V (their V rows stay in L1 across row blocks)
#if VW == 16
#define ATT_CW 4  // vectors of output columns per register block of P V
#define ATT_KU 4  // keys per register block of the scores
#else
#define ATT_CW 2
#define ATT_KU 2
#endif

/// Lane j of the result is the sum of the lanes of t[j], for j < VW.
static inline vf lane_sums(const vf *t) {
#if VW == 16
    vf u[8], x[4], y[2];
    for (int i = 0; i < 8; i++)
        u[i] = __builtin_shufflevector(t[i], t[i + 8], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
               __builtin_shufflevector(t[i], t[i + 8], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    for (int i = 0; i < 4; i++)
        x[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27) +
               __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int i = 0; i < 2; i++)
        y[i] = __builtin_shufflevector(x[i], x[i + 2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29) +
               __builtin_shufflevector(x[i], x[i + 2], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    return __builtin_shufflevector(y[0], y[1], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30) +
           __builtin_shufflevector(y[0], y[1], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
#elif VW == 8
    vf u[4], x[2];
    for (int i = 0; i < 4; i++)
        u[i] = __builtin_shufflevector(t[i], t[i + 4], 0, 1, 2, 3, 8, 9, 10, 11) +
               __builtin_shufflevector(t[i], t[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    for (int i = 0; i < 2; i++)
        x[i] = __builtin_shufflevector(u[i], u[i + 2], 0, 1, 8, 9, 4, 5, 12, 13) +
               __builtin_shufflevector(u[i], u[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    return __builtin_shufflevector(x[0], x[1], 0, 8, 2, 10, 4, 12, 6, 14) +
           __builtin_shufflevector(x[0], x[1], 1, 9, 3, 11, 5, 13, 7, 15);
#elif VW == 4
    vf u0 = __builtin_shufflevector(t[0], t[2], 0, 1, 4, 5) + __builtin_shufflevector(t[0], t[2], 2, 3, 6, 7);
    vf u1 = __builtin_shufflevector(t[1], t[3], 0, 1, 4, 5) + __builtin_shufflevector(t[1], t[3], 2, 3, 6, 7);
    return __builtin_shufflevector(u0, u1, 0, 4, 2, 6) + __builtin_shufflevector(u0, u1, 1, 5, 3, 7);
#else
#error "lane_sums: unsupported VW"
#endif
}

/// A vector of x in every lane (one broadcast; splat() adds to zero first).
static inline vf att_splat(float x) {
    vf v;
    for (int i = 0; i < VW; i++) v[i] = x;
    return v;
}

/// s[r * ld + jj] = q[r] · k_jj over d for r < RB and jj < n (n <= VW keys, key jj at element k0 + jj * ks of k).
/// Keys go ATT_KU at a time (RB x ATT_KU independent sums); a partial block
/// recomputes its last key in the lanes past n, which are not stored.
/// Keys (and values) are float32 at k, or float16 at k (as uint16_t) when `half`: element i at att_ld(k, i, half).
static inline __attribute__((always_inline)) vf att_ld(const void *p, long i, int half) {
    return half ? ld_f16((const uint16_t *)p + i) : ldf((const float *)p + i);
}
static inline __attribute__((always_inline)) float att_ld1(const void *p, long i, int half) {
    return half ? tk_half_to_float(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

static inline __attribute__((always_inline)) void att_scores(int RB, const float *const *q, const void *k, long k0,
                                                             long ks, long n, long d, float *s, long ld, int half) {
    vf t[ATT_RB][VW];
    long dvec = d - d % VW;
    for (long jj = 0; jj < VW; jj += ATT_KU) {
        long kr[ATT_KU];
        for (int u = 0; u < ATT_KU; u++) kr[u] = k0 + (jj + u < n ? jj + u : n - 1) * ks;
        vf acc[ATT_RB][ATT_KU];
        for (int r = 0; r < RB; r++)
            for (int u = 0; u < ATT_KU; u++) acc[r][u] = (vf){0};
        for (long c = 0; c < dvec; c += VW) {
            vf kv[ATT_KU];
            for (int u = 0; u < ATT_KU; u++) kv[u] = att_ld(k, kr[u] + c, half);
            for (int r = 0; r < RB; r++) {
                vf qv = ldf(q[r] + c);
                for (int u = 0; u < ATT_KU; u++) acc[r][u] += qv * kv[u];
            }
        }
        for (int r = 0; r < RB; r++)
            for (int u = 0; u < ATT_KU; u++) t[r][jj + u] = acc[r][u];
    }
    for (int r = 0; r < RB; r++) {
        vf sums = lane_sums(t[r]);
        if (dvec < d) {
            for (long jj = 0; jj < n; jj++) {
                long kr = k0 + jj * ks;
                float tail = 0;
                for (long c = dvec; c < d; c++) tail += q[r][c] * att_ld1(k, kr + c, half);
                sums[jj] += tail;
            }
        }
        if (n == VW) {
            stf(s + r * ld, sums);
        } else {
            float tmp[VW];
            stf(tmp, sums);
            memcpy(s + r * ld, tmp, (size_t)n * 4);
        }
    }
}

/// o[r][c] (+)= sum over j0 <= j < j1 of p[r * ld + j] * v_j[c] for r < RB and c < dv
/// (key j's values at element v0 + j * vs of v); `first` starts from zero instead of o.
static inline __attribute__((always_inline)) void att_values(int RB, const float *p, long ld, const void *v, long v0,
                                                             long vs, long j0, long j1, float *const *o, long dv,
                                                             int first, int half) {
    long c = 0;
    for (; c + ATT_CW * VW <= dv; c += ATT_CW * VW) {
        vf acc[ATT_RB][ATT_CW];
        for (int r = 0; r < RB; r++)
            for (int w = 0; w < ATT_CW; w++) acc[r][w] = first ? (vf){0} : ldf(o[r] + c + w * VW);
        for (long j = j0; j < j1; j++) {
            long vr = v0 + j * vs + c;
            vf x[ATT_CW];
            for (int w = 0; w < ATT_CW; w++) x[w] = att_ld(v, vr + w * VW, half);
            for (int r = 0; r < RB; r++) {
                vf pr = att_splat(p[r * ld + j]);
                for (int w = 0; w < ATT_CW; w++) acc[r][w] += pr * x[w];
            }
        }
        for (int r = 0; r < RB; r++)
            for (int w = 0; w < ATT_CW; w++) stf(o[r] + c + w * VW, acc[r][w]);
    }
    for (; c + VW <= dv; c += VW) {
        vf acc[ATT_RB];
        for (int r = 0; r < RB; r++) acc[r] = first ? (vf){0} : ldf(o[r] + c);
        for (long j = j0; j < j1; j++) {
            vf x = att_ld(v, v0 + j * vs + c, half);
            for (int r = 0; r < RB; r++) acc[r] += att_splat(p[r * ld + j]) * x;
        }
        for (int r = 0; r < RB; r++) stf(o[r] + c, acc[r]);
    }
    for (; c < dv; c++) {
        for (int r = 0; r < RB; r++) {
            float acc = first ? 0 : o[r][c];
            for (long j = j0; j < j1; j++) acc += p[r * ld + j] * att_ld1(v, v0 + j * vs + c, half);
            o[r][c] = acc;
        }
    }
}

#define ATT_BY_ROWS(rb, call, ...) \
    switch (rb) {                  \
    case 4: call(4, __VA_ARGS__); break; \
    case 3: call(3, __VA_ARGS__); break; \
    case 2: call(2, __VA_ARGS__); break; \
    default: call(1, __VA_ARGS__); break; \
    }

static void k_attention(const tk_attention_args *a) {
    // keys j0..<j1 of lk (all of them, or one part of a split over keys)
    long lq = a->lq, lk = a->lk, d = a->d, dv = a->dv, rows = a->heads * lq;
    long j0 = a->stats ? a->key_begin : 0, j1 = a->stats ? a->key_end : lk;
    if (rows <= 0 || dv <= 0) return;
    if (j1 <= j0) {
        if (a->stats) {  // a part without keys: contributes nothing
            for (long r = 0; r < rows; r++) a->stats[2 * r] = -INFINITY, a->stats[2 * r + 1] = 0;
            memset(a->out, 0, (size_t)(rows * dv) * 4);
        } else {  // every key hidden: softmax of an all -inf row is NaN (the fallback's answer)
            for (long e = 0; e < rows * dv; e++) a->out[e] = NAN;
        }
        return;
    }
    // Elements of keys / values (float32, or float16 with k_half): the part starts at element j0 * stride.
    int half = a->k_half != NULL && a->v_half != NULL;
    const void *keys = half ? (const void *)a->k_half : (const void *)a->k;
    const void *values = half ? (const void *)a->v_half : (const void *)a->v;
    long k0 = j0 * a->k_stride, v0 = j0 * a->v_stride;
    long total = lk;
    lk = j1 - j0;  // the keys this call sees, from here on
    float stack[4096];
    float *scores = rows * lk <= 4096 ? stack : malloc((size_t)(rows * lk) * 4);
    const float *q[ATT_RB];
    float *o[ATT_RB];
    // Scores: blocks of VW keys outside, so each block's key rows stay in L1 across the row blocks.
    for (long j = 0; j < lk; j += VW) {
        long n = lk - j < VW ? lk - j : VW;
        for (long r0 = 0; r0 < rows; r0 += ATT_RB) {
            long rb = rows - r0 < ATT_RB ? rows - r0 : ATT_RB;
            for (long r = 0; r < rb; r++) {
                long h = (r0 + r) / lq, i = (r0 + r) % lq;
                q[r] = a->q + h * a->q_head_stride + i * a->q_row_stride;
            }
            if (half) {
                ATT_BY_ROWS(rb, att_scores, q, keys, k0 + j * a->k_stride, a->k_stride, n, d, scores + r0 * lk + j,
                            lk, 1);
            } else {
                ATT_BY_ROWS(rb, att_scores, q, keys, k0 + j * a->k_stride, a->k_stride, n, d, scores + r0 * lk + j,
                            lk, 0);
            }
        }
    }
    // Scale, causal limit and mask per row, as the GEMM path does; then softmax.
    for (long r = 0; r < rows; r++) {
        float *row = scores + r * lk;
        long h = r / lq, i = r % lq;
        long visible = lk;
        if (a->causal) {
            visible = i + 1 + total - lq - j0;
            visible = visible < 0 ? 0 : visible > lk ? lk : visible;
        }
        for (long j = 0; j < visible; j++) row[j] *= a->scale;
        for (long j = visible; j < lk; j++) row[j] = -INFINITY;
        long at = h * a->mask_head_stride + i * a->mask_row_stride + j0 * a->mask_col_stride, ms = a->mask_col_stride;
        if (a->bool_mask) {
            for (long j = 0; j < lk; j++)
                if (!a->bool_mask[at + j * ms]) row[j] = -INFINITY;
        } else if (a->add_mask) {
            for (long j = 0; j < lk; j++) row[j] += a->add_mask[at + j * ms];
        }
        if (!a->stats) {
            softmax_row(row, row, lk);
            continue;
        }
        float m = maxmin_f32(TK_RMAX, row, lk, -INFINITY);
        if (m == -INFINITY) {  // sees no key of this part
            memset(row, 0, (size_t)lk * 4);
            a->stats[2 * r] = -INFINITY, a->stats[2 * r + 1] = 0;
        } else {
            a->stats[2 * r] = m;
            a->stats[2 * r + 1] = exp_row(row, row, lk, m);
        }
    }
    // P V: blocks of keys outside, rows inside, accumulating into the output rows.
    for (long j = 0; j < lk; j += ATT_KB) {
        long jend = lk - j < ATT_KB ? lk : j + ATT_KB;
        for (long r0 = 0; r0 < rows; r0 += ATT_RB) {
            long rb = rows - r0 < ATT_RB ? rows - r0 : ATT_RB;
            for (long r = 0; r < rb; r++) o[r] = a->out + (r0 + r) * dv;
            if (half) {
                ATT_BY_ROWS(rb, att_values, scores + r0 * lk, lk, values, v0, a->v_stride, j, jend, o, dv, j == 0, 1);
            } else {
                ATT_BY_ROWS(rb, att_values, scores + r0 * lk, lk, values, v0, a->v_stride, j, jend, o, dv, j == 0, 0);
            }
        }
    }
    if (scores != stack) free(scores);
}
