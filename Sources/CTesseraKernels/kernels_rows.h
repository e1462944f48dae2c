// Row kernels of the fused ops: softmax, rmsNorm and layerNorm over contiguous rows.
// Part of kernels_impl.h (included from there, once per instruction set);
// uses its vector types and helpers.

// ---- rows of fused ops ----------------------------------------------------------------

/// Runs `body(xrow, orow)` over float32 rows: the rows themselves for float32,
/// converted copies (written back after) for the half types.
#define FOR_ROWS_F32(dtype, x, out, rows, n, ...)                                            \
    do {                                                                                     \
        size_t es_ = (size_t)tk_size(dtype);                                                 \
        float stack_[2048];                                                                  \
        float *buf_ = (dtype == TK_F32) ? NULL : (n <= 2048 ? stack_ : malloc((size_t)n * 4)); \
        for (long r_ = 0; r_ < rows; r_++) {                                                 \
            const void *xin_ = (const char *)x + (size_t)r_ * (size_t)n * es_;               \
            void *oout_ = (char *)out + (size_t)r_ * (size_t)n * es_;                        \
            const float *xrow;                                                               \
            float *orow;                                                                     \
            if (dtype == TK_F32) {                                                           \
                xrow = (const float *)xin_;                                                  \
                orow = (float *)oout_;                                                       \
            } else {                                                                         \
                to_f32(dtype, xin_, buf_, n);                                                \
                xrow = buf_;                                                                 \
                orow = buf_;                                                                 \
            }                                                                                \
            __VA_ARGS__;                                                                     \
            if (dtype != TK_F32) from_f32(dtype, buf_, oout_, n);                            \
        }                                                                                    \
        if (buf_ && buf_ != stack_) free(buf_);                                              \
    } while (0)

/// o = e^(x - m) over n values; returns their sum.
static float exp_row(const float *x, float *o, long n, float m) {
    vf vm = splat(m), s0 = {0}, s1 = {0};
    long i = 0;
    for (; i + 2 * VW <= n; i += 2 * VW) {
        vf e0 = v_exp(ldf(x + i) - vm), e1 = v_exp(ldf(x + i + VW) - vm);
        stf(o + i, e0);
        stf(o + i + VW, e1);
        s0 += e0;
        s1 += e1;
    }
    for (; i < n; i += VW) {
        float t[VW];
        long c = n - i < VW ? n - i : VW;
        for (long j = 0; j < VW; j++) t[j] = j < c ? x[i + j] - m : -INFINITY;
        vf e = v_exp(ldf(t));
        s0 += e;
        stf(t, e);
        memcpy(o + i, t, (size_t)c * 4);
    }
    return hsum(s0 + s1);
}

static void softmax_row(const float *x, float *o, long n) {
    float m = maxmin_f32(TK_RMAX, x, n, -INFINITY);
    vf inv = splat(1.0f / exp_row(x, o, n, m));
    long i;
    for (i = 0; i + VW <= n; i += VW) stf(o + i, ldf(o + i) * inv);
    for (; i < n; i++) o[i] *= inv[0];
}

static void k_softmax_rows(int dtype, const void *x, void *out, long rows, long n) {
    if (n == 0) return;
    FOR_ROWS_F32(dtype, x, out, rows, n, softmax_row(xrow, orow, n));
}

static float sumsq_f32(const float *x, long n) {
    vf a0 = {0}, a1 = {0};
    long i = 0;
    for (; i + 2 * VW <= n; i += 2 * VW) {
        vf u = ldf(x + i), v = ldf(x + i + VW);
        a0 += u * u;
        a1 += v * v;
    }
    float s = hsum(a0 + a1);
    for (; i < n; i++) s += x[i] * x[i];
    return s;
}

/// o = (x - shift) * scale * w + b, w/b float32 rows or NULL.
static void affine_row(const float *x, float shift, float scale, const float *w, const float *b, float *o, long n) {
    vf vs = splat(shift), vc = splat(scale);
    long i = 0;
    for (; i + VW <= n; i += VW) {
        vf y = (ldf(x + i) - vs) * vc;
        if (w) y = y * ldf(w + i);
        if (b) y = y + ldf(b + i);
        stf(o + i, y);
    }
    for (; i < n; i++) {
        float y = (x[i] - shift) * scale;
        if (w) y = y * w[i];
        if (b) y = y + b[i];
        o[i] = y;
    }
}

/// A float32 copy of an optional parameter row (NULL stays NULL).
static float *param_f32(int dtype, const void *p, long n) {
    if (!p) return NULL;
    float *f = malloc((size_t)n * 4);
    to_f32(dtype, p, f, n);
    return f;
}

static void k_rmsnorm_rows(int dtype, const void *x, const void *w, float eps, void *out, long rows, long n) {
    if (n == 0) return;
    float *wf = param_f32(dtype, w, n);
    FOR_ROWS_F32(dtype, x, out, rows, n, {
        float scale = 1.0f / sqrtf(sumsq_f32(xrow, n) / (float)n + eps);
        affine_row(xrow, 0.0f, scale, wf, NULL, orow, n);
    });
    free(wf);
}

static void k_layernorm_rows(int dtype, const void *x, const void *w, const void *b, float eps, void *out, long rows,
                             long n) {
    if (n == 0) return;
    float *wf = param_f32(dtype, w, n), *bf = param_f32(dtype, b, n);
    FOR_ROWS_F32(dtype, x, out, rows, n, {
        float mean = (float)(sum_f32(xrow, n) / (double)n);
        vf vm = splat(mean), a0 = {0};
        long i = 0;
        for (; i + VW <= n; i += VW) {
            vf d = ldf(xrow + i) - vm;
            a0 += d * d;
        }
        float var = hsum(a0);
        for (; i < n; i++) var += (xrow[i] - mean) * (xrow[i] - mean);
        var /= (float)n;
        affine_row(xrow, mean, 1.0f / sqrtf(var + eps), wf, bf, orow, n);
    });
    free(wf);
    free(bf);
}
