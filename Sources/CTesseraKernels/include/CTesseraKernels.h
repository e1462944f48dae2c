// CTesseraKernels: SIMD micro-kernels for Tessera's CPU backend.
//
// Every function works on plain contiguous memory and is single-threaded;
// Swift splits large work across its thread pool and calls these per chunk.
// Each kernel is compiled three times (AVX-512, AVX2+FMA, portable baseline)
// with per-function target attributes, and the variant is chosen once at run
// time from the CPU's features (cpuid + xgetbv), so the package needs no
// -march flag. Element types: TK_F32, TK_F16 (IEEE half) and TK_BF16 (bfloat16);
// half types compute in float32 and round once (nearest even) on the way out.
#ifndef CTESSERA_KERNELS_H
#define CTESSERA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "tk_nccl.h"  // NCCL call shim (Distributed/NCCLBackend.swift)
#include "tk_shm.h"   // shared-memory flags (Distributed/RingSharedMemory.swift)

#ifdef __cplusplus
extern "C" {
#endif

enum { TK_F32 = 0, TK_F16 = 1, TK_BF16 = 2 };

enum { TK_ISA_BASELINE = 0, TK_ISA_AVX2 = 1, TK_ISA_AVX512 = 2 };

/// The instruction set the kernels run with now.
int tk_isa(void);
/// The best instruction set this CPU supports.
int tk_isa_supported(void);
/// Uses `isa` (clamped to what the CPU supports) from now on; returns the one in use.
/// For tests and benchmarks that compare variants.
int tk_set_isa(int isa);

/// The CPUs this process may run on (sched_getaffinity; else the online count).
int tk_cpu_count(void);
/// glibc: at most n malloc arenas from now on (mallopt M_ARENA_MAX); 1 when set, 0 elsewhere.
int tk_limit_malloc_arenas(int n);
/// glibc: blocks of at least `bytes` get a mapping of their own, returned to the
/// system when freed (mallopt M_MMAP_THRESHOLD, which also stops glibc raising
/// the threshold to the largest such block freed so far); 1 when set, 0 elsewhere.
int tk_set_malloc_mmap_threshold(long bytes);
/// glibc: returns the free whole pages inside the malloc arenas to the system
/// (malloc_trim(0)); 1 when some were, 0 otherwise or elsewhere.
int tk_malloc_trim(void);
/// The C allocator's state (glibc): `arenas` from malloc_info's heap list,
/// the byte totals from mallinfo2 (over all arenas).
typedef struct {
    long arenas;
    long long heap_bytes;    // obtained from the system for the arenas (brk and arena heaps)
    long long in_use_bytes;  // handed out from those
    long long free_bytes;    // free inside them (kept by malloc, still counted while touched)
    long long mmapped_bytes; // blocks of their own mmap
} tk_malloc_stats_t;
/// Fills `out`; 1 on glibc, 0 (and `out` zeroed) elsewhere or when malloc_info fails.
int tk_malloc_stats(tk_malloc_stats_t *out);

// ---- element-wise ----------------------------------------------------------

enum { TK_ADD = 0, TK_SUB, TK_MUL, TK_DIV, TK_MAX, TK_MIN };

/// out[i] = a[i*sa] op b[i*sb] for i < n, with sa, sb in {0, 1} (0: a scalar
/// broadcast). max/min propagate NaN as numpy does.
void tk_binary(int op, int dtype, const void *a, long sa, const void *b, long sb, void *out, long n);

enum {
    TK_NEG = 0, TK_ABS, TK_SQUARE, TK_SQRT, TK_RSQRT, TK_RECIPROCAL,
    TK_EXP, TK_LOG, TK_SIGMOID, TK_TANH
};

/// out[i] = f(x[i]) for i < n. exp/log/sigmoid/tanh use polynomial
/// approximations within 2 ulp of float32 (tested against libm).
void tk_unary(int op, int dtype, const void *x, void *out, long n);

/// Converts n elements between dtypes (same dtype: a copy).
void tk_convert(int from, const void *x, int to, void *out, long n);

// ---- reductions over contiguous rows -----------------------------------------

enum { TK_SUM = 0, TK_RMAX, TK_RMIN };

/// out[r] = reduce(x[r*n ..< r*n+n]) for r < rows, written in `dtype`.
/// Sums accumulate in double; max/min propagate NaN.
void tk_reduce_rows(int op, int dtype, const void *x, long rows, long n, void *out);

/// out[j] = reduce over i < rows of x[i*ld + j] for j < n (a reduction over
/// the outer axis of a [rows, n] block with row stride ld), written in `dtype`.
void tk_reduce_cols(int op, int dtype, const void *x, long rows, long n, long ld, void *out);

// ---- row building blocks of fused ops ----------------------------------------

/// Softmax of each contiguous row (max-shifted, float32 accumulation).
void tk_softmax_rows(int dtype, const void *x, void *out, long rows, long n);
/// out = x * rsqrt(mean(x^2) + eps) * w per row; w (length n, `dtype`) may be NULL.
void tk_rmsnorm_rows(int dtype, const void *x, const void *w, float eps, void *out, long rows, long n);
/// out = (x - mean) * rsqrt(var + eps) * w + b per row; w and b may be NULL.
void tk_layernorm_rows(int dtype, const void *x, const void *w, const void *b, float eps, void *out,
                       long rows, long n);

// ---- GEMM -----------------------------------------------------------------------

/// C[m, n] = beta * C[m, n] + sum_k A[m, k] * B[k, n] over an M x N x K block,
/// C float32 row-major with leading dimension ldc. A and B are any of the
/// three dtypes with arbitrary element strides (row stride, column stride),
/// converted to float32 while packed; accumulation is float32. beta 0 means C
/// is not read. Packed tiles with a register-blocked SIMD micro-kernel.
void tk_gemm(long M, long N, long K,
             int dtype_a, const void *A, long rsa, long csa,
             int dtype_b, const void *B, long rsb, long csb,
             float beta, float *C, long ldc);

/// Matrix-vector products streaming W once in its dtype (f32/f16/bf16), x float32 of length K:
/// form 0: y[r] = sum_k W[r*ldw + k] x[k] for r < n; form 1: y[j] = sum_k x[k] W[k*ldw + j] for j < n.
void tk_gemv(int form, int dtype, const void *W, long ldw, const float *x, long K, float *y, long n);

/// 1 when cblas_sgemm could be loaded from OpenBLAS (dlopen, once).
int tk_blas_available(void);
/// 1 when TESSERA_DISABLE_BLAS (or TESSERA_NO_BLAS) is set to anything but 0: optional
/// libraries (OpenBLAS, LAPACK) stay unloaded.
int tk_blas_disabled(void);
/// cblas_sgemm(RowMajor, ...) through the loaded library: C = alpha op(A) op(B) + beta C.
void tk_blas_sgemm(int trans_a, int trans_b, long M, long N, long K, float alpha,
                   const float *A, long lda, const float *B, long ldb, float beta, float *C, long ldc);
/// cblas_sgemv(RowMajor, ...): y = alpha op(A) x + beta y, A stored [M, N] with lda.
void tk_blas_sgemv(int trans, long M, long N, float alpha, const float *A, long lda, const float *x, long incx,
                   float beta, float *y, long incy);
/// Sets OpenBLAS's thread count when loaded (openblas_set_num_threads).
void tk_blas_set_threads(int n);
/// Whether float32 products go to BLAS: `which` 0 for GEMM, 1 for matrix-vector.
/// Decided once per process by timing BLAS and the native kernel on one thread
/// (the faster wins; 0 without BLAS), unless tk_blas_force set it.
int tk_blas_use(int which);
/// Sets `which` (0 GEMM, 1 matrix-vector) to native (0), BLAS (1) or measured (-1).
void tk_blas_force(int which, int choice);
/// The measurement behind tk_blas_use in seconds (native GEMM, BLAS GEMM, native
/// gemv, BLAS gemv); 0 without BLAS.
int tk_blas_measurement(double *times);

// ---- spinning ----------------------------------------------------------------

/// A hint to the core that the caller is spin-waiting (x86 `pause`).
static inline void tk_spin_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// ---- attention for few query rows ---------------------------------------------------

/// One key/value head's attention for a few query rows (decode steps, short
/// chunks): rows (h, i) for h < heads (query heads sharing the key/value
/// head) and i < lq, the query row at q + h*q_head_stride + i*q_row_stride;
/// key j < lk at k + j*k_stride, its values at v + j*v_stride (unit stride
/// within a row, so a cache's window is read in place); output row (h, i) at
/// out + (h*lq + i)*dv. Per row: scores q·k_j (float32 dot products) times
/// scale; causal hides keys j > i + lk - lq; bool_mask (nonzero keeps) hides
/// keys, or add_mask is added, element (h, i, j) at
/// h*mask_head_stride + i*mask_row_stride + j*mask_col_stride; softmax as
/// tk_softmax_rows; out = sum_j p_j v_j. A row that sees no key is NaN.
/// Single-threaded; fast for heads*lq up to ~16 rows (GEMM wins beyond).
typedef struct {
    const float *q;
    long q_head_stride, q_row_stride;
    const float *k;
    long k_stride;
    const float *v;
    long v_stride;
    float *out;
    const uint8_t *bool_mask;
    const float *add_mask;
    long mask_head_stride, mask_row_stride, mask_col_stride;
    long heads, lq, lk, d, dv;
    float scale;
    int causal;
    /// With `stats` set: only keys key_begin..<key_end, unnormalised (a part
    /// of a split over keys): out rows get sum_j e^(s_j - m) v_j, stats[2r]
    /// the row's largest visible score m (-inf when it sees none, the row 0)
    /// and stats[2r + 1] sum_j e^(s_j - m). tk_attention_merge combines parts.
    long key_begin, key_end;
    float *stats;
    /// When set (tk_attention only): keys and values stored as float16 at
    /// these addresses (k_stride / v_stride in elements), widened to float32
    /// in registers; k and v are then unused. The arithmetic on the widened
    /// values is the float32 path's, so the result equals tk_attention on
    /// float32 copies of the same half values bit for bit.
    const uint16_t *k_half, *v_half;
} tk_attention_args;

void tk_attention(const tk_attention_args *args);

/// out [rows, dv] from `parts` partial results of tk_attention (part p's
/// rows at outs + p * rows * dv, its stats at stats + p * rows * 2): the
/// softmax-weighted sum over all the parts' keys (NaN for a row no part saw).
void tk_attention_merge(long rows, long dv, long parts, const float *outs, const float *stats, float *out);

/// Flash-style attention for many query rows (kernels_flash.h): the keys by
/// tiles of 64, an online softmax (running maximum and sum per row), P V
/// accumulated into the output rows; no rows x keys score matrix. Same
/// arguments and results as tk_attention (without key_begin/key_end/stats),
/// for output rows r0..<r1 of heads * lq (row r: head r / lq, position r %
/// lq), so that threads can take blocks of rows. kt: the keys transposed by
/// tk_attention_flash_keys into d * tk_attention_flash_keys_stride(lk) floats
/// (once per key/value head, shared by every block of rows).
long tk_attention_flash_keys_stride(long lk);
void tk_attention_flash_keys(const tk_attention_args *args, float *kt);
void tk_attention_flash(const tk_attention_args *args, const float *kt, long r0, long r1);

// ---- quantized matmul (MLX affine format) ---------------------------------------
//
// w[n, k] = scale[n, k/group] * q[n, k] + bias[n, k/group], q packed in
// uint32 words low bits first, K*bits/32 words per row; scales/biases in
// `sdtype` (the dtype of x, or float16/bfloat16 under float32 x: a GGUF's
// half scales then stream at half the bytes). out[m, n] = sum_k x[m, k] *
// w[n, k] (MLX's transpose=True).

/// out[m, n] for m < M (M <= 8 for speed, any M works) and n0 <= n < n1.
/// x [M, K] and out [M, N] row-major in `dtype`; bits 4 or 8; group 32/64/128.
/// Per group: s * (q . x) + b * sum(x). With AVX-512 VNNI q . x runs in
/// integers on x rounded per block of 8 values to 24-bit integers (error per
/// value at most 6e-8 of the block's largest) or, after tk_set_qmv_x_bytes(2),
/// to 16-bit ones (1.5e-5 of it, one integer product per weight chunk fewer);
/// otherwise in float.
void tk_qmv(int dtype, int sdtype, const void *x, const uint32_t *wq, const void *scales, const void *biases,
            void *out, long M, long N, long K, int group, int bits, long n0, long n1);

/// The same product in two steps, for callers that split the rows n0..<n1
/// over threads: x is prepared once (into `scratch`, tk_qmv_scratch bytes),
/// then each thread runs tk_qmv_prepared on its rows. tk_qmv_scratch is 0
/// when no prepared kernel applies (use tk_qmv); tk_qmv_prepare returns 0
/// when this x cannot take it (a non-finite value: use tk_qmv).
long tk_qmv_scratch(int dtype, long M, long K, int group, int bits);
int tk_qmv_prepare(int dtype, const void *x, long M, long K, int group, int bits, void *scratch);
void tk_qmv_prepared(int dtype, int sdtype, const void *scratch, const uint32_t *wq, const void *scales, const void *biases,
                     void *out, long M, long N, long K, int group, int bits, long n0, long n1);

/// tk_qmv_prepared for M rows of x each prepared alone (tk_qmv_prepare with
/// M = 1; row m's scratch at scratch + m * stride, its output row at out + m
/// * N): each weight chunk is loaded and unpacked once for up to 16 rows,
/// and each row's result is bit for bit what tk_qmv_prepared gives that row
/// alone over the same n0..<n1 (a batched decode step computes every
/// sequence exactly as it would run alone).
void tk_qmv_prepared_batch(int dtype, int sdtype, const void *scratch, long stride, const uint32_t *wq,
                           const void *scales, const void *biases, void *out, long M, long N, long K, int group,
                           int bits, long n0, long n1);

/// Whether the AVX-512 variant's 4- and 8-bit qmv use the VNNI kernels (on by default
/// where the CPU has it, off with TESSERA_NO_VNNI set); tk_set_qmv_vnni(0)
/// turns it off (tests use it to reach the float kernel) and returns the state.
int tk_qmv_vnni(void);
int tk_set_qmv_vnni(int enable);

/// Bytes per value of x in the VNNI qmv kernels from now on: 3 (24-bit, the
/// default) or 2 (16-bit); returns the setting. Prepared x keeps the setting
/// it was prepared with.
int tk_qmv_x_bytes(void);
int tk_set_qmv_x_bytes(int bytes);

/// The 4-bit product for many rows of x (prefill) on integer dot products:
/// AVX-512 VNNI vpdpbusd (kernels_qgemm_vnni.c) or, on x86 CPUs without it
/// (or with tk_set_qmv_vnni(0)), AVX2 vpmaddubsw (kernels_qgemm_avx2.c), both
/// giving the same floats. x float32 [M, K] is rounded per block of
/// 32 values to XB = 1 or 2 signed bytes by tk_qgemm4_prepare (into
/// tk_qgemm4_x_bytes of memory; 0 where a block holds a non-finite or tiny
/// value, for which the float kernel must run), then tk_qgemm4 writes float32 out [M, N]
/// columns n0..<n1 (n0 a multiple of 32) with tk_qgemm4_panel_bytes of
/// scratch per caller. tk_qgemm4 returns 0 (and writes nothing) where no
/// integer kernel is available (the baseline variant, tk_set_isa lowered
/// below AVX2, a non-x86 CPU); tk_qgemm4_vnni_active says which one runs.
int tk_qgemm4_available(int sdtype, long K, int group);
int tk_qgemm4_vnni_active(void);
long tk_qgemm4_x_bytes(long M, long K, int group, int XB);
int tk_qgemm4_prepare(const float *x, long M, long K, int group, int XB, void *prepared);
/// The plain C rounding that tk_qgemm4_prepare's AVX2 and AVX-512 variants
/// match byte for byte (tests compare them).
int tk_qgemm4_prepare_ref(const float *x, long M, long K, int group, int XB, void *prepared);
long tk_qgemm4_panel_bytes(long K, int group);
int tk_qgemm4(int sdtype, const void *prepared, const uint32_t *wq, const void *scales, const void *biases, float *out,
              long M, long N, long K, int group, int XB, long n0, long n1, void *scratch);
/// The same product for 8-bit weights (wq [N, K/4 words], codes 0..255; a
/// tied 8-bit LM head): x prepared by tk_qgemm4_prepare, scratch of
/// tk_qgemm4_panel_bytes. AVX-512 VNNI only (tk_qgemm8_available; 0 and
/// nothing written elsewhere). Off unless tk_set_qgemm8_enabled(1): the
/// library's product takes it only then (training turns it on; inference
/// keeps the float kernel for 8-bit weights, so its results do not change).
int tk_qgemm8_available(int sdtype, long K, int group);
int tk_qgemm8_enabled(void);
int tk_set_qgemm8_enabled(int on);
int tk_qgemm8(int sdtype, const void *prepared, const uint32_t *wq, const void *scales, const void *biases, float *out,
              long M, long N, long K, int group, int XB, long n0, long n1, void *scratch);

/// The bfloat16 GEMM on AVX512-BF16 dot products (kernels_gemm_bf16.c):
/// C[m, n] = sum_k x[m, k] W[n, k] (float32 C with leading dimension ldc,
/// absolute n) for n0 <= n < n1, W bfloat16 rows of stride ldw with unit
/// stride along k, x packed by tk_gemm_bf16_pack_x (blocks b0..<b1 of 64 rows:
/// float32 rounded to bfloat16, nearest even; bfloat16 copied) into
/// tk_gemm_bf16_x_bytes of memory. tk_gemm_bf16 returns 0 (and writes
/// nothing) where the kernel is not available (no AVX512_BF16, tk_set_isa
/// lowered, tk_set_gemm_bf16(0), TESSERA_NO_BF16 set).
int tk_gemm_bf16_available(void);
int tk_set_gemm_bf16(int enable);
long tk_gemm_bf16_x_bytes(long M, long K);
void tk_gemm_bf16_pack_x(int dtype, const void *x, long rsa, long csa, long M, long K, long b0, long b1, void *packed);
int tk_gemm_bf16(const void *packed, long M, long K, const uint16_t *W, long ldw, long n0, long n1, float *C, long ldc);
/// Whether float32 x times bfloat16 weights may round x to bfloat16 for the
/// kernel above (BFloat16MatmulPrecision.high): 1 or 0; the setter returns it.
int tk_gemm_bf16_round_x(void);
int tk_set_gemm_bf16_round_x(int enable);

/// Dequantizes rows n0 <= n < n1 of w into dst [(n1-n0), K] float32.
void tk_dequantize_rows(int dtype, const uint32_t *wq, const void *scales, const void *biases,
                        float *dst, long K, int group, int bits, long n0, long n1);

#ifdef __cplusplus
}
#endif
#endif
