// Quantization in MLX's affine format, bit for bit: weights are quantized in
// groups of `groupSize` along the last axis; each group stores a scale and a
// bias (in the weight dtype) and `bits`-wide unsigned codes packed into uint32
// words, low bits first, as one little-endian bit stream per row. So
// mlx-community checkpoints load as they are.

import CTesseraKernels

/// The group sizes and bit widths MLX's affine format supports.
private let supportedGroupSizes: Set<Int> = [32, 64, 128]
private let supportedBits: Set<Int> = [2, 3, 4, 5, 6, 8]

private func checkQuantization(_ op: String, _ groupSize: Int, _ bits: Int) {
    opPrecondition(
        supportedGroupSizes.contains(groupSize), op, "groupSize must be 32, 64 or 128, got \(groupSize)")
    opPrecondition(supportedBits.contains(bits), op, "bits must be 2, 3, 4, 5, 6 or 8, got \(bits)")
}

private let quantizableTypes: Set<DType> = [.float16, .float32, .bfloat16]

/// Quantizes `w` along its last axis in MLX's affine format.
///
/// Each group of `groupSize` consecutive elements of a row gets a scale and a
/// bias with `w ≈ scale * q + bias`, `q` in `0 ..< 2^bits`; the codes are packed
/// into uint32 words (`K * bits / 32` per row), low bits first.
///
/// ```swift
/// let (wq, scales, biases) = quantize(w, groupSize: 64, bits: 4)  // w: [N, K] float16
/// // wq: [N, K / 8] uint32, scales and biases: [N, K / 64] float16
/// ```
public func quantize(_ w: Tensor, groupSize: Int = 64, bits: Int = 4) -> (wq: Tensor, scales: Tensor, biases: Tensor) {
    checkQuantization("quantize", groupSize, bits)
    opPrecondition(
        quantizableTypes.contains(w.dtype), "quantize", "needs float16, bfloat16 or float32 weights, got \(w.dtype)")
    opPrecondition(
        w.ndim >= 1 && w.dim(-1) % groupSize == 0, "quantize",
        "the last axis of \(w.shape) must be a multiple of groupSize \(groupSize)")
    let k = w.dim(-1)
    let lead = Array(w.shape.dropLast())
    let parameters = Tensor(
        shape: lead + [k / groupSize, 2], dtype: .float32,
        primitive: .affineQuantizeParameters(groupSize: groupSize, bits: bits), inputs: [w])
    let wq = Tensor(
        shape: lead + [k * bits / 32], dtype: .uint32,
        primitive: .affineQuantizePack(groupSize: groupSize, bits: bits), inputs: [w, parameters])
    let scales = parameters[.ellipsis, 0].asType(w.dtype)
    let biases = parameters[.ellipsis, 1].asType(w.dtype)
    return (wq, scales, biases)
}

/// The weights `quantize` packed: `scales * q + biases` per group, in the
/// dtype of `scales`.
public func dequantize(_ wq: Tensor, scales: Tensor, biases: Tensor, groupSize: Int = 64, bits: Int = 4) -> Tensor {
    checkQuantization("dequantize", groupSize, bits)
    let k = checkPacked("dequantize", wq, scales, biases, groupSize, bits)
    return Tensor(
        shape: Array(wq.shape.dropLast()) + [k], dtype: scales.dtype,
        primitive: .affineDequantize(groupSize: groupSize, bits: bits), inputs: [wq, scales, biases])
}

/// Validates packed weights against their scales and biases; returns the
/// unpacked length of the last axis.
private func checkPacked(
    _ op: String, _ wq: Tensor, _ scales: Tensor, _ biases: Tensor, _ groupSize: Int, _ bits: Int
) -> Int {
    opPrecondition(wq.dtype == .uint32, op, "packed weights must be uint32, got \(wq.dtype)")
    opPrecondition(wq.ndim >= 1, op, "packed weights must have at least one axis")
    opPrecondition(
        quantizableTypes.contains(scales.dtype) && biases.dtype == scales.dtype, op,
        "scales and biases must share a float16, bfloat16 or float32 dtype, got \(scales.dtype) and \(biases.dtype)")
    let k = wq.dim(-1) * 32 / bits
    let expected = Array(wq.shape.dropLast()) + [k / groupSize]
    opPrecondition(
        scales.shape == expected && biases.shape == expected, op,
        "scales \(scales.shape) and biases \(biases.shape) must have shape \(expected) for packed weights "
            + "\(wq.shape) with groupSize \(groupSize) and bits \(bits)")
    return k
}

/// Shapes of a quantized matrix product: (K, N) for `x [..., M, K]` and packed `w`.
private func quantizedMatmulSizes(
    _ op: String, _ x: Tensor, _ w: Tensor, _ scales: Tensor, _ biases: Tensor, transpose: Bool, _ groupSize: Int,
    _ bits: Int
) -> (k: Int, n: Int) {
    checkQuantization(op, groupSize, bits)
    opPrecondition(w.ndim >= 2, op, "packed weights must have at least 2 axes, got \(w.shape)")
    opPrecondition(x.dtype.isFloatingPoint, op, "x must be a floating point type, got \(x.dtype)")
    let unpacked = checkPacked(op, w, scales, biases, groupSize, bits)
    let (k, n) = transpose ? (unpacked, w.dim(-2)) : (w.dim(-2), unpacked)
    opPrecondition(
        x.dim(-1) == k, op,
        "x \(x.shape) has \(x.dim(-1)) columns but the weights \(w.shape) (transpose: \(transpose)) need \(k)")
    return (k, n)
}

/// How finely the CPU's integer quantized products (AVX-512 VNNI, up to 8
/// rows of x: a decode step's) round float x before multiplying. A choice for
/// the whole process, like PyTorch's `set_float32_matmul_precision`: products
/// computed after a change use it. Other kernels (float, GPU) are unaffected.
///
/// ```swift
/// QuantizedMatmulPrecision.current = .high  // faster decoding, x to 16 bits
/// ```
public enum QuantizedMatmulPrecision: Sendable, Equatable {
    /// x rounded to 24-bit integers per block of 8 values: at most 6e-8 of
    /// the block's largest value per value, float32's own level. The default.
    case highest
    /// x rounded to 16-bit integers per block of 8 values: at most 1.5e-5 of
    /// the block's largest value per value (llama.cpp rounds activations to
    /// 8 bits per 32 values), with one integer product per weight chunk
    /// fewer: a decode step's products 10-20% faster (docs/PERFORMANCE.md).
    case high

    /// The precision in use (`.highest` unless set).
    public static var current: QuantizedMatmulPrecision {
        get { tk_qmv_x_bytes() == 2 ? .high : .highest }
        set { _ = tk_set_qmv_x_bytes(newValue == .high ? 2 : 3) }
    }

    /// Whether, at `.high`, products of 8-bit weights over many rows of x
    /// (more than 16: a training batch through a tied 8-bit LM head) run on
    /// the integer dot products of the 4-bit prefill product (AVX-512 VNNI; x
    /// rounded to 16 bits per block of 32) instead of the float32 GEMM on
    /// dequantized weights. Off unless set: inference keeps its results as
    /// they were; `tessera lora` turns it on with `--precision high`.
    public static var integerEightBitProducts: Bool {
        get { tk_qgemm8_enabled() != 0 }
        set { _ = tk_set_qgemm8_enabled(newValue ? 1 : 0) }
    }
}

/// `x @ dequantize(w).T` (`transpose: true`, weights stored `[N, K]` as in
/// `Linear`) or `x @ dequantize(w)` (`transpose: false`, weights `[K, N]`),
/// without materialising the dequantized weights. Batch axes broadcast.
///
/// ```swift
/// let (wq, s, b) = quantize(w)                       // w: [N, K]
/// let y = quantizedMatmul(x, wq, scales: s, biases: b)  // x: [..., K] -> [..., N]
/// ```
public func quantizedMatmul(
    _ x: Tensor, _ w: Tensor, scales: Tensor, biases: Tensor, transpose: Bool = true, groupSize: Int = 64,
    bits: Int = 4
) -> Tensor {
    let op = "quantizedMatmul"
    opPrecondition(x.ndim >= 1, op, "x must have at least one axis")
    let (k, n) = quantizedMatmulSizes(op, x, w, scales, biases, transpose: transpose, groupSize, bits)
    let dtype = promoteTypes(x.dtype, scales.dtype)
    // Under float32 x, float16/bfloat16 scales stay as they are (a GGUF's, or an
    // MLX folder's): the kernels widen them as they read, and a decode step's
    // weights stream in fewer bytes. The result is the same as widening first.
    let halfScales = dtype == .float32 && (scales.dtype == .float16 || scales.dtype == .bfloat16)
    let parameterType = halfScales && biases.dtype == scales.dtype ? scales.dtype : dtype
    let x2 = x.ndim == 1 ? x.reshaped([1, k]) : x
    let m = x2.dim(-2)
    let batch = broadcastShapes(Array(x2.shape.dropLast(2)), Array(w.shape.dropLast(2)), op)
    // One matrix of weights (a layer's) stays as it is under x's batch axes:
    // the backends read it for every batch (a decode step built three
    // broadcast nodes per product before). Batched weights broadcast.
    let shared = w.ndim == 2 && scales.ndim == 2 && biases.ndim == 2
    func operand(_ t: Tensor) -> Tensor { shared ? t : t.broadcast(to: batch + Array(t.shape.suffix(2))) }
    let out = Tensor(
        shape: batch + [m, n], dtype: dtype,
        primitive: .quantizedMatmul(groupSize: groupSize, bits: bits, transpose: transpose),
        inputs: [
            x2.asType(dtype).broadcast(to: batch + [m, k]), operand(w), operand(scales.asType(parameterType)),
            operand(biases.asType(parameterType))
        ])
    return x.ndim == 1 ? out.reshaped(batch + [n]) : out
}

/// MLX's `gather_qmm`, for mixtures of experts: a quantized matrix product
/// per entry of the broadcast index arrays, `out[i] = x[lhsIndices[i]] @ W[rhsIndices[i]]`,
/// where `x`'s batch axes (all but the last two) are flattened and indexed by
/// `lhsIndices`, and the weights' batch axes (e.g. experts) by `rhsIndices`.
/// Missing indices default to every batch entry in order. Output:
/// `broadcast(lhs.shape, rhs.shape) + [M, N]`.
///
/// ```swift
/// // x: [tokens, 1, 1, K], w: [experts, N, K/8] (4-bit), idx: [tokens, topK]
/// let y = gatherQuantizedMatmul(x, w, scales: s, biases: b, rhsIndices: idx)  // [tokens, topK, 1, N]
/// ```
public func gatherQuantizedMatmul(
    _ x: Tensor, _ w: Tensor, scales: Tensor, biases: Tensor, lhsIndices: Tensor? = nil, rhsIndices: Tensor? = nil,
    transpose: Bool = true, groupSize: Int = 64, bits: Int = 4
) -> Tensor {
    let op = "gatherQuantizedMatmul"
    opPrecondition(x.ndim >= 2, op, "x must have at least 2 axes, got \(x.shape)")
    let (k, n) = quantizedMatmulSizes(op, x, w, scales, biases, transpose: transpose, groupSize, bits)
    let dtype = promoteTypes(x.dtype, scales.dtype)
    let m = x.dim(-2)
    let xBatch = Array(x.shape.dropLast(2)), wBatch = Array(w.shape.dropLast(2))
    let xCount = xBatch.reduce(1, *), wCount = wBatch.reduce(1, *)
    let lhs = lhsIndices ?? Tensor.arange(0, xCount, dtype: .uint32).reshaped(xBatch)
    let rhs = rhsIndices ?? Tensor.arange(0, wCount, dtype: .uint32).reshaped(wBatch)
    opPrecondition(
        lhs.dtype.isInteger && rhs.dtype.isInteger, op,
        "indices must be integers, got \(lhs.dtype) and \(rhs.dtype)")
    let indexShape = broadcastShapes(lhs.shape, rhs.shape, op)
    return Tensor(
        shape: indexShape + [m, n], dtype: dtype,
        primitive: .gatherQuantizedMatmul(groupSize: groupSize, bits: bits, transpose: transpose),
        inputs: [
            x.asType(dtype).reshaped([xCount, m, k]),
            w.reshaped([wCount] + Array(w.shape.suffix(2))),
            scales.asType(dtype).reshaped([wCount] + Array(scales.shape.suffix(2))),
            biases.asType(dtype).reshaped([wCount] + Array(biases.shape.suffix(2))),
            lhs.asType(.uint32).broadcast(to: indexShape),
            rhs.asType(.uint32).broadcast(to: indexShape)
        ])
}
