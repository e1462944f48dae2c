// The products of a model's Linear layers on the inference path. Layers that
// read the same input (q/k/v; gate/up) run as one product over their weights
// stacked along the outputs: one pass over the input and one job split over
// the pool (alone, the small k and v projections of a decode step ran on one
// thread); the outputs are views of the product's columns. The layers stay
// separate modules with their own Hugging Face names: the stacked weight is
// derived from them and kept, with the layers' biases, while they are the
// same layer objects holding the same tensors. That is checked only when
// `Module.generation` says some module was written, so a decode step reads
// no module property here. At load the layers' weights become views of the
// stacked one, so the model holds them once. One layer (o_proj, phi3's
// fused qkv_proj) is kept the same way, without stacking.

import Synchronization
import Tessera
import TesseraNN

final class ProjectionStack: Sendable {
    private enum Format: Sendable {
        case dense
        case quantized(groupSize: Int, bits: Int)
    }

    /// Layers held only to compare them by identity (held, so that no new
    /// layer can take a freed one's address).
    private final class Layers: @unchecked Sendable {
        let layers: [Linear]
        init(_ layers: [Linear]) { self.layers = layers }
    }

    /// A class, so that a decode step takes it out of the lock with one retain.
    private final class Stack: Sendable {
        /// The layers and the tensors it was built from: weights (and
        /// quantization tensors), then biases.
        let layers: Layers
        let sources: [Tensor]
        let format: Format
        /// The (stacked) weight (dense), or weight, scales and biases (quantized).
        let tensors: [Tensor]
        /// Each layer's bias, added to its columns.
        let biases: [Tensor?]
        /// Where the product's columns split into the layers' outputs.
        let bounds: [Int]

        init(layers: Layers, sources: [Tensor], format: Format, tensors: [Tensor], biases: [Tensor?], bounds: [Int]) {
            (self.layers, self.sources, self.format, self.tensors) = (layers, sources, format, tensors)
            (self.biases, self.bounds) = (biases, bounds)
        }
    }

    /// The stack, and `Module.generation` when its layers were last found to be these.
    private let kept = Mutex<(stack: Stack, generation: UInt64)?>(nil)

    /// Each layer's output, `layers()[i](x)`; a single layer's output split
    /// into `sizes` (phi3's fused projections), or whole without `sizes`.
    /// `layers` is read only when a module changed since the last call.
    func callAsFunction(_ layers: () -> [Linear], sizes: [Int] = [], _ x: Tensor) -> [Tensor] {
        guard let stack = stack(layers) else {
            let layers = layers()
            guard layers.count == 1 else { return layers.map { $0(x) } }
            return layers[0](x).split(indices: Self.bounds(sizes), axis: -1)
        }
        let product: Tensor
        switch stack.format {
        case .dense: product = matmul(x, stack.tensors[0].T)
        case let .quantized(groupSize, bits):
            product = quantizedMatmul(
                x, stack.tensors[0], scales: stack.tensors[1], biases: stack.tensors[2], transpose: true,
                groupSize: groupSize, bits: bits)
        }
        if stack.biases.count == 1 {
            let whole = stack.biases[0].map { product + $0 } ?? product
            return sizes.count > 1 ? whole.split(indices: Self.bounds(sizes), axis: -1) : [whole]
        }
        let parts = product.split(indices: stack.bounds, axis: -1)
        return zip(parts, stack.biases).map { part, bias in bias.map { part + $0 } ?? part }
    }

    /// The stacked quantized weight (weight, scales, biases), its format and
    /// the layers' biases with the column where each starts, for a decode
    /// step replayed outside the graph (`DecodePlan`); nil when the layers
    /// run as modules or are not quantized.
    func quantized(_ layers: () -> [Linear]) -> (
        tensors: [Tensor], groupSize: Int, bits: Int, biases: [(column: Int, bias: Tensor)]
    )? {
        guard let stack = stack(layers), case let .quantized(groupSize, bits) = stack.format else { return nil }
        let starts = [0] + stack.bounds
        let biases = zip(starts, stack.biases).compactMap { start, bias in bias.map { (start, $0) } }
        return (stack.tensors, groupSize, bits, biases)
    }

    /// Stacks the layers' weights now and, for several layers, makes each
    /// layer's weight a view of the stack (one copy of the weights in
    /// memory), when their formats agree.
    func share(_ layers: [Linear]) {
        eval(Self.sources(layers))
        guard layers.count > 1, let stack = stack({ layers }) else { return }
        let rows = stack.bounds
        let pieces = stack.tensors.map { $0.split(indices: rows, axis: 0) }
        for (i, layer) in layers.enumerated() {
            layer.weight = pieces[0][i]
            if let q = layer as? QuantizedLinear {
                q.scales = pieces[1][i]
                q.biases = pieces[2][i]
            }
        }
        let generation = Module.generation
        let views = Self.sources(layers)
        let shared = Stack(
            layers: stack.layers, sources: views, format: stack.format, tensors: stack.tensors, biases: stack.biases,
            bounds: rows)
        kept.withLock { $0 = (shared, generation) }
    }

    /// The kept stack while no module was written since it was last checked,
    /// or when the layers and their tensors are still the ones it was built
    /// from; else a new one, unless a transform is tracing or a tensor is
    /// still lazy (the layers then run as modules, so gradients reach them
    /// and nothing traced is kept) or the formats differ.
    private func stack(_ readLayers: () -> [Linear]) -> Stack? {
        let generation = Module.generation
        if let hit = kept.withLock({ $0?.generation == generation ? $0?.stack : nil }) { return hit }
        let layers = readLayers()
        let sources = Self.sources(layers)
        if let hit = kept.withLock({ kept -> Stack? in
            guard let found = kept?.stack, found.layers.layers.count == layers.count,
                found.sources.count == sources.count, zip(found.layers.layers, layers).allSatisfy({ $0 === $1 }),
                zip(found.sources, sources).allSatisfy({ $0.isIdentical(to: $1) })
            else { return nil }
            kept = (found, generation)
            return found
        }) {
            return hit
        }
        guard !Compile.isTracing, sources.allSatisfy(\.isEvaluated), let format = Self.format(layers) else {
            return nil
        }
        let perLayer = { if case .quantized = format { 3 } else { 1 } }()
        let weights = sources.prefix(perLayer * layers.count)
        let tensors =
            layers.count == 1
            ? Array(weights)
            : (0..<perLayer).map { j in
                concatenated(stride(from: j, to: weights.count, by: perLayer).map { weights[$0] }, axis: 0)
            }
        eval(tensors)
        let stack = Stack(
            layers: Layers(layers), sources: sources, format: format, tensors: tensors, biases: layers.map(\.bias),
            bounds: Self.bounds(layers.map { $0.weight.dim(0) }))
        kept.withLock { $0 = (stack, generation) }
        return stack
    }

    /// What identifies the stack: each layer's weight (and quantization
    /// tensors), then the layers' biases.
    private static func sources(_ layers: [Linear]) -> [Tensor] {
        layers.flatMap { layer -> [Tensor] in
            guard let q = layer as? QuantizedLinear else { return [layer.weight] }
            return [q.weight, q.scales, q.biases]
        } + layers.compactMap(\.bias)
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
