// GEMM: packed tiles and a register-blocked micro-kernel, any strides, f32/f16/bf16 in, f32 accumulation.
// Part of kernels_impl.h (included from there, once per instruction set);
// uses its vector types and helpers.

// ---- GEMM ---------------------------------------------------------------------------------
// Goto-style blocking: B is packed in KC x NC blocks of NR-column panels, A in
// MC x KC blocks of MR-row panels (converting to float32 and absorbing any
// strides), and a TK_MR x (2 VW) register tile accumulates over KC.

#define NR (2 * VW)
#define KC 256
#define MC (TK_MR * 16)
#define NC 1024

static void pack_a(int dt, const void *A, long rsa, long csa, long mc, long kc, float *Ap) {
    for (long ir = 0; ir < mc; ir += TK_MR) {
        long mr = mc - ir < TK_MR ? mc - ir : TK_MR;
        for (long k = 0; k < kc; k++) {
            for (long r = 0; r < mr; r++) Ap[k * TK_MR + r] = tk_load1(dt, A, (ir + r) * rsa + k * csa);
            for (long r = mr; r < TK_MR; r++) Ap[k * TK_MR + r] = 0;
        }
        Ap += kc * TK_MR;
    }
}

static void pack_b(int dt, const void *B, long rsb, long csb, long kc, long nc, float *Bp) {
    for (long jr = 0; jr < nc; jr += NR) {
        long nr = nc - jr < NR ? nc - jr : NR;
        for (long k = 0; k < kc; k++) {
            float *d = Bp + k * NR;
            if (dt == TK_F32 && csb == 1 && nr == NR) {
                memcpy(d, (const float *)B + k * rsb + jr, NR * 4);
            } else {
                for (long c = 0; c < nr; c++) d[c] = tk_load1(dt, B, k * rsb + (jr + c) * csb);
                for (long c = nr; c < NR; c++) d[c] = 0;
            }
        }
        Bp += kc * NR;
    }
}

static void micro_kernel(long kc, const float *Ap, const float *Bp, float *C, long ldc, float beta, long mr, long nr) {
    vf acc[TK_MR][2];
#pragma clang loop unroll(full)
    for (int r = 0; r < TK_MR; r++) acc[r][0] = acc[r][1] = (vf){0};
    for (long k = 0; k < kc; k++) {
        vf b0 = ldf(Bp), b1 = ldf(Bp + VW);
#pragma clang loop unroll(full)
        for (int r = 0; r < TK_MR; r++) {
            vf a = splat(Ap[r]);
            acc[r][0] += a * b0;
            acc[r][1] += a * b1;
        }
        Ap += TK_MR;
        Bp += NR;
    }
    if (mr == TK_MR && nr == NR) {
        for (int r = 0; r < TK_MR; r++) {
            float *c = C + r * ldc;
            if (beta == 0) {
                stf(c, acc[r][0]);
                stf(c + VW, acc[r][1]);
            } else {
                stf(c, acc[r][0] + beta * ldf(c));
                stf(c + VW, acc[r][1] + beta * ldf(c + VW));
            }
        }
    } else {
        float t[TK_MR][NR];
        for (int r = 0; r < TK_MR; r++) {
            stf(t[r], acc[r][0]);
            stf(t[r] + VW, acc[r][1]);
        }
        for (long r = 0; r < mr; r++)
            for (long c = 0; c < nr; c++) C[r * ldc + c] = t[r][c] + (beta == 0 ? 0 : beta * C[r * ldc + c]);
    }
}

static void k_gemm(long M, long N, long K, int dta, const void *A, long rsa, long csa, int dtb, const void *B, long rsb,
                   long csb, float beta, float *C, long ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        return;
    }
    size_t esa = (size_t)tk_size(dta), esb = (size_t)tk_size(dtb);
    float *Bp = aligned_alloc(64, (size_t)KC * (NC + NR) * 4);
    float *Ap = aligned_alloc(64, (size_t)KC * (MC + TK_MR) * 4);
    for (long jc = 0; jc < N; jc += NC) {
        long nc = N - jc < NC ? N - jc : NC;
        for (long pc = 0; pc < K; pc += KC) {
            long kc = K - pc < KC ? K - pc : KC;
            float bk = pc == 0 ? beta : 1.0f;
            pack_b(dtb, (const char *)B + (size_t)(pc * rsb + jc * csb) * esb, rsb, csb, kc, nc, Bp);
            for (long ic = 0; ic < M; ic += MC) {
                long mc = M - ic < MC ? M - ic : MC;
                pack_a(dta, (const char *)A + (size_t)(ic * rsa + pc * csa) * esa, rsa, csa, mc, kc, Ap);
                for (long jr = 0; jr < nc; jr += NR) {
                    long nr = nc - jr < NR ? nc - jr : NR;
                    for (long ir = 0; ir < mc; ir += TK_MR) {
                        long mr = mc - ir < TK_MR ? mc - ir : TK_MR;
                        micro_kernel(kc, Ap + ir * kc, Bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, bk, mr, nr);
                    }
                }
            }
        }
    }
    free(Ap);
    free(Bp);
}

// ---- matrix-vector ---------------------------------------------------------------------------
// One row of x (M = 1) or one column (N = 1) makes a product bandwidth-bound:
// packing would read the matrix twice, so these stream it once in its own
// dtype (half types widened in registers) against a float32 x.
//   gemv_rows: y[r] = sum_k W[r ldw + k] x[k], rows of W contiguous (dot products);
//   gemv_cols: y[j] = sum_k x[k] W[k ldw + j], rows of W contiguous along j (axpy).

static inline __attribute__((always_inline)) vf ld_as(const int dt, const void *p, long i) {
    if (dt == TK_F32) return ldf((const float *)p + i);
    if (dt == TK_BF16) return ld_bf16((const uint16_t *)p + i);
    return ld_f16((const uint16_t *)p + i);
}

// bfloat16 rows read as 32-bit pairs: one load of VW pairs gives the even
// elements (the low halves, shifted up) and the odd ones (the high halves,
// masked), one integer op each, against x split into its even and odd
// elements by two shuffles that the rows of a pass share. Half the loads and
// widening work of converting VW elements at a time; the sum runs in another
// order (evens and odds apart), each product exact in float32.
#if VW == 16
#define TK_EVENS 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define TK_ODDS 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31
#elif VW == 8
#define TK_EVENS 0, 2, 4, 6, 8, 10, 12, 14
#define TK_ODDS 1, 3, 5, 7, 9, 11, 13, 15
#else
#define TK_EVENS 0, 2, 4, 6
#define TK_ODDS 1, 3, 5, 7
#endif

static inline vu ld_pairs(const uint16_t *p) {
    vu u;
    memcpy(&u, p, sizeof u);
    return u;
}

// R rows (1 or 4) of bfloat16 from row r on: y[r + i] = sum_k W[r + i, k] x[k].
static inline __attribute__((always_inline)) void gemv_bf16_rows(const int R, const uint16_t *W, long ldw,
                                                                 const float *x, long K, float *y) {
    vf acc[4][2] = {{{0}}};
    long k = 0;
    for (; k + 2 * VW <= K; k += 2 * VW) {
        vf xa = ldf(x + k), xb = ldf(x + k + VW);
        vf xe = __builtin_shufflevector(xa, xb, TK_EVENS), xo = __builtin_shufflevector(xa, xb, TK_ODDS);
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) {
            vu u = ld_pairs(W + i * ldw + k);
            acc[i][0] += (vf)(u << 16) * xe;
            acc[i][1] += (vf)(u & 0xFFFF0000u) * xo;
        }
    }
    if (k + VW <= K) {
        vf x0 = ldf(x + k);
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) acc[i][0] += ld_bf16(W + i * ldw + k) * x0;
        k += VW;
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < R; i++) {
        float s = hsum(acc[i][0] + acc[i][1]);
        for (long t = k; t < K; t++) s += tk_load1(TK_BF16, W + i * ldw, t) * x[t];
        y[i] = s;
    }
}

// Four rows per pass share each load of x; two accumulators per row hide the FMA latency.
static inline __attribute__((always_inline)) void gemv_rows_body(const int dt, const void *W, long ldw, const float *x,
                                                                 long K, float *y, long rows) {
    if (dt == TK_BF16) {
        const uint16_t *w = (const uint16_t *)W;
        long r = 0;
        for (; r + 4 <= rows; r += 4) gemv_bf16_rows(4, w + r * ldw, ldw, x, K, y + r);
        for (; r < rows; r++) gemv_bf16_rows(1, w + r * ldw, ldw, x, K, y + r);
        return;
    }
    size_t es = (size_t)tk_size(dt);
    long r = 0;
    for (; r + 4 <= rows; r += 4) {
        const char *w0 = (const char *)W + (size_t)r * ldw * es;
        const void *w[4] = {w0, w0 + ldw * es, w0 + 2 * ldw * es, w0 + 3 * ldw * es};
        vf acc[4][2] = {{{0}}};
        long k = 0;
        for (; k + 2 * VW <= K; k += 2 * VW) {
            vf x0 = ldf(x + k), x1 = ldf(x + k + VW);
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) {
                acc[i][0] += ld_as(dt, w[i], k) * x0;
                acc[i][1] += ld_as(dt, w[i], k + VW) * x1;
            }
        }
        for (; k + VW <= K; k += VW) {
            vf x0 = ldf(x + k);
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) acc[i][0] += ld_as(dt, w[i], k) * x0;
        }
        for (int i = 0; i < 4; i++) {
            float s = hsum(acc[i][0] + acc[i][1]);
            for (long t = k; t < K; t++) s += tk_load1(dt, w[i], t) * x[t];
            y[r + i] = s;
        }
    }
    for (; r < rows; r++) {
        const void *w = (const char *)W + (size_t)r * ldw * es;
        vf acc = {0};
        long k = 0;
        for (; k + VW <= K; k += VW) acc += ld_as(dt, w, k) * ldf(x + k);
        float s = hsum(acc);
        for (; k < K; k++) s += tk_load1(dt, w, k) * x[k];
        y[r] = s;
    }
}

// Four rows of W per pass update y (which stays in L1/L2) once, streaming
// each row's slice contiguously.
static inline __attribute__((always_inline)) void gemv_cols_body(const int dt, const void *W, long ldw, const float *x,
                                                                 long K, float *y, long cols) {
    size_t es = (size_t)tk_size(dt);
    for (long j = 0; j < cols; j++) y[j] = 0;
    long k = 0;
    for (; k + 4 <= K; k += 4) {
        const char *w0 = (const char *)W + (size_t)k * ldw * es;
        const void *w[4] = {w0, w0 + ldw * es, w0 + 2 * ldw * es, w0 + 3 * ldw * es};
        vf s0 = splat(x[k]), s1 = splat(x[k + 1]), s2 = splat(x[k + 2]), s3 = splat(x[k + 3]);
        long j = 0;
        for (; j + VW <= cols; j += VW) {
            vf acc = ldf(y + j);
            acc += ld_as(dt, w[0], j) * s0 + ld_as(dt, w[1], j) * s1;
            acc += ld_as(dt, w[2], j) * s2 + ld_as(dt, w[3], j) * s3;
            stf(y + j, acc);
        }
        for (; j < cols; j++)
            y[j] += tk_load1(dt, w[0], j) * x[k] + tk_load1(dt, w[1], j) * x[k + 1] + tk_load1(dt, w[2], j) * x[k + 2] +
                    tk_load1(dt, w[3], j) * x[k + 3];
    }
    for (; k < K; k++) {
        const void *w = (const char *)W + (size_t)k * ldw * es;
        vf s = splat(x[k]);
        long j = 0;
        for (; j + VW <= cols; j += VW) stf(y + j, ldf(y + j) + ld_as(dt, w, j) * s);
        for (; j < cols; j++) y[j] += tk_load1(dt, w, j) * x[k];
    }
}

static void k_gemv(int form, int dt, const void *W, long ldw, const float *x, long K, float *y, long n) {
    if (form == 0) {
        switch (dt) {
        case TK_F32: gemv_rows_body(TK_F32, W, ldw, x, K, y, n); break;
        case TK_BF16: gemv_rows_body(TK_BF16, W, ldw, x, K, y, n); break;
        default: gemv_rows_body(TK_F16, W, ldw, x, K, y, n); break;
        }
    } else {
        switch (dt) {
        case TK_F32: gemv_cols_body(TK_F32, W, ldw, x, K, y, n); break;
        case TK_BF16: gemv_cols_body(TK_BF16, W, ldw, x, K, y, n); break;
        default: gemv_cols_body(TK_F16, W, ldw, x, K, y, n); break;
        }
    }
}
