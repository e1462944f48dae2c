// A projection weight, dense or in MLX's affine quantized format, applied as
// `x @ Wᵀ` (Linear layout: W is [out, in]).

import Tessera

public enum Weight: Sendable {
    case dense(Tensor)
    case quantized(QuantizedWeight)

    /// `x @ Wᵀ`.
    public func apply(_ x: Tensor) -> Tensor {
        switch self {
        case .dense(let w): return matmul(x, w.T)
        case .quantized(let q):
            return quantizedMatmul(
                x, q.weight, scales: q.scales, biases: q.biases, transpose: true, groupSize: q.groupSize, bits: q.bits)
        }
    }

    /// Rows `ids` (any shape) as dense float32 vectors: an embedding lookup.
    public func rows(_ ids: Tensor) -> Tensor {
        switch self {
        case .dense(let w): return w.take(ids, axis: 0).asType(.float32)
        case .quantized(let q):
            let rows = QuantizedWeight(
                weight: q.weight.take(ids, axis: 0), scales: q.scales.take(ids, axis: 0),
                biases: q.biases.take(ids, axis: 0), groupSize: q.groupSize, bits: q.bits)
            return rows.dequantized()
        }
    }

    /// [out, in] in dense terms.
    public var shape: [Int] {
        switch self {
        case .dense(let w): return w.shape
        case .quantized(let q): return Array(q.weight.shape.dropLast()) + [q.weight.dim(-1) * 32 / q.bits]
        }
    }

    /// The same weight with float32 scales and biases (exact for float16 ones), so
    /// products accumulate and round in float32 like a float32 reference.
    var withFloat32Parameters: Weight {
        guard case .quantized(let q) = self else { return self }
        return .quantized(
            QuantizedWeight(
                weight: q.weight, scales: q.scales.asType(.float32), biases: q.biases.asType(.float32),
                groupSize: q.groupSize, bits: q.bits))
    }
}
