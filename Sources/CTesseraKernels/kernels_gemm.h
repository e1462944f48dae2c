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
