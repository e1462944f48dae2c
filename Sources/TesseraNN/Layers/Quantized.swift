// Quantized layers in MLX's affine format (`weight` uint32-packed codes,
// `scales`, `biases`, optional `bias`), and `quantize(model:)`, which swaps
// every Linear and Embedding (that the predicate accepts) for its quantized
// form. As in MLX, quantized layers are frozen: their parameters are not
// trained, and unfreezing leaves them frozen.

import Tessera

/// `x Wᵀ + b` with W stored quantized (`quantizedMatmul`).
///
/// ```swift
/// let q = QuantizedLinear(Linear(512, 256), groupSize: 64, bits: 4)
/// let y = q(x)
/// ```
open class QuantizedLinear: Linear {
    @ParameterInfo public var scales: Tensor
    @ParameterInfo public var biases: Tensor
    public let groupSize: Int, bits: Int

    /// Quantizes `linear`'s weight (its bias is kept as it is).
    public init(_ linear: Linear, groupSize: Int = 64, bits: Int = 4) {
        let (wq, s, b) = quantize(linear.weight, groupSize: groupSize, bits: bits)
        scales = s
        biases = b
        (self.groupSize, self.bits) = (groupSize, bits)
        super.init(weight: wq, bias: linear.bias)
        freezeAll()
    }

    /// A layer over weights already in MLX's affine format (`weight` packed
    /// [out, in·bits/32], `scales`/`biases` [out, in/groupSize]), e.g. read
    /// from an mlx-community checkpoint or a GGUF file.
    public init(weight: Tensor, scales: Tensor, biases: Tensor, bias: Tensor? = nil, groupSize: Int, bits: Int) {
        self.scales = scales
        self.biases = biases
        (self.groupSize, self.bits) = (groupSize, bits)
        super.init(weight: weight, bias: bias)
        freezeAll()
    }

    /// A randomly initialised layer, quantized.
    public convenience init(
        _ inputDimensions: Int, _ outputDimensions: Int, bias: Bool = true, groupSize: Int = 64, bits: Int = 4
    ) {
        self.init(Linear(inputDimensions, outputDimensions, bias: bias), groupSize: groupSize, bits: bits)
    }

    open override func unfreeze(recursive: Bool = true, keys: [String]? = nil, strict: Bool = false) throws {
        try super.unfreeze(recursive: recursive, keys: keys, strict: strict)
        try freeze(recursive: false)
    }

    open override func callAsFunction(_ x: Tensor) -> Tensor {
        let y = quantizedMatmul(
            x, weight, scales: scales, biases: biases, transpose: true, groupSize: groupSize, bits: bits)
        return bias.map { y + $0 } ?? y
    }
}

/// An embedding table stored quantized; rows are dequantized on lookup.
open class QuantizedEmbedding: Embedding {
    @ParameterInfo public var scales: Tensor
    @ParameterInfo public var biases: Tensor
    public let groupSize: Int, bits: Int

    public init(_ embedding: Embedding, groupSize: Int = 64, bits: Int = 4) {
        let (wq, s, b) = quantize(embedding.weight, groupSize: groupSize, bits: bits)
        scales = s
        biases = b
        (self.groupSize, self.bits) = (groupSize, bits)
        super.init(weight: wq)
        freezeAll()
    }

    /// A table already in MLX's affine format (`weight` packed [count, dimensions·bits/32]).
    public init(weight: Tensor, scales: Tensor, biases: Tensor, groupSize: Int, bits: Int) {
        self.scales = scales
        self.biases = biases
        (self.groupSize, self.bits) = (groupSize, bits)
        super.init(weight: weight)
        freezeAll()
    }

    public convenience init(_ count: Int, _ dimensions: Int, groupSize: Int = 64, bits: Int = 4) {
        self.init(Embedding(count, dimensions), groupSize: groupSize, bits: bits)
    }

    open override func unfreeze(recursive: Bool = true, keys: [String]? = nil, strict: Bool = false) throws {
        try super.unfreeze(recursive: recursive, keys: keys, strict: strict)
        try freeze(recursive: false)
    }

    open override func callAsFunction(_ x: Tensor) -> Tensor {
        let flat = x.flattened()
        let rows = dequantize(
            weight.take(flat, axis: 0), scales: scales.take(flat, axis: 0), biases: biases.take(flat, axis: 0),
            groupSize: groupSize, bits: bits)
        return rows.reshaped(x.shape + [-1])
    }

    open override func asLinear(_ x: Tensor) -> Tensor {
        quantizedMatmul(x, weight, scales: scales, biases: biases, transpose: true, groupSize: groupSize, bits: bits)
    }
}

extension Module {
    /// Freezes every local parameter (quantized layers are never trained).
    fileprivate func freezeAll() {
        // Without keys nothing can be unknown, so this cannot throw.
        try? freeze(recursive: false)
    }
}

/// Replaces, in place, every `Linear` and `Embedding` of `model` whose input
/// size is a multiple of `groupSize` and that `predicate` (given the dotted
/// path and the module) accepts with `QuantizedLinear` / `QuantizedEmbedding`
/// (MLX's `nn.quantize`).
///
/// ```swift
/// try quantize(model: model, groupSize: 64, bits: 4) { path, _ in !path.hasPrefix("lm_head") }
/// ```
public func quantize(
    model: Module, groupSize: Int = 64, bits: Int = 4, predicate: ((String, Module) -> Bool)? = nil
) throws {
    var replacements: [String: Module] = [:]
    for (path, module) in model.namedModules() where !path.isEmpty {
        if module is QuantizedLinear || module is QuantizedEmbedding { continue }
        let weight: Tensor
        if let l = module as? Linear {
            weight = l.weight
        } else if let e = module as? Embedding {
            weight = e.weight
        } else {
            continue
        }
        guard weight.dim(-1) % groupSize == 0, predicate?(path, module) ?? true else { continue }
        if let l = module as? Linear {
            replacements[path] = QuantizedLinear(l, groupSize: groupSize, bits: bits)
        } else if let e = module as? Embedding {
            replacements[path] = QuantizedEmbedding(e, groupSize: groupSize, bits: bits)
        }
    }
    try model.update(modules: replacements)
}
