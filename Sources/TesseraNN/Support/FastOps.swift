// The fused ops every layer and loss goes through, in one place: softmax,
// logSoftmax and `Fast.rmsNorm/layerNorm/rope/scaledDotProductAttention`
// (primitives with fused CPU kernels and differentiable fallbacks).

import Tessera

func nnSoftmax(_ x: Tensor, axis: Int = -1) -> Tensor { softmax(x, axis: axis) }

func nnLogSoftmax(_ x: Tensor, axis: Int = -1) -> Tensor { logSoftmax(x, axis: axis) }

func nnRMSNorm(_ x: Tensor, weight: Tensor?, eps: Float) -> Tensor { Fast.rmsNorm(x, weight: weight, eps: eps) }

func nnLayerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    Fast.layerNorm(x, weight: weight, bias: bias, eps: eps)
}

func nnRoPE(_ x: Tensor, dimensions: Int, traditional: Bool, base: Float, scale: Float, offset: Int) -> Tensor {
    Fast.rope(x, dimensions: dimensions, traditional: traditional, base: base, scale: scale, offset: offset)
}

/// `mask` additive, or bool (true keeps a score), broadcastable to [B, H, Lq, Lk].
func nnScaledDotProductAttention(
    queries q: Tensor, keys k: Tensor, values v: Tensor, scale: Float, mask: Tensor?
) -> Tensor {
    Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: mask.map { .array($0) } ?? .none)
}
