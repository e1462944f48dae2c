// Fused ops: softmax, logSoftmax, and the `Fast` namespace (rmsNorm,
// layerNorm, rope, scaledDotProductAttention), as in MLX's `mx.fast` /
// mlx-swift's `MLXFast`. Each is one primitive with a fused CPU kernel, and
// a fallback built from smaller ops (`fastFallback`) that a backend without
// the fused kernel evaluates instead; tests check both against references.
// Half inputs compute in float32 and round once.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Softmax along `axis`: `exp(x - max) / sum(exp(x - max))`.
///
/// Half inputs always accumulate in float32 (MLX's `precise: true`); the
/// parameter is accepted for MLX compatibility.
///
/// ```swift
/// let p = softmax(logits, axis: -1)
/// ```
public func softmax(_ x: Tensor, axis: Int = -1, precise: Bool = true) -> Tensor {
    lastAxisOp(x, axis, "softmax", .softmax)
}

/// `log(softmax(x))` along `axis`, computed without forming the softmax.
public func logSoftmax(_ x: Tensor, axis: Int = -1) -> Tensor {
    lastAxisOp(x, axis, "logSoftmax", .logSoftmax)
}

/// Applies a last-axis primitive along `axis` (moving it last and back: views).
private func lastAxisOp(_ x: Tensor, _ axis: Int, _ op: String, _ primitive: Primitive) -> Tensor {
    opPrecondition(x.ndim >= 1, op, "needs at least one axis")
    let a = normalizeAxis(axis, x.ndim, op)
    let input = x.dtype.isFloatingPoint ? x : x.asType(.float32)
    let moved = input.movedAxis(source: a, destination: x.ndim - 1)
    let out = Tensor(shape: moved.shape, dtype: input.dtype, primitive: primitive, inputs: [moved])
    return out.movedAxis(source: x.ndim - 1, destination: a)
}

/// A mask for `Fast.scaledDotProductAttention`.
public enum AttentionMask: Sendable {
    /// Every query sees every key.
    case none
    /// Query i sees keys `j <= i + (keyLength - queryLength)` (aligned at the end, as in MLX).
    case causal
    /// A mask broadcastable to `[B, Hq, Lq, Lk]`: bool (true keeps a score) or
    /// additive (added to the scaled scores).
    case array(Tensor)
}

/// Fused ops in the spelling of mlx-swift's `MLXFast`: `Fast.rmsNorm(x, weight: w, eps: 1e-5)`.
public enum Fast {
    /// `x * rsqrt(mean(x², axis: -1) + eps) * weight`; weight `[D]` is optional.
    ///
    /// ```swift
    /// let y = Fast.rmsNorm(x, weight: gamma, eps: 1e-6)
    /// ```
    public static func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float = 1e-5) -> Tensor {
        let op = "rmsNorm"
        checkNormInputs(op, x, [weight])
        let dtype = [weight].compactMap { $0?.dtype }.reduce(floatType(x.dtype), promoteTypes)
        var inputs = [x.asType(dtype)]
        if let weight { inputs.append(weight.asType(dtype)) }
        return Tensor(
            shape: x.shape, dtype: dtype, primitive: .rmsNorm(eps: eps, hasWeight: weight != nil), inputs: inputs)
    }

    /// `(x - mean) * rsqrt(variance + eps) * weight + bias` over the last axis;
    /// weight and bias `[D]` are optional.
    public static func layerNorm(_ x: Tensor, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float = 1e-5) -> Tensor {
        let op = "layerNorm"
        checkNormInputs(op, x, [weight, bias])
        let dtype = [weight, bias].compactMap { $0?.dtype }.reduce(floatType(x.dtype), promoteTypes)
        var inputs = [x.asType(dtype)]
        if let weight { inputs.append(weight.asType(dtype)) }
        if let bias { inputs.append(bias.asType(dtype)) }
        return Tensor(
            shape: x.shape, dtype: dtype,
            primitive: .layerNorm(eps: eps, hasWeight: weight != nil, hasBias: bias != nil), inputs: inputs)
    }

    /// Rotary position embedding (MLX's `fast.rope`) of x `[..., L, D]`: the
    /// first `dimensions` features of row l (position `offset + l`) are rotated
    /// by angles `position * scale * base^(-2i/dimensions)`, or
    /// `position * scale / freqs[i]` with custom frequencies `[dimensions / 2]`
    /// (then `base` is ignored). `traditional` rotates adjacent pairs, else
    /// the two halves.
    ///
    /// ```swift
    /// let q = Fast.rope(q, dimensions: 128, traditional: false, base: 10000, scale: 1, offset: cache.offset)
    /// ```
    public static func rope(
        _ x: Tensor, dimensions: Int, traditional: Bool, base: Float? = 10000, scale: Float = 1, offset: Int = 0,
        freqs: Tensor? = nil
    ) -> Tensor {
        let op = "rope"
        opPrecondition(x.ndim >= 2, op, "needs an input of at least 2 axes [..., L, D], got \(x.shape)")
        opPrecondition(
            dimensions > 0 && dimensions % 2 == 0 && dimensions <= x.dim(-1), op,
            "dimensions \(dimensions) must be even and at most the last axis of \(x.shape)")
        opPrecondition((base == nil) != (freqs == nil), op, "give exactly one of base and freqs")
        let dtype = floatType(x.dtype)
        var inputs = [x.asType(dtype)]
        if let freqs {
            opPrecondition(
                freqs.shape == [dimensions / 2], op, "freqs must have shape [\(dimensions / 2)], got \(freqs.shape)")
            inputs.append(freqs.asType(.float32))
        }
        return Tensor(
            shape: x.shape, dtype: dtype,
            primitive: .rope(
                dimensions: dimensions, traditional: traditional, base: base ?? 0, scale: scale, offset: offset,
                hasFreqs: freqs != nil),
            inputs: inputs)
    }

    /// `softmax(queries keysᵀ * scale + mask) values`, layout `[B, H, L, D]`;
    /// keys and values may have fewer heads than queries (grouped-query and
    /// multi-query attention) and another length.
    ///
    /// ```swift
    /// let o = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: 1 / Float(64).squareRoot(), mask: .causal)
    /// ```
    public static func scaledDotProductAttention(
        queries: Tensor, keys: Tensor, values: Tensor, scale: Float, mask: AttentionMask = .none
    ) -> Tensor {
        let op = "scaledDotProductAttention"
        let q = queries, k = keys, v = values
        opPrecondition(
            q.ndim == 4 && k.ndim == 4 && v.ndim == 4, op,
            "queries, keys and values must be [B, H, L, D], got \(q.shape), \(k.shape), \(v.shape)")
        let (b, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (hk, lk) = (k.shape[1], k.shape[2])
        opPrecondition(
            k.shape[0] == b && v.shape[0] == b && k.shape[3] == d && v.shape[1] == hk && v.shape[2] == lk, op,
            "incompatible shapes: queries \(q.shape), keys \(k.shape), values \(v.shape)")
        opPrecondition(hk > 0 && hq % hk == 0, op, "query heads \(hq) must be a multiple of key/value heads \(hk)")
        let dtype = promoteTypes(floatType(q.dtype), promoteTypes(k.dtype, v.dtype))
        var inputs = [q.asType(dtype), k.asType(dtype), v.asType(dtype)]
        var causal = false
        switch mask {
        case .none: break
        case .causal: causal = true
        case .array(let m):
            let scores = [b, hq, lq, lk]
            opPrecondition(
                broadcastShapes(m.shape, scores, op) == scores, op,
                "mask \(m.shape) does not broadcast to the scores' shape \(scores)")
            inputs.append((m.dtype == .bool ? m : m.asType(dtype)).broadcast(to: scores))
        }
        return Tensor(
            shape: [b, hq, lq, v.shape[3]], dtype: dtype,
            primitive: .scaledDotProductAttention(scale: scale, causal: causal), inputs: inputs)
    }

    private static func checkNormInputs(_ op: String, _ x: Tensor, _ params: [Tensor?]) {
        opPrecondition(x.ndim >= 1, op, "needs at least one axis")
        for case let p? in params {
            opPrecondition(p.shape == [x.dim(-1)], op, "weight/bias must have shape [\(x.dim(-1))], got \(p.shape)")
        }
    }
}

/// Integers and bools compute in float32, floating types in themselves.
private func floatType(_ dtype: DType) -> DType { dtype.isFloatingPoint ? dtype : .float32 }

/// The fused primitive `primitive` built from smaller ops, for backends that
/// have no fused kernel for it (and for tests). Nil for other primitives.
func fastFallback(_ primitive: Primitive, inputs: [Tensor]) -> Tensor? {
    let x = inputs[0]
    /// Half types compute in float32.
    let compute: DType = x.dtype == .float64 ? .float64 : .float32
    switch primitive {
    case .softmax:
        let xf = x.asType(compute)
        let e = exp(xf - xf.max(axes: [-1], keepDims: true))
        return (e / e.sum(axes: [-1], keepDims: true)).asType(x.dtype)
    case .logSoftmax:
        let xf = x.asType(compute)
        let shifted = xf - xf.max(axes: [-1], keepDims: true)
        return (shifted - log(exp(shifted).sum(axes: [-1], keepDims: true))).asType(x.dtype)
    case .rmsNorm(let eps, let hasWeight):
        let xf = x.asType(compute)
        var y = xf * rsqrt(square(xf).mean(axes: [-1], keepDims: true) + Double(eps))
        if hasWeight { y = y * inputs[1].asType(compute) }
        return y.asType(x.dtype)
    case .layerNorm(let eps, let hasWeight, let hasBias):
        let xf = x.asType(compute)
        let centered = xf - xf.mean(axes: [-1], keepDims: true)
        var y = centered * rsqrt(square(centered).mean(axes: [-1], keepDims: true) + Double(eps))
        var next = 1
        if hasWeight {
            y = y * inputs[next].asType(compute)
            next += 1
        }
        if hasBias { y = y + inputs[next].asType(compute) }
        return y.asType(x.dtype)
    case .rope(let dims, let traditional, let base, let scale, let offset, let hasFreqs):
        return ropeFallback(
            x, dims: dims, traditional: traditional, base: base, scale: scale, offset: offset,
            freqs: hasFreqs ? inputs[1] : nil)
    case .scaledDotProductAttention(let scale, let causal):
        return attentionFallback(inputs, scale: scale, causal: causal)
    default:
        return nil
    }
}

private func ropeFallback(
    _ x: Tensor, dims: Int, traditional: Bool, base: Float, scale: Float, offset: Int, freqs: Tensor?
) -> Tensor {
    let l = x.dim(-2), half = dims / 2
    let positions = (Tensor.arange(0, l, dtype: .float64) + Double(offset)).reshaped([l, 1]) * Double(scale)
    let inverse: Tensor
    if let freqs {
        inverse = 1.0 / freqs.asType(.float64)
    } else {
        inverse = exp(Tensor.arange(0, half, dtype: .float64) * (-2 * Glibc.log(Double(base)) / Double(dims)))
    }
    let theta = positions * inverse.reshaped([1, half])  // [L, dims/2]
    let compute: DType = x.dtype == .float64 ? .float64 : .float32
    let c = cos(theta).asType(compute), s = sin(theta).asType(compute)
    let xf = x.asType(compute)
    let rotated = xf[.ellipsis, 0..<dims], rest = xf[.ellipsis, dims...]
    let x1: Tensor, x2: Tensor
    if traditional {
        let pairs = rotated.reshaped(Array(x.shape.dropLast()) + [half, 2])
        x1 = pairs[.ellipsis, 0]
        x2 = pairs[.ellipsis, 1]
    } else {
        x1 = rotated[.ellipsis, 0..<half]
        x2 = rotated[.ellipsis, half...]
    }
    let y1 = x1 * c - x2 * s, y2 = x1 * s + x2 * c
    let joined =
        traditional
        ? stacked([y1, y2], axis: -1).reshaped(Array(x.shape.dropLast()) + [dims])
        : concatenated([y1, y2], axis: -1)
    return concatenated([joined, rest], axis: -1).asType(x.dtype)
}

private func attentionFallback(_ inputs: [Tensor], scale: Float, causal: Bool) -> Tensor {
    let q = inputs[0], k = inputs[1], v = inputs[2]
    let compute: DType = q.dtype == .float64 ? .float64 : .float32
    let (b, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
    let (hk, lk) = (k.shape[1], k.shape[2])
    let groups = hq / hk
    // Query heads of one kv head side by side: [B, Hkv, groups, Lq, D].
    let qg = q.asType(compute).reshaped([b, hk, groups, lq, d])
    let kg = k.asType(compute).expandedDimensions(axis: 2)
    let vg = v.asType(compute).expandedDimensions(axis: 2)
    var scores = matmul(qg, kg.swappedAxes(-1, -2)) * Double(scale)  // [B, Hkv, groups, Lq, Lk]
    if causal {
        let rows = Tensor.arange(0, lq).reshaped([lq, 1]) + (lk - lq)
        let cols = Tensor.arange(0, lk).reshaped([1, lk])
        scores = which(cols .<= rows, scores, -Double.infinity)
    }
    if inputs.count > 3 {
        let mask = inputs[3].reshaped([b, hk, groups, lq, lk])
        scores = mask.dtype == .bool ? which(mask, scores, -Double.infinity) : scores + mask.asType(compute)
    }
    let probs = softmax(scores, axis: -1)
    return matmul(probs, vg).reshaped([b, hq, lq, v.shape[3]]).asType(q.dtype)
}
