// The kernels, written once over GCC/Clang vector types of VW float lanes and
// compiled once per instruction set by kernels_<isa>.c, which defines:
//   VW         float lanes per vector (16 AVX-512, 8 AVX2, 4 baseline)
//   TK_MR      rows of the GEMM micro-kernel (register blocking)
//   TK_F16C    1 when F16C/AVX-512 half conversions may be used
//   TK_TABLE   the name of the tk_table this variant exports
// All data is contiguous unless a stride says otherwise; half types are
// converted to float32 in blocks, computed, and rounded once when stored.
#include <math.h>
#include <stdlib.h>
#include "internal.h"
#if TK_F16C
#include <immintrin.h>
#endif

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));
typedef uint32_t vu __attribute__((vector_size(VW * 4)));
typedef uint16_t vh __attribute__((vector_size(VW * 2)));
typedef uint8_t vb __attribute__((vector_size(VW)));
typedef double vd __attribute__((vector_size(VW * 8)));

#define BLK 512  // elements per conversion block of the half types (a multiple of VW)

static inline vf ldf(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void stf(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf splat(float x) { return (vf){0} + x; }
static inline vf sel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
static inline float hsum(vf v) {
    float s = 0;
    for (int i = 0; i < VW; i++) s += v[i];
    return s;
}
static inline float hmax(vf v) {
    float s = v[0];
    for (int i = 1; i < VW; i++) s = v[i] > s ? v[i] : s;
    return s;
}

// ---- conversions -------------------------------------------------------------

static inline vf ld_bf16(const uint16_t *p) {
    vh h;
    memcpy(&h, p, sizeof h);
    return (vf)(__builtin_convertvector(h, vu) << 16);
}
static inline void st_bf16(uint16_t *p, vf v) {
    vu x = (vu)v;
    vu r = (x + 0x7FFF + ((x >> 16) & 1)) >> 16;
    vi nan = v != v;
    r = (vu)(((vi)r & ~nan) | ((vi)((x >> 16) | 0x40) & nan));
    vh h = __builtin_convertvector(r, vh);
    memcpy(p, &h, sizeof h);
}
static inline vf ld_f16(const uint16_t *p) {
#if TK_F16C && VW == 16
    return (vf)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
#elif TK_F16C && VW == 8
    return (vf)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
#else
    vf v;
    for (int i = 0; i < VW; i++) v[i] = tk_half_to_float(p[i]);
    return v;
#endif
}
static inline void st_f16(uint16_t *p, vf v) {
#if TK_F16C && VW == 16
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph((__m512)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif TK_F16C && VW == 8
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#else
    for (int i = 0; i < VW; i++) p[i] = tk_float_to_half(v[i]);
#endif
}

/// n elements of `dtype` at p as float32 in dst (n need not be a multiple of VW).
static void to_f32(int dtype, const void *p, float *dst, long n) {
    long i = 0;
    if (dtype == TK_F32) {
        memcpy(dst, p, (size_t)n * 4);
        return;
    }
    const uint16_t *h = (const uint16_t *)p;
    if (dtype == TK_BF16) {
        for (; i + VW <= n; i += VW) stf(dst + i, ld_bf16(h + i));
    } else {
        for (; i + VW <= n; i += VW) stf(dst + i, ld_f16(h + i));
    }
    for (; i < n; i++) dst[i] = tk_load1(dtype, p, i);
}

static void from_f32(int dtype, const float *src, void *p, long n) {
    long i = 0;
    if (dtype == TK_F32) {
        if ((const void *)src != p) memmove(p, src, (size_t)n * 4);
        return;
    }
    uint16_t *h = (uint16_t *)p;
    if (dtype == TK_BF16) {
        for (; i + VW <= n; i += VW) st_bf16(h + i, ldf(src + i));
    } else {
        for (; i + VW <= n; i += VW) st_f16(h + i, ldf(src + i));
    }
    for (; i < n; i++) tk_store1(dtype, p, i, src[i]);
}

static void k_convert(int from, const void *x, int to, void *out, long n) {
    if (from == to) {
        if (x != out) memmove(out, x, (size_t)n * tk_size(from));
        return;
    }
    float tmp[BLK];
    for (long i = 0; i < n; i += BLK) {
        long c = n - i < BLK ? n - i : BLK;
        if (from == TK_F32) {
            from_f32(to, (const float *)x + i, (uint16_t *)out + i, c);
        } else if (to == TK_F32) {
            to_f32(from, (const uint16_t *)x + i, (float *)out + i, c);
        } else {
            to_f32(from, (const uint16_t *)x + i, tmp, c);
            from_f32(to, tmp, (uint16_t *)out + i, c);
        }
    }
}

// ---- vector math ---------------------------------------------------------------

static inline vf v_exp(vf x) {
    // Cephes expf: n = round(x log2 e), r = x - n ln2 in [-ln2/2, ln2/2],
    // e^r by a degree-5 polynomial, times 2^n as two factors so that
    // subnormal results round once and overflow gives inf.
    x = sel(x > 88.8f, splat(88.8f), x);
    x = sel(x < -104.0f, splat(-104.0f), x);  // NaN passes both
    vf t = x * 1.44269504088896341f;
    vf n = (t + 12582912.0f) - 12582912.0f;  // round to nearest
    vf r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    vf y = splat(1.9875691500E-4f);
    y = y * r + 1.3981999507E-3f;
    y = y * r + 8.3334519073E-3f;
    y = y * r + 4.1665795894E-2f;
    y = y * r + 1.6666665459E-1f;
    y = y * r + 5.0000001201E-1f;
    y = y * (r * r) + r + 1.0f;
    vi ni = __builtin_convertvector(n, vi);
    vi n1 = ni >> 1, n2 = ni - n1;
    vf p1 = (vf)((n1 + 127) << 23), p2 = (vf)((n2 + 127) << 23);
    y = (y * p1) * p2;
    return sel(x != x, x, y);
}

static inline vf v_log(vf x) {
    // Cephes logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) by a
    // degree-9 polynomial in m - 1.
    vf x0 = x;
    vi sub = (x < 1.17549435e-38f) & (x > 0.0f);
    x = sel(sub, x * 8388608.0f, x);
    vf eadj = sel(sub, splat(-23.0f), splat(0.0f));
    vi bits = (vi)x;
    vf e = __builtin_convertvector(((bits >> 23) & 0xFF) - 126, vf) + eadj;
    vf m = (vf)((bits & 0x007FFFFF) | 0x3F000000);  // [0.5, 1)
    vi small = m < 0.707106781186547524f;
    e = e - sel(small, splat(1.0f), splat(0.0f));
    m = sel(small, m + m, m) - 1.0f;
    vf z = m * m;
    vf y = splat(7.0376836292E-2f);
    y = y * m + -1.1514610310E-1f;
    y = y * m + 1.1676998740E-1f;
    y = y * m + -1.2420140846E-1f;
    y = y * m + 1.4249322787E-1f;
    y = y * m + -1.6668057665E-1f;
    y = y * m + 2.0000714765E-1f;
    y = y * m + -2.4999993993E-1f;
    y = y * m + 3.3333331174E-1f;
    y = y * m * z;
    y = y + e * -2.12194440e-4f;
    y = y - 0.5f * z;
    vf r = m + y;
    r = r + e * 0.693359375f;
    r = sel(x0 == 0.0f, splat(-INFINITY), r);
    r = sel(x0 < 0.0f, splat(NAN), r);
    r = sel(x0 == INFINITY, splat(INFINITY), r);
    return sel(x0 != x0, x0, r);
}

static inline vf v_sigmoid(vf x) { return 1.0f / (1.0f + v_exp(-x)); }

static inline vf v_tanh(vf x) {
    // Cephes tanhf: an odd polynomial below 0.625, else 1 - 2/(e^2|x| + 1).
    vf ax = sel(x < 0.0f, -x, x);
    vf z = x * x;
    vf p = splat(-5.70498872745E-3f);
    p = p * z + 2.06390887954E-2f;
    p = p * z + -5.37397155531E-2f;
    p = p * z + 1.33314422036E-1f;
    p = p * z + -3.33332819422E-1f;
    vf small = p * z * x + x;
    vf big = 1.0f - 2.0f / (v_exp(ax + ax) + 1.0f);
    big = sel(x < 0.0f, -big, big);
    return sel(ax < 0.625f, small, big);
}

// ---- element-wise ------------------------------------------------------------------

/// Outputs at least this large (in floats) are written with non-temporal
/// stores: they bypass the cache, so the write costs no read-for-ownership
/// and does not evict the inputs (what memcpy does for large copies).
#define NT_MIN (1L << 18)

static inline __attribute__((always_inline)) void st_out(int nt, float *p, vf v) {
    if (nt) __builtin_nontemporal_store(v, (vf *)p);
    else stf(p, v);
}

static inline int use_nt(const float *o, long n) {
    return n >= NT_MIN && ((uintptr_t)o % sizeof(vf)) == 0;
}

static inline void nt_fence(int nt) {
    if (nt) __atomic_thread_fence(__ATOMIC_SEQ_CST);  // order the streaming stores before returning
}

static inline vf binop(int op, vf a, vf b) {
    switch (op) {
    case TK_ADD: return a + b;
    case TK_SUB: return a - b;
    case TK_MUL: return a * b;
    case TK_DIV: return a / b;
    case TK_MAX: return sel((a != a) | (b != b), a + b, sel(a > b, a, b));
    default: return sel((a != a) | (b != b), a + b, sel(a < b, a, b));
    }
}

// One loop per op so the switch stays outside; `always_inline` + constant op
// lets the compiler specialise each.
static inline __attribute__((always_inline)) void binary_body(int nt, int op, const float *a, long sa,
                                                              const float *b, long sb, float *o, long n, long *at) {
    long i = 0;
    if (sa && sb) {
        for (; i + VW <= n; i += VW) st_out(nt, o + i, binop(op, ldf(a + i), ldf(b + i)));
    } else if (sa) {
        vf vb = splat(b[0]);
        for (; i + VW <= n; i += VW) st_out(nt, o + i, binop(op, ldf(a + i), vb));
    } else if (sb) {
        vf va = splat(a[0]);
        for (; i + VW <= n; i += VW) st_out(nt, o + i, binop(op, va, ldf(b + i)));
    }
    *at = i;
}

static inline __attribute__((always_inline)) void binary_loop(int op, const float *a, long sa, const float *b,
                                                              long sb, float *o, long n) {
    long i = 0;
    if (sa || sb) {
        int nt = use_nt(o, n);
        if (nt) binary_body(1, op, a, sa, b, sb, o, n, &i);
        else binary_body(0, op, a, sa, b, sb, o, n, &i);
        nt_fence(nt);
    } else {  // both scalars
        float t[VW];
        stf(t, binop(op, splat(a[0]), splat(b[0])));
        for (; i < n; i++) o[i] = t[0];
    }
    if (i < n) {  // the tail through one padded vector
        float ta[VW] = {0}, tb[VW] = {0}, to[VW];
        long c = n - i;
        for (long j = 0; j < c; j++) {
            ta[j] = a[(i + j) * sa];
            tb[j] = b[(i + j) * sb];
        }
        stf(to, binop(op, ldf(ta), ldf(tb)));
        memcpy(o + i, to, (size_t)c * 4);
    }
}

static void binary_f32(int op, const float *a, long sa, const float *b, long sb, float *o, long n) {
    switch (op) {
    case TK_ADD: binary_loop(TK_ADD, a, sa, b, sb, o, n); break;
    case TK_SUB: binary_loop(TK_SUB, a, sa, b, sb, o, n); break;
    case TK_MUL: binary_loop(TK_MUL, a, sa, b, sb, o, n); break;
    case TK_DIV: binary_loop(TK_DIV, a, sa, b, sb, o, n); break;
    case TK_MAX: binary_loop(TK_MAX, a, sa, b, sb, o, n); break;
    default: binary_loop(TK_MIN, a, sa, b, sb, o, n); break;
    }
}

static void k_binary(int op, int dtype, const void *a, long sa, const void *b, long sb, void *out, long n) {
    if (dtype == TK_F32) {
        binary_f32(op, (const float *)a, sa, (const float *)b, sb, (float *)out, n);
        return;
    }
    float ta[BLK], tb[BLK], to[BLK];
    if (!sa) to_f32(dtype, a, ta, 1);
    if (!sb) to_f32(dtype, b, tb, 1);
    for (long i = 0; i < n; i += BLK) {
        long c = n - i < BLK ? n - i : BLK;
        if (sa) to_f32(dtype, (const uint16_t *)a + i, ta, c);
        if (sb) to_f32(dtype, (const uint16_t *)b + i, tb, c);
        binary_f32(op, ta, sa, tb, sb, to, c);
        from_f32(dtype, to, (uint16_t *)out + i, c);
    }
}

static inline vf unop(int op, vf x) {
    switch (op) {
    case TK_NEG: return -x;
    case TK_ABS: return (vf)((vu)x & 0x7FFFFFFFu);
    case TK_SQUARE: return x * x;
    case TK_SQRT: return __builtin_elementwise_sqrt(x);
    case TK_RSQRT: return 1.0f / __builtin_elementwise_sqrt(x);
    case TK_RECIPROCAL: return 1.0f / x;
    case TK_EXP: return v_exp(x);
    case TK_LOG: return v_log(x);
    case TK_SIGMOID: return v_sigmoid(x);
    default: return v_tanh(x);
    }
}

static inline __attribute__((always_inline)) void unary_loop(int op, const float *x, float *o, long n) {
    long i = 0;
    if (use_nt(o, n)) {
        for (; i + VW <= n; i += VW) st_out(1, o + i, unop(op, ldf(x + i)));
        nt_fence(1);
    } else {
        for (; i + VW <= n; i += VW) stf(o + i, unop(op, ldf(x + i)));
    }
    if (i < n) {
        float t[VW] = {0};
        memcpy(t, x + i, (size_t)(n - i) * 4);
        stf(t, unop(op, ldf(t)));
        memcpy(o + i, t, (size_t)(n - i) * 4);
    }
}

static void unary_f32(int op, const float *x, float *o, long n) {
    switch (op) {
    case TK_NEG: unary_loop(TK_NEG, x, o, n); break;
    case TK_ABS: unary_loop(TK_ABS, x, o, n); break;
    case TK_SQUARE: unary_loop(TK_SQUARE, x, o, n); break;
    case TK_SQRT: unary_loop(TK_SQRT, x, o, n); break;
    case TK_RSQRT: unary_loop(TK_RSQRT, x, o, n); break;
    case TK_RECIPROCAL: unary_loop(TK_RECIPROCAL, x, o, n); break;
    case TK_EXP: unary_loop(TK_EXP, x, o, n); break;
    case TK_LOG: unary_loop(TK_LOG, x, o, n); break;
    case TK_SIGMOID: unary_loop(TK_SIGMOID, x, o, n); break;
    default: unary_loop(TK_TANH, x, o, n); break;
    }
}

static void k_unary(int op, int dtype, const void *x, void *out, long n) {
    if (dtype == TK_F32) {
        unary_f32(op, (const float *)x, (float *)out, n);
        return;
    }
    float t[BLK];
    for (long i = 0; i < n; i += BLK) {
        long c = n - i < BLK ? n - i : BLK;
        to_f32(dtype, (const uint16_t *)x + i, t, c);
        unary_f32(op, t, t, c);
        from_f32(dtype, t, (uint16_t *)out + i, c);
    }
}

// ---- reductions ----------------------------------------------------------------------

/// A float32 view of elements [i, i+c) of a row: the row itself or a converted copy.
static inline const float *row_f32(int dtype, const void *p, long i, long c, float *tmp) {
    if (dtype == TK_F32) return (const float *)p + i;
    to_f32(dtype, (const uint16_t *)p + i, tmp, c);
    return tmp;
}

static double sum_f32(const float *x, long n) {
    vd a0 = {0}, a1 = {0};
    long i = 0;
    for (; i + 2 * VW <= n; i += 2 * VW) {
        a0 += __builtin_convertvector(ldf(x + i), vd);
        a1 += __builtin_convertvector(ldf(x + i + VW), vd);
    }
    a0 += a1;
    double s = 0;
    for (int j = 0; j < VW; j++) s += a0[j];
    for (; i < n; i++) s += x[i];
    return s;
}

static float maxmin_f32(int op, const float *x, long n, float init) {
    vf m0 = splat(init), m1 = m0;
    vi nan = {0};
    long i = 0;
    for (; i + 2 * VW <= n; i += 2 * VW) {
        vf a = ldf(x + i), b = ldf(x + i + VW);
        nan |= (a != a) | (b != b);
        if (op == TK_RMAX) {
            m0 = sel(a > m0, a, m0);
            m1 = sel(b > m1, b, m1);
        } else {
            m0 = sel(a < m0, a, m0);
            m1 = sel(b < m1, b, m1);
        }
    }
    float r = init;
    for (int j = 0; j < VW; j++) {
        if (nan[j]) return NAN;
        if (op == TK_RMAX) {
            r = m0[j] > r ? m0[j] : r;
            r = m1[j] > r ? m1[j] : r;
        } else {
            r = m0[j] < r ? m0[j] : r;
            r = m1[j] < r ? m1[j] : r;
        }
    }
    for (; i < n; i++) {
        if (x[i] != x[i]) return NAN;
        r = op == TK_RMAX ? (x[i] > r ? x[i] : r) : (x[i] < r ? x[i] : r);
    }
    return r;
}

static void k_reduce_rows(int op, int dtype, const void *x, long rows, long n, void *out) {
    float tmp[BLK];
    size_t es = (size_t)tk_size(dtype);
    for (long r = 0; r < rows; r++) {
        const char *row = (const char *)x + (size_t)r * (size_t)n * es;
        if (op == TK_SUM) {
            double s = 0;
            for (long i = 0; i < n; i += BLK) {
                long c = n - i < BLK ? n - i : BLK;
                s += sum_f32(row_f32(dtype, row, i, c, tmp), c);
            }
            tk_store1(dtype, out, r, (float)s);
        } else {
            float init = op == TK_RMAX ? -INFINITY : INFINITY, acc = init;
            for (long i = 0; i < n && acc == acc; i += BLK) {
                long c = n - i < BLK ? n - i : BLK;
                float m = maxmin_f32(op, row_f32(dtype, row, i, c, tmp), c, init);
                if (m != m) acc = m;
                else acc = op == TK_RMAX ? (m > acc ? m : acc) : (m < acc ? m : acc);
            }
            tk_store1(dtype, out, r, acc);
        }
    }
}

static void k_reduce_cols(int op, int dtype, const void *x, long rows, long n, long ld, void *out) {
    // Column blocks of BLK: sums in double, max/min in float with a NaN mask.
    float tmp[BLK];
    double dacc[BLK];
    float facc[BLK];
    size_t es = (size_t)tk_size(dtype);
    for (long j = 0; j < n; j += BLK) {
        long c = n - j < BLK ? n - j : BLK;
        if (op == TK_SUM) {
            for (long k = 0; k < c; k++) dacc[k] = 0;
            for (long r = 0; r < rows; r++) {
                const float *p = row_f32(dtype, (const char *)x + (size_t)r * (size_t)ld * es, j, c, tmp);
                long k = 0;
                for (; k + VW <= c; k += VW) {
                    vd d;
                    memcpy(&d, dacc + k, sizeof d);
                    d += __builtin_convertvector(ldf(p + k), vd);
                    memcpy(dacc + k, &d, sizeof d);
                }
                for (; k < c; k++) dacc[k] += p[k];
            }
            for (long k = 0; k < c; k++) tk_store1(dtype, out, j + k, (float)dacc[k]);
        } else {
            float init = op == TK_RMAX ? -INFINITY : INFINITY;
            for (long k = 0; k < c; k++) facc[k] = init;
            for (long r = 0; r < rows; r++) {
                const float *p = row_f32(dtype, (const char *)x + (size_t)r * (size_t)ld * es, j, c, tmp);
                long k = 0;
                for (; k + VW <= c; k += VW) {
                    vf a = ldf(facc + k), v = ldf(p + k);
                    // NaN sticks: once acc is NaN it stays (comparisons with NaN are false).
                    vi take = (op == TK_RMAX ? v > a : v < a) | (v != v);
                    stf(facc + k, sel(take & (a == a), v, a));
                }
                for (; k < c; k++) {
                    float a = facc[k], v = p[k];
                    if (a == a && (v != v || (op == TK_RMAX ? v > a : v < a))) facc[k] = v;
                }
            }
            for (long k = 0; k < c; k++) tk_store1(dtype, out, j + k, facc[k]);
        }
    }
}

#include "kernels_rows.h"
#include "kernels_gemm.h"
#include "kernels_quantized.h"
#include "kernels_attention.h"
#include "kernels_flash.h"

const tk_table TK_TABLE = {
    k_binary, k_unary, k_convert, k_reduce_rows, k_reduce_cols, k_softmax_rows, k_rmsnorm_rows,
    k_layernorm_rows, k_gemm, k_gemv, k_qmv, k_dequantize_rows, k_attention,
    k_attention_flash_keys, k_attention_flash,
};
