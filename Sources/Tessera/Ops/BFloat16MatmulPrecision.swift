// How float32 activations meet bfloat16 weights in the CPU's float matrix
// products, a process-wide choice like QuantizedMatmulPrecision.

import CTesseraKernels

/// How the CPU multiplies float32 x by bfloat16 weights (a bfloat16 model's
/// projections, `matmul(x, w.T)` with `w` bfloat16 `[N, K]`) when the CPU has
/// AVX512-BF16 dot products (`vdpbf16ps`). A choice for the whole process,
/// like PyTorch's `set_float32_matmul_precision`: products computed after a
/// change use it. bfloat16 times bfloat16 takes the dot products at either
/// setting (nothing is rounded); other dtypes and the GPU are unaffected.
///
/// ```swift
/// BFloat16MatmulPrecision.current = .high  // bf16 prefill on vdpbf16ps
/// ```
public enum BFloat16MatmulPrecision: Sendable, Equatable {
    /// x stays float32: the weights widen to float32 in registers and the
    /// float32 GEMM runs. The default.
    case highest
    /// x rounded to bfloat16 (nearest even: at most 2^-8 of each value, so at
    /// most 2^-8 · Σ|x w| per output beside float32 rounding) and multiplied
    /// on `vdpbf16ps`, float32 accumulation; what a bfloat16 model in
    /// PyTorch does, whose activations are bfloat16 throughout. Matrix-vector
    /// products (one row of x: a decode step) stay float32 at either setting,
    /// since they are bound by reading the weights. Inputs and outputs below
    /// float32's normal range flush to zero in the dot products.
    case high

    /// The precision in use (`.highest` unless set).
    public static var current: BFloat16MatmulPrecision {
        get { tk_gemm_bf16_round_x() != 0 ? .high : .highest }
        set { _ = tk_set_gemm_bf16_round_x(newValue == .high ? 1 : 0) }
    }
}
