// TEMPORARY compositions of the fused ops coming from branch ops-numerics
// (softmax, logSoftmax, Fast.rmsNorm/layerNorm/rope/scaledDotProductAttention).
// Every layer and loss calls these, so switching to the fused op is a
// one-line change in each function once it is on main.

import Tessera

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// softmax(x) along `axis`. Replace with `softmax(x, axis:)`.
func nnSoftmax(_ x: Tensor, axis: Int = -1) -> Tensor {
    let shifted = x - stopGradient(x.max(axis: axis, keepDims: true))
    let e = exp(shifted)
    return e / e.sum(axis: axis, keepDims: true)
}

/// log(softmax(x)) along `axis`. Replace with `logSoftmax(x, axis:)`.
func nnLogSoftmax(_ x: Tensor, axis: Int = -1) -> Tensor {
    x - x.logSumExp(axis: axis, keepDims: true)
}

/// x * rsqrt(mean(x², -1) + eps) * weight. Replace with `Fast.rmsNorm`.
func nnRMSNorm(_ x: Tensor, weight: Tensor?, eps: Float) -> Tensor {
    let y = x * rsqrt(square(x).mean(axis: -1, keepDims: true) + eps)
    return weight.map { y * $0 } ?? y
}

/// (x - mean) * rsqrt(var + eps) * weight + bias over the last axis. Replace with `Fast.layerNorm`.
func nnLayerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    let mean = x.mean(axis: -1, keepDims: true)
    let centered = x - mean
    let variance = square(centered).mean(axis: -1, keepDims: true)
    var y = centered * rsqrt(variance + eps)
    if let weight { y = y * weight }
    if let bias { y = y + bias }
    return y
}

/// Rotary embedding of x [..., L, D] (MLX `fast.rope` semantics). Replace with `Fast.rope`.
func nnRoPE(
    _ x: Tensor, dimensions: Int, traditional: Bool, base: Float, scale: Float, offset: Int
) -> Tensor {
    let l = x.dim(-2)
    let half = dimensions / 2
    let positions = (Tensor.arange(Double(offset), Double(offset + l)) * scale).reshaped([l, 1])
    let exponents = Tensor.arange(0, Double(half)) * Tensor(Float(-2) / Float(dimensions) * Float(Glibc.log(Double(base))))
    let theta = positions * exp(exponents).reshaped([1, half])  // [L, half]
    let cosT = cos(theta).asType(x.dtype), sinT = sin(theta).asType(x.dtype)
    let d = x.dim(-1)
    let rotated = x[.ellipsis, 0..<dimensions]
    let rest: Tensor? = dimensions < d ? x[.ellipsis, dimensions...] : nil
    let out: Tensor
    if traditional {
        let pairs = rotated.reshaped(Array(rotated.shape.dropLast()) + [half, 2])
        let x1 = pairs[.ellipsis, 0], x2 = pairs[.ellipsis, 1]
        let r1 = x1 * cosT - x2 * sinT, r2 = x1 * sinT + x2 * cosT
        out = stacked([r1, r2], axis: -1).reshaped(rotated.shape)
    } else {
        let x1 = rotated[.ellipsis, 0..<half], x2 = rotated[.ellipsis, half...]
        out = concatenated([x1 * cosT - x2 * sinT, x1 * sinT + x2 * cosT], axis: -1)
    }
    return rest.map { concatenated([out, $0], axis: -1) } ?? out
}

/// softmax(q kᵀ * scale + mask) v over [B, H, L, D]; `mask` additive or
/// bool (true keeps). Replace with `Fast.scaledDotProductAttention`.
func nnScaledDotProductAttention(
    queries q: Tensor, keys k: Tensor, values v: Tensor, scale: Float, mask: Tensor?
) -> Tensor {
    var scores = matmul(q * scale, k.swappedAxes(-1, -2))
    if let mask {
        if mask.dtype == .bool {
            scores = which(mask, scores, Tensor(-Float.infinity).asType(scores.dtype))
        } else {
            scores = scores + mask.asType(scores.dtype)
        }
    }
    return matmul(nnSoftmax(scores, axis: -1), v)
}
