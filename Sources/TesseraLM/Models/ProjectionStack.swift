// Linear layers that read the same input (q/k/v; gate/up), applied as one
// product over their weights stacked along the outputs: one pass over the
// input and one job split over the pool (alone, the small k and v
// projections of a decode step ran on one thread). The outputs are views of
// the product's columns. The layers stay separate modules with their own
// Hugging Face names; the stacked weight is derived from them and rebuilt
// when they change (DerivedTensors). At load their weights become views of
// the stacked one, so the model holds them once.

import Tessera
import TesseraNN

final class ProjectionStack: Sendable {
    private let stacked = DerivedTensors()

    /// `layers[i](x)` for each layer; one layer (phi3's qkv_proj) is split into `sizes`.
    func callAsFunction(_ layers: [Linear], sizes: [Int], _ x: Tensor) -> [Tensor] {
        if layers.count == 1 { return layers[0](x).split(indices: Self.bounds(sizes), axis: -1) }
        guard let stack = stack(layers) else { return layers.map { $0(x) } }
        let product: Tensor
        switch stack.format {
        case .dense: product = matmul(x, stack.tensors[0].T)
        case let .quantized(groupSize, bits):
            product = quantizedMatmul(
                x, stack.tensors[0], scales: stack.tensors[1], biases: stack.tensors[2], transpose: true,
                groupSize: groupSize, bits: bits)
        }
        let parts = product.split(indices: Self.bounds(layers.map { $0.weight.dim(0) }), axis: -1)
        return zip(parts, layers).map { part, layer in layer.bias.map { part + $0 } ?? part }
    }

    /// Stacks the layers' weights now and makes each layer's weight a view of
    /// the stack (one copy of the weights in memory), when their formats agree.
    func share(_ layers: [Linear]) {
        guard layers.count > 1 else { return }
        eval(Self.sources(layers))
        guard let stack = stack(layers) else { return }
        let rows = Self.bounds(layers.map { $0.weight.dim(0) })
        let pieces = stack.tensors.map { $0.split(indices: rows, axis: 0) }
        for (i, layer) in layers.enumerated() {
            layer.weight = pieces[0][i]
            if let q = layer as? QuantizedLinear {
                q.scales = pieces[1][i]
                q.biases = pieces[2][i]
            }
        }
        stacked.keep(stack.tensors, from: Self.sources(layers))
    }

    private enum Format {
        case dense
        case quantized(groupSize: Int, bits: Int)
    }

    private func stack(_ layers: [Linear]) -> (format: Format, tensors: [Tensor])? {
        guard let format = Self.format(layers) else { return nil }
        let tensors = stacked.values(from: Self.sources(layers)) { sources in
            let perLayer = sources.count / layers.count
            return (0..<perLayer).map { j in
                concatenated(stride(from: j, to: sources.count, by: perLayer).map { sources[$0] }, axis: 0)
            }
        }
        guard let tensors, !tensors.isEmpty else { return nil }
        return (format, tensors)
    }

    /// What identifies the stack: each layer's weight (and quantization tensors).
    private static func sources(_ layers: [Linear]) -> [Tensor] {
        layers.flatMap { layer -> [Tensor] in
            guard let q = layer as? QuantizedLinear else { return [layer.weight] }
            return [q.weight, q.scales, q.biases]
        }
    }

    /// The common format of plain `Linear` / `QuantizedLinear` layers (not
    /// subclasses such as adapters, whose products differ), or nil.
    private static func format(_ layers: [Linear]) -> Format? {
        guard let first = layers.first else { return nil }
        if type(of: first) == Linear.self {
            let w = first.weight
            let same = layers.allSatisfy {
                type(of: $0) == Linear.self && $0.weight.dtype == w.dtype && $0.weight.dim(-1) == w.dim(-1)
            }
            return same ? .dense : nil
        }
        guard type(of: first) == QuantizedLinear.self, let q = first as? QuantizedLinear else { return nil }
        let same = layers.allSatisfy { layer in
            guard type(of: layer) == QuantizedLinear.self, let l = layer as? QuantizedLinear else { return false }
            return l.groupSize == q.groupSize && l.bits == q.bits && l.weight.dtype == q.weight.dtype
                && l.scales.dtype == q.scales.dtype && l.biases.dtype == q.biases.dtype
                && l.weight.dim(-1) == q.weight.dim(-1)
        }
        return same ? .quantized(groupSize: q.groupSize, bits: q.bits) : nil
    }

    /// Split points after each size but the last.
    static func bounds(_ sizes: [Int]) -> [Int] {
        var bounds: [Int] = []
        for size in sizes.dropLast() { bounds.append((bounds.last ?? 0) + size) }
        return bounds
    }
}
