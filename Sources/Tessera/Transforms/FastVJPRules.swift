// Written-out vjp rules of the fused primitives (softmax, logSoftmax,
// rmsNorm, rope, scaledDotProductAttention) for float32 and float64: the
// generic rule (VJPRules.swift) differentiates the fallback graph each fused
// op stands for, which re-evaluates the op from its smaller ops and then runs
// every one of their rules (a softmax becomes max, subtract, exp, sum,
// divide and their cotangents; attention a materialised score matrix through
// which, softmax's fallback and two products). The rules here use the fused
// kernels and the closed forms instead:
//
//   softmax      dx = y * (g - sum(g * y))                     (y: the output)
//   logSoftmax   dx = g - exp(y) * sum(g)
//   rmsNorm      r = rsqrt(mean(x²) + eps), gw = g * w
//                dx = r * gw - r³ * x * mean(gw * x),  dw = Σ_rows g * x * r
//   rope         dx = rope(g) with the angles negated (scale -> -scale): the
//                transpose of a rotation is the rotation back
//   attention    P recomputed (scaled q times kᵀ, causal mask, fused softmax),
//                dV = Pᵀ dO, dP = dO Vᵀ, dS = P * (dP - rowsum(dO * O)),
//                dQ = scale * dS K, dK = dSᵀ (scale * Q); the query heads of
//                one kv head are stacked as rows, so the products with K and V
//                sum over the group without a broadcast (grouped-query attention).
//
// Half types, an array mask and custom rope frequencies keep the fallback
// rule (nil here). Every rule is built from differentiable ops, so higher
// derivatives still work. Checked against the fallback's gradients in float64
// (Tests/TesseraTests/FastVJPTests.swift).

/// The cotangents of a fused primitive's inputs, written out; nil when the
/// generic rule (differentiate the fallback graph) should run instead.
func fastVJP(_ primitive: Primitive, inputs: [Tensor], output: Tensor, cotangent g: Tensor) -> [Tensor?]? {
    // Empty tensors (a zero-length axis to reduce or divide by) keep the generic rule.
    guard output.dtype == .float32 || output.dtype == .float64, g.dtype == output.dtype, output.size > 0,
        inputs.allSatisfy({ ($0.dtype == output.dtype || !$0.dtype.isFloatingPoint) && $0.size > 0 })
    else { return nil }
    switch primitive {
    case .softmax:
        let y = output
        return [y * (g - (g * y).sum(axes: [-1], keepDims: true))]
    case .logSoftmax:
        return [g - exp(output) * g.sum(axes: [-1], keepDims: true)]
    case .rmsNorm(let eps, let hasWeight):
        let x = inputs[0]
        let r = rsqrt(square(x).mean(axes: [-1], keepDims: true) + Double(eps))
        let gw = hasWeight ? g * inputs[1] : g
        let dx = r * gw - (r * r * r) * x * (gw * x).mean(axes: [-1], keepDims: true)
        guard hasWeight else { return [dx] }
        let d = x.dim(-1)
        let dw = (g * x * r).reshaped([-1, d]).sum(axes: [0])
        return [dx, dw]
    case .rope(let dims, let traditional, let base, let scale, let offset, let hasFreqs):
        guard !hasFreqs else { return nil }
        return [Fast.rope(g, dimensions: dims, traditional: traditional, base: base, scale: -scale, offset: offset)]
    case .scaledDotProductAttention(let scale, let causal):
        guard inputs.count == 3 else { return nil }
        return attentionVJP(
            q: inputs[0], k: inputs[1], v: inputs[2], output: output, g: g, scale: scale, causal: causal)
    default:
        return nil
    }
}

/// dQ, dK, dV of `softmax(q kᵀ * scale [+ causal mask]) v` (layout [B, H, L, D]).
private func attentionVJP(
    q: Tensor, k: Tensor, v: Tensor, output: Tensor, g: Tensor, scale: Float, causal: Bool
) -> [Tensor?] {
    let (b, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
    let (hk, lk, dv) = (k.shape[1], k.shape[2], v.shape[3])
    let groups = hq / hk
    // The query heads of kv head h are rows [group * lq + i] of one matrix per (batch, kv head).
    let rows = groups * lq
    let qs = q.reshaped([b, hk, rows, d]) * Double(scale)
    let kt = k.swappedAxes(-1, -2)
    var scores = matmul(qs, kt)  // [B, Hkv, groups * Lq, Lk]
    if causal {
        let row = (Tensor.arange(0, rows) % lq).reshaped([rows, 1]) + (lk - lq)
        let col = Tensor.arange(0, lk).reshaped([1, lk])
        scores = which(col .<= row, scores, -Double.infinity)
    }
    let p = softmax(scores, axis: -1)
    let go = g.reshaped([b, hk, rows, dv])
    let o = output.reshaped([b, hk, rows, dv])
    let dV = matmul(p.swappedAxes(-1, -2), go)  // [B, Hkv, Lk, Dv]: summed over the group's rows
    let dP = matmul(go, v.swappedAxes(-1, -2))  // [B, Hkv, rows, Lk]
    let delta = (go * o).sum(axes: [-1], keepDims: true)  // rowsum(dP * P) = rowsum(dO * O)
    let dS = p * (dP - delta)
    let dQ = (matmul(dS, k) * Double(scale)).reshaped([b, hq, lq, d])
    let dK = matmul(dS.swappedAxes(-1, -2), qs)  // [B, Hkv, Lk, D]
    return [dQ, dK, dV]
}
