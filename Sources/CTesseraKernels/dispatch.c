// Run-time choice of the kernel variant (cpuid + xgetbv on x86_64; the
// baseline elsewhere), the public entry points, and OpenBLAS loaded with dlopen.
// The kernels sit together in the `tessera` executable (Sources/tessera/hot-code.order).
#if defined(__clang__) && defined(__ELF__)
#pragma clang section text = ".text.tessera_kernels"
#endif
#define _GNU_SOURCE
#include <math.h>
#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#if defined(__linux__) && defined(__GLIBC__)
#include <malloc.h>
#endif
#include "internal.h"

#if defined(__x86_64__)
#include <cpuid.h>

static int detect_isa(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return TK_ISA_BASELINE;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(osxsave && avx && fma && f16c)) return TK_ISA_BASELINE;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    unsigned long long xcr0 = ((unsigned long long)hi << 32) | lo;
    if ((xcr0 & 6) != 6) return TK_ISA_BASELINE;  // OS saves XMM and YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return TK_ISA_BASELINE;
    int avx2 = (b >> 5) & 1, f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    if (!avx2) return TK_ISA_BASELINE;
    if (f && dq && bw && vl && (xcr0 & 0xE6) == 0xE6) return TK_ISA_AVX512;  // and opmask/ZMM state
    return TK_ISA_AVX2;
}
#else
static int detect_isa(void) { return TK_ISA_BASELINE; }
#endif

int tk_cpu_count(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int tk_limit_malloc_arenas(int n) {
#if defined(__linux__) && defined(__GLIBC__) && defined(M_ARENA_MAX)
    return n > 0 && mallopt(M_ARENA_MAX, n) == 1;
#else
    (void)n;
    return 0;
#endif
}

int tk_set_malloc_mmap_threshold(long bytes) {
#if defined(__linux__) && defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
    return bytes > 0 && bytes <= (32L << 20) && mallopt(M_MMAP_THRESHOLD, (int)bytes) == 1;
#else
    (void)bytes;
    return 0;
#endif
}

int tk_malloc_trim(void) {
#if defined(__linux__) && defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

int tk_malloc_stats(tk_malloc_stats_t *out) {
    memset(out, 0, sizeof *out);
#if defined(__linux__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream(&text, &size);
    if (!stream) return 0;
    int ok = malloc_info(0, stream) == 0;
    fclose(stream);
    if (ok && text) {
        // One <heap nr="..."> element per arena, the main one included.
        for (const char *p = text; (p = strstr(p, "<heap nr=")) != NULL; p += 9) out->arenas++;
    }
    free(text);
    if (!ok) return 0;
    struct mallinfo2 info = mallinfo2();
    out->heap_bytes = (long long)info.arena;
    out->in_use_bytes = (long long)info.uordblks;
    out->free_bytes = (long long)info.fordblks;
    out->mmapped_bytes = (long long)info.hblkhd;
    return 1;
#else
    return 0;
#endif
}

static int supported = -1;
static int current = -1;

static const tk_table *table_for(int isa) {
#if defined(__x86_64__)
    if (isa == TK_ISA_AVX512) return &tk_table_avx512;
    if (isa == TK_ISA_AVX2) return &tk_table_avx2;
#endif
    (void)isa;
    return &tk_table_baseline;
}

int tk_isa_supported(void) {
    int s = __atomic_load_n(&supported, __ATOMIC_ACQUIRE);
    if (s < 0) {
        s = detect_isa();
        __atomic_store_n(&supported, s, __ATOMIC_RELEASE);
    }
    return s;
}

int tk_isa(void) {
    int c = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
    if (c < 0) {
        c = tk_isa_supported();
        // TESSERA_ISA=baseline|avx2|avx512 lowers the choice (benchmarks, debugging).
        const char *env = getenv("TESSERA_ISA");
        if (env && strcmp(env, "baseline") == 0) c = TK_ISA_BASELINE;
        else if (env && strcmp(env, "avx2") == 0 && c > TK_ISA_AVX2) c = TK_ISA_AVX2;
        __atomic_store_n(&current, c, __ATOMIC_RELEASE);
    }
    return c;
}

int tk_set_isa(int isa) {
    int s = tk_isa_supported();
    if (isa > s) isa = s;
    if (isa < 0) isa = 0;
    __atomic_store_n(&current, isa, __ATOMIC_RELEASE);
    return isa;
}

#define T (table_for(tk_isa()))

void tk_binary(int op, int dtype, const void *a, long sa, const void *b, long sb, void *out, long n) {
    T->binary(op, dtype, a, sa, b, sb, out, n);
}
void tk_unary(int op, int dtype, const void *x, void *out, long n) { T->unary(op, dtype, x, out, n); }
void tk_convert(int from, const void *x, int to, void *out, long n) { T->convert(from, x, to, out, n); }
void tk_reduce_rows(int op, int dtype, const void *x, long rows, long n, void *out) {
    T->reduce_rows(op, dtype, x, rows, n, out);
}
void tk_reduce_cols(int op, int dtype, const void *x, long rows, long n, long ld, void *out) {
    T->reduce_cols(op, dtype, x, rows, n, ld, out);
}
void tk_softmax_rows(int dtype, const void *x, void *out, long rows, long n) {
    T->softmax_rows(dtype, x, out, rows, n);
}
void tk_rmsnorm_rows(int dtype, const void *x, const void *w, float eps, void *out, long rows, long n) {
    T->rmsnorm_rows(dtype, x, w, eps, out, rows, n);
}
void tk_layernorm_rows(int dtype, const void *x, const void *w, const void *b, float eps, void *out, long rows,
                       long n) {
    T->layernorm_rows(dtype, x, w, b, eps, out, rows, n);
}
void tk_gemm(long M, long N, long K, int dta, const void *A, long rsa, long csa, int dtb, const void *B, long rsb,
             long csb, float beta, float *C, long ldc) {
    T->gemm(M, N, K, dta, A, rsa, csa, dtb, B, rsb, csb, beta, C, ldc);
}
void tk_gemv(int form, int dtype, const void *W, long ldw, const float *x, long K, float *y, long n) {
    T->gemv(form, dtype, W, ldw, x, K, y, n);
}
void tk_attention(const tk_attention_args *args) { T->attention(args); }
long tk_attention_flash_keys_stride(long lk) { return (lk + 63) / 64 * 64; }
void tk_attention_flash_keys(const tk_attention_args *args, float *kt) { T->attention_flash_keys(args, kt); }
void tk_attention_flash(const tk_attention_args *args, const float *kt, long r0, long r1) {
    T->attention_flash(args, kt, r0, r1);
}
void tk_attention_merge(long rows, long dv, long parts, const float *outs, const float *stats, float *out) {
    for (long r = 0; r < rows; r++) {
        float m = -INFINITY, l = 0;
        for (long p = 0; p < parts; p++) m = fmaxf(m, stats[(p * rows + r) * 2]);
        float *o = out + r * dv;
        if (m == -INFINITY) {  // no part saw a key: NaN, as tk_attention
            for (long c = 0; c < dv; c++) o[c] = NAN;
            continue;
        }
        for (long c = 0; c < dv; c++) o[c] = 0;
        for (long p = 0; p < parts; p++) {
            const float *st = stats + (p * rows + r) * 2;
            if (st[0] == -INFINITY) continue;
            float w = expf(st[0] - m);
            l += w * st[1];
            const float *po = outs + (p * rows + r) * dv;
            for (long c = 0; c < dv; c++) o[c] += w * po[c];
        }
        float inv = 1.0f / l;
        for (long c = 0; c < dv; c++) o[c] *= inv;
    }
}
#if defined(__x86_64__)
int tk_qmv4_vnni(int dt, const void *x, const uint32_t *wq, const void *scales, const void *biases, void *out,
                 long M, long N, long K, int group, long n0, long n1);
int tk_qmv8_vnni(int dt, const void *x, const uint32_t *wq, const void *scales, const void *biases, void *out,
                 long M, long N, long K, int group, long n0, long n1);
long tk_qmv4_vnni_scratch(long M, long K, int group);
int tk_qmv4_vnni_prepare(int dt, const void *x, long M, long K, int group, void *scratch);
void tk_qmv4_vnni_rows(int dt, int sdt, const void *scratch, const uint32_t *wq, const void *scales, const void *biases,
                       void *out, long M, long N, long K, int group, long n0, long n1);
long tk_qmv8_vnni_scratch(long M, long K, int group);
int tk_qmv8_vnni_prepare(int dt, const void *x, long M, long K, int group, void *scratch);
void tk_qmv8_vnni_rows(int dt, int sdt, const void *scratch, const uint32_t *wq, const void *scales, const void *biases,
                       void *out, long M, long N, long K, int group, long n0, long n1);
void tk_qmv_vnni_batch(int bits, int dt, int sdt, const void *scratch, long stride, const uint32_t *wq,
                       const void *scales, const void *biases, void *out, long M, long N, long K, int group, long n0,
                       long n1);

static int detect_vnni(void) {
    unsigned a, b, c, d;
    if (tk_isa_supported() < TK_ISA_AVX512 || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c >> 11) & 1;  // AVX512_VNNI
}
#else
static int detect_vnni(void) { return 0; }
#endif

static int vnni_on = -1;

int tk_set_qmv_vnni(int enable) {
    int v = enable && detect_vnni() && !getenv("TESSERA_NO_VNNI");
    __atomic_store_n(&vnni_on, v, __ATOMIC_RELEASE);
    return v;
}

int tk_qmv_vnni(void) {
    int v = __atomic_load_n(&vnni_on, __ATOMIC_ACQUIRE);
    return v >= 0 ? v : tk_set_qmv_vnni(1);
}

static int qmv_x_bytes = 3;

int tk_set_qmv_x_bytes(int bytes) {
    int b = bytes == 2 ? 2 : 3;
    __atomic_store_n(&qmv_x_bytes, b, __ATOMIC_RELAXED);
    return b;
}

int tk_qmv_x_bytes(void) { return __atomic_load_n(&qmv_x_bytes, __ATOMIC_RELAXED); }

void tk_qmv(int dtype, int sdtype, const void *x, const uint32_t *wq, const void *scales, const void *biases, void *out, long M,
            long N, long K, int group, int bits, long n0, long n1) {
#if defined(__x86_64__)
    if ((bits == 4 || bits == 8) && sdtype == dtype && tk_isa() == TK_ISA_AVX512 && tk_qmv_vnni() &&
        (bits == 4 ? tk_qmv4_vnni : tk_qmv8_vnni)(dtype, x, wq, scales, biases, out, M, N, K, group, n0, n1))
        return;
#endif
    T->qmv(dtype, sdtype, x, wq, scales, biases, out, M, N, K, group, bits, n0, n1);
}
long tk_qmv_scratch(int dtype, long M, long K, int group, int bits) {
#if defined(__x86_64__)
    if ((bits == 4 || bits == 8) && tk_isa() == TK_ISA_AVX512 && tk_qmv_vnni())
        return bits == 4 ? tk_qmv4_vnni_scratch(M, K, group) : tk_qmv8_vnni_scratch(M, K, group);
#endif
    (void)dtype, (void)M, (void)K, (void)group, (void)bits;
    return 0;
}

int tk_qmv_prepare(int dtype, const void *x, long M, long K, int group, int bits, void *scratch) {
#if defined(__x86_64__)
    if ((bits == 4 || bits == 8) && tk_isa() == TK_ISA_AVX512 && tk_qmv_vnni())
        return (bits == 4 ? tk_qmv4_vnni_prepare : tk_qmv8_vnni_prepare)(dtype, x, M, K, group, scratch);
#endif
    (void)dtype, (void)x, (void)M, (void)K, (void)group, (void)bits, (void)scratch;
    return 0;
}

void tk_qmv_prepared(int dtype, int sdtype, const void *scratch, const uint32_t *wq, const void *scales, const void *biases,
                     void *out, long M, long N, long K, int group, int bits, long n0, long n1) {
#if defined(__x86_64__)
    if (bits == 4 || bits == 8) {
        (bits == 4 ? tk_qmv4_vnni_rows : tk_qmv8_vnni_rows)(dtype, sdtype, scratch, wq, scales, biases, out, M, N, K,
                                                             group, n0, n1);
        return;
    }
#endif
    (void)dtype, (void)sdtype, (void)scratch, (void)wq, (void)scales, (void)biases, (void)out, (void)M, (void)N, (void)K, (void)group,
        (void)bits, (void)n0, (void)n1;
}
void tk_qmv_prepared_batch(int dtype, int sdtype, const void *scratch, long stride, const uint32_t *wq,
                           const void *scales, const void *biases, void *out, long M, long N, long K, int group,
                           int bits, long n0, long n1) {
#if defined(__x86_64__)
    if (bits == 4 || bits == 8) {
        tk_qmv_vnni_batch(bits, dtype, sdtype, scratch, stride, wq, scales, biases, out, M, N, K, group, n0, n1);
        return;
    }
#endif
    const size_t es = (size_t)tk_size(dtype);
    for (long m = 0; m < M; m++)
        tk_qmv_prepared(dtype, sdtype, (const char *)scratch + m * stride, wq, scales, biases,
                        (char *)out + (size_t)(m * N) * es, 1, N, K, group, bits, n0, n1);
}
void tk_dequantize_rows(int dtype, const uint32_t *wq, const void *scales, const void *biases, float *dst, long K,
                        int group, int bits, long n0, long n1) {
    T->dequantize_rows(dtype, wq, scales, biases, dst, K, group, bits, n0, n1);
}

// ---- OpenBLAS -------------------------------------------------------------------

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                         int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
static sgemm_fn blas_sgemm;
static sgemv_fn blas_sgemv;
static set_threads_fn blas_set_threads;
static get_threads_fn blas_get_threads;
static int blas_state = -1;  // -1 not tried, 0 absent, 1 loaded

// TESSERA_DISABLE_BLAS=1 (or the older TESSERA_NO_BLAS=1) leaves OpenBLAS unloaded:
// the native kernels then do everything, as on a machine without it.
int tk_blas_disabled(void) {
    const char *names[] = {"TESSERA_DISABLE_BLAS", "TESSERA_NO_BLAS"};
    for (unsigned i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        if (v && *v && strcmp(v, "0") != 0) return 1;
    }
    return 0;
}

int tk_blas_available(void) {
    int s = __atomic_load_n(&blas_state, __ATOMIC_ACQUIRE);
    if (s >= 0) return s;
    if (tk_blas_disabled()) {
        __atomic_store_n(&blas_state, 0, __ATOMIC_RELEASE);
        return 0;
    }
    const char *names[] = {"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"};
    void *h = NULL;
    for (unsigned i = 0; i < sizeof names / sizeof names[0] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    sgemm_fn f = h ? (sgemm_fn)dlsym(h, "cblas_sgemm") : NULL;
    sgemv_fn g = h ? (sgemv_fn)dlsym(h, "cblas_sgemv") : NULL;
    if (!g) f = NULL;
    if (f) {
        blas_sgemv = g;
        blas_set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
        blas_get_threads = (get_threads_fn)dlsym(h, "openblas_get_num_threads");
        blas_sgemm = f;
    }
    s = f ? 1 : 0;
    __atomic_store_n(&blas_state, s, __ATOMIC_RELEASE);
    return s;
}

void tk_blas_sgemm(int trans_a, int trans_b, long M, long N, long K, float alpha, const float *A, long lda,
                   const float *B, long ldb, float beta, float *C, long ldc) {
    // CBLAS enums: RowMajor 101, NoTrans 111, Trans 112.
    blas_sgemm(101, trans_a ? 112 : 111, trans_b ? 112 : 111, (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb,
               beta, C, (int)ldc);
}

void tk_blas_sgemv(int trans, long M, long N, float alpha, const float *A, long lda, const float *x, long incx,
                   float beta, float *y, long incy) {
    blas_sgemv(101, trans ? 112 : 111, (int)M, (int)N, alpha, A, (int)lda, x, (int)incx, beta, y, (int)incy);
}

void tk_blas_set_threads(int n) {
    if (tk_blas_available() && blas_set_threads) blas_set_threads(n);
}

// ---- BLAS or native: measured on the CPU at hand -----------------------------------
//
// A BLAS build can be slower than the native kernels (Debian's OpenBLAS on an
// AVX-512 CPU runs Haswell kernels when OPENBLAS_CORETYPE says so, or when its
// dispatch does not know the CPU): once per process, the first float32 product
// times both on one thread (OpenBLAS set to one thread for the measurement) at a
// representative shape, and the faster is used from then on. Threads scale both
// the same way, so one thread is a fair and quiet comparison.

static int blas_choice[2] = {-1, -1};   // [gemm, gemv]: -1 not decided, 0 native, 1 BLAS
static int blas_forced[2] = {-1, -1};   // tk_blas_force: -1 measure, 0 native, 1 BLAS
static double blas_times[4];            // native gemm, BLAS gemm, native gemv, BLAS gemv (seconds)

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Best of `reps` calls of one path.
static double best_time(int which, int blas, float *a, float *b, float *c, long n, long k, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        if (which == 0) {
            if (blas) tk_blas_sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
            else tk_gemm(n, n, n, TK_F32, a, n, 1, TK_F32, b, n, 1, 0, c, n);
        } else {
            if (blas) tk_blas_sgemv(0, n, k, 1, a, k, b, 1, 0, c, 1);
            else tk_gemv(0, TK_F32, a, k, b, k, c, n);
        }
        double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    return best;
}

static void blas_measure(void) {
    const long n = 256, rows = 2048, k = 1024;  // gemm 256^3; gemv 2048x1024 (8 MB: past L2)
    // Only the gemv matrix (a) is large; x and y (b, c) need n^2 for the GEMM, k or
    // rows for the gemv: 8.5 MB in all, not three 8 MB buffers (this runs inside
    // a model's first prefill, so it adds to the process's peak memory).
    long count = rows * k > n * n ? rows * k : n * n;
    long small = n * n > rows ? n * n : rows;
    if (k > small) small = k;
    float *a = malloc(sizeof(float) * count), *b = malloc(sizeof(float) * small), *c = malloc(sizeof(float) * small);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        blas_choice[0] = blas_choice[1] = 0;
        return;
    }
    unsigned x = 12345;
    for (long i = 0; i < count; i++) {
        x = x * 1664525u + 1013904223u;
        a[i] = (float)(x >> 8) / 16777216.0f - 0.5f;
    }
    for (long i = 0; i < small; i++) b[i] = a[(i * 7) % count];
    int threads = blas_get_threads ? blas_get_threads() : 0;
    tk_blas_set_threads(1);
    for (int which = 0; which < 2; which++) {
        long m = which == 0 ? n : rows;
        int reps = which == 0 ? 4 : 8;
        best_time(which, 0, a, b, c, m, k, 1);  // warm up both
        best_time(which, 1, a, b, c, m, k, 1);
        blas_times[2 * which] = best_time(which, 0, a, b, c, m, k, reps);
        blas_times[2 * which + 1] = best_time(which, 1, a, b, c, m, k, reps);
        // BLAS only when clearly faster (by 15%): the native kernels are the ones the tests
        // pin down, and the gemv shape here sits in L3, where OpenBLAS's edge (~10% on an
        // AVX-512 Zen) turns into a loss once the matrix streams from memory.
        blas_choice[which] = blas_times[2 * which + 1] < 0.85 * blas_times[2 * which] ? 1 : 0;
    }
    if (threads > 0) tk_blas_set_threads(threads);
    free(a), free(b), free(c);
}

static pthread_once_t blas_measured = PTHREAD_ONCE_INIT;

int tk_blas_use(int which) {
    if (which < 0 || which > 1 || !tk_blas_available()) return 0;
    int forced = __atomic_load_n(&blas_forced[which], __ATOMIC_RELAXED);
    if (forced >= 0) return forced;
    pthread_once(&blas_measured, blas_measure);
    return blas_choice[which];
}

void tk_blas_force(int which, int choice) {
    if (which >= 0 && which <= 1) __atomic_store_n(&blas_forced[which], choice, __ATOMIC_RELAXED);
}

int tk_blas_measurement(double *times) {
    if (!tk_blas_available()) return 0;
    pthread_once(&blas_measured, blas_measure);
    for (int i = 0; i < 4; i++) times[i] = blas_times[i];
    return 1;
}
