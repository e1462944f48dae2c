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
            // float32 scales: the rows dequantize in float32 whatever the stored scales' dtype.
            let rows = QuantizedWeight(
                weight: q.weight.take(ids, axis: 0), scales: q.scales.take(ids, axis: 0).asType(.float32),
                biases: q.biases.take(ids, axis: 0).asType(.float32), groupSize: q.groupSize, bits: q.bits)
            return dequantize(rows.weight, scales: rows.scales, biases: rows.biases, groupSize: q.groupSize, bits: q.bits)
                .asType(.float32)
        }
    }

    /// `weights` stacked along the outputs (one product computes all of them),
    /// evaluated; nil when their formats differ (dtype, group size, bits).
    static func stacked(_ weights: [Weight]) -> Weight? {
        switch weights.first {
        case .dense(let first):
            let dense = weights.compactMap { w -> Tensor? in
                guard case .dense(let t) = w, t.dtype == first.dtype, t.dim(-1) == first.dim(-1) else { return nil }
                return t
            }
            guard dense.count == weights.count else { return nil }
            let w = concatenated(dense, axis: 0)
            eval(w)
            return .dense(w)
        case .quantized(let first):
            let parts = weights.compactMap { w -> QuantizedWeight? in
                guard case .quantized(let q) = w, q.groupSize == first.groupSize, q.bits == first.bits,
                    q.weight.dtype == first.weight.dtype, q.scales.dtype == first.scales.dtype,
                    q.biases.dtype == first.biases.dtype, q.weight.dim(-1) == first.weight.dim(-1)
                else { return nil }
                return q
            }
            guard parts.count == weights.count else { return nil }
            let q = QuantizedWeight(
                weight: concatenated(parts.map(\.weight), axis: 0), scales: concatenated(parts.map(\.scales), axis: 0),
                biases: concatenated(parts.map(\.biases), axis: 0), groupSize: first.groupSize, bits: first.bits)
            eval(q.weight, q.scales, q.biases)
            return .quantized(q)
        case nil:
            return nil
        }
    }

    /// The values as a dense float32 tensor `[out, in]`.
    var dense: Tensor {
        switch self {
        case .dense(let w): return w.asType(.float32)
        case .quantized(let q):
            return dequantize(
                q.weight, scales: q.scales.asType(.float32), biases: q.biases.asType(.float32), groupSize: q.groupSize,
                bits: q.bits)
        }
    }

    /// [out, in] in dense terms.
    public var shape: [Int] {
        switch self {
        case .dense(let w): return w.shape
        case .quantized(let q): return Array(q.weight.shape.dropLast()) + [q.weight.dim(-1) * 32 / q.bits]
        }
    }
}
