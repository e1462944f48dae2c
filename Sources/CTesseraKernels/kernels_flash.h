// Flash-style attention for many query rows (prefill of a long prompt):
// the keys go by tiles of FA_BC; for a block of FA_BR query rows each tile's
// scores S = q k^T (FA_BR x FA_BC floats, in L1/L2) are scaled and masked,
// folded into a running row maximum m and sum l (online softmax: earlier
// output rows are rescaled by e^(m_old - m_new)), and P V is accumulated into
// the output rows, which are divided by l at the end. No rows x keys score
// matrix is ever materialised. The keys come transposed (tk_attention_flash_keys:
// kt [d][lkp], lkp = lk rounded up to FA_BC, zero past lk), so the scores'
// micro-kernel broadcasts a query value and loads VW keys at a time (RB x
// FA_KV independent sums). Causal rows stop at the last tile any row of the
// block can see. Part of kernels_impl.h (included from there, once per
// instruction set); uses kernels_attention.h's att_values and the row helpers.

#define FA_BR 64  // query rows per block
#define FA_BC 64  // keys per tile (a multiple of FA_KV * VW on every variant)
#if VW == 16
#define FA_KV 4  // vectors of keys per register block of the scores
#else
#define FA_KV 2
#endif

/// kt[c * lkp + j] = k_j[c] for j < lk, zero for lk <= j < lkp (lkp = lk rounded up to FA_BC).
static void k_attention_flash_keys(const tk_attention_args *a, float *kt) {
    long lk = a->lk, d = a->d, lkp = (lk + FA_BC - 1) / FA_BC * FA_BC;
    for (long j0 = 0; j0 < lkp; j0 += 16) {  // 16 keys at a time: their rows stay in L1 across c
        long n = lk - j0 < 16 ? (lk - j0 > 0 ? lk - j0 : 0) : 16;
        for (long c = 0; c < d; c++) {
            float *o = kt + c * lkp + j0;
            long j = 0;
            for (; j < n; j++) o[j] = a->k[(j0 + j) * a->k_stride + c];
            for (; j < 16; j++) o[j] = 0;
        }
    }
}

/// s[r * FA_BC + j] = q_r . kt[:, j] for r < RB and j < jn (jn a multiple of FA_KV * VW).
static inline __attribute__((always_inline)) void fa_scores(int RB, const float *const *q, const float *kt, long lkp,
                                                            long d, long jn, float *s) {
    for (long j = 0; j < jn; j += FA_KV * VW) {
        vf acc[ATT_RB][FA_KV];
        for (int r = 0; r < RB; r++)
            for (int u = 0; u < FA_KV; u++) acc[r][u] = (vf){0};
        const float *col = kt + j;
        for (long c = 0; c < d; c++, col += lkp) {
            vf kv[FA_KV];
            for (int u = 0; u < FA_KV; u++) kv[u] = ldf(col + u * VW);
            for (int r = 0; r < RB; r++) {
                vf qv = att_splat(q[r][c]);
                for (int u = 0; u < FA_KV; u++) acc[r][u] += qv * kv[u];
            }
        }
        for (int r = 0; r < RB; r++)
            for (int u = 0; u < FA_KV; u++) stf(s + r * FA_BC + j + u * VW, acc[r][u]);
    }
}

/// Output rows r0..<r1 (row r = h * lq + i: query head h of the call's
/// heads, position i) over all keys, from the transposed keys kt.
static void k_attention_flash(const tk_attention_args *a, const float *kt, long r0, long r1) {
    long lq = a->lq, lk = a->lk, d = a->d, dv = a->dv, lkp = (lk + FA_BC - 1) / FA_BC * FA_BC;
    float S[FA_BR * FA_BC], m[FA_BR], l[FA_BR];
    const float *q[ATT_RB];
    float *o[ATT_RB];
    for (long b0 = r0; b0 < r1; b0 += FA_BR) {
        long nr = r1 - b0 < FA_BR ? r1 - b0 : FA_BR;
        // keys any row of the block may see
        long kmax = 0;
        for (long r = 0; r < nr; r++) {
            long i = (b0 + r) % lq, vis = lk;
            if (a->causal) vis = i + 1 + lk - lq, vis = vis < 0 ? 0 : vis > lk ? lk : vis;
            kmax = vis > kmax ? vis : kmax;
            m[r] = -INFINITY, l[r] = 0;
        }
        for (long j0 = 0; j0 < kmax; j0 += FA_BC) {
            long nc = kmax - j0 < FA_BC ? kmax - j0 : FA_BC;
            long jn = (nc + FA_KV * VW - 1) / (FA_KV * VW) * (FA_KV * VW);
            for (long rr = 0; rr < nr; rr += ATT_RB) {
                long rb = nr - rr < ATT_RB ? nr - rr : ATT_RB;
                for (long r = 0; r < rb; r++) {
                    long row = b0 + rr + r, h = row / lq, i = row % lq;
                    q[r] = a->q + h * a->q_head_stride + i * a->q_row_stride;
                }
                ATT_BY_ROWS(rb, fa_scores, q, kt + j0, lkp, d, jn, S + rr * FA_BC);
            }
            // scale, causal limit and mask as tk_attention; the running maximum and sum
            for (long r = 0; r < nr; r++) {
                float *row = S + r * FA_BC;
                long h = (b0 + r) / lq, i = (b0 + r) % lq, visible = nc;
                if (a->causal) {
                    visible = i + 1 + lk - lq - j0;
                    visible = visible < 0 ? 0 : visible > nc ? nc : visible;
                }
                for (long j = 0; j < visible; j++) row[j] *= a->scale;
                for (long j = visible; j < nc; j++) row[j] = -INFINITY;
                long at = h * a->mask_head_stride + i * a->mask_row_stride + j0 * a->mask_col_stride;
                long ms = a->mask_col_stride;
                if (a->bool_mask) {
                    for (long j = 0; j < nc; j++)
                        if (!a->bool_mask[at + j * ms]) row[j] = -INFINITY;
                } else if (a->add_mask) {
                    for (long j = 0; j < nc; j++) row[j] += a->add_mask[at + j * ms];
                }
                float mx = maxmin_f32(TK_RMAX, row, nc, -INFINITY);
                float mnew = mx > m[r] ? mx : m[r];
                if (mnew == -INFINITY) {  // no key seen yet: the row's weights stay zero
                    memset(row, 0, (size_t)nc * 4);
                    continue;
                }
                float alpha = expf(m[r] - mnew);  // 0 while m is -inf
                l[r] = l[r] * alpha + exp_row(row, row, nc, mnew);
                m[r] = mnew;
                if (j0 > 0 && alpha != 1.0f) {
                    float *out = a->out + (b0 + r) * dv;
                    vf va = splat(alpha);
                    long c = 0;
                    for (; c + VW <= dv; c += VW) stf(out + c, ldf(out + c) * va);
                    for (; c < dv; c++) out[c] *= alpha;
                }
            }
            for (long rr = 0; rr < nr; rr += ATT_RB) {
                long rb = nr - rr < ATT_RB ? nr - rr : ATT_RB;
                for (long r = 0; r < rb; r++) o[r] = a->out + (b0 + rr + r) * dv;
                ATT_BY_ROWS(rb, att_values, S + rr * FA_BC, FA_BC, a->v, j0 * a->v_stride, a->v_stride, 0, nc, o, dv,
                            j0 == 0, 0);
            }
        }
        for (long r = 0; r < nr; r++) {
            float *out = a->out + (b0 + r) * dv;
            if (kmax == 0 || l[r] == 0) {  // sees no key: NaN, as the softmax of an all -inf row
                for (long c = 0; c < dv; c++) out[c] = NAN;
                continue;
            }
            vf inv = splat(1.0f / l[r]);
            long c = 0;
            for (; c + VW <= dv; c += VW) stf(out + c, ldf(out + c) * inv);
            for (; c < dv; c++) out[c] *= inv[0];
        }
    }
}
