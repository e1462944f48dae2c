// Low-rank adapters as mlx-lm has them (tuner/lora.py, tuner/dora.py):
// `LoRALinear` adds `scale · (dropout(x) A) B` to a frozen `Linear` or
// `QuantizedLinear` (QLoRA); `DoRALinear` also rescales each output row to a
// learned magnitude `m`. Parameter names are mlx-lm's (`linear.*`, `lora_a`
// [in, r], `lora_b` [r, out], `m` [out]), so adapter files are interchangeable.
// Both are `Linear` subclasses, so they fit a model's `Linear` properties; the
// wrapped layer's tensors stay under `linear`, none are duplicated.

import Tessera

/// The rank, scale (mlx-lm's `scale`, alpha) and dropout of an adapter.
public struct LoRAParameters: Sendable, Equatable, Codable {
    public var rank: Int
    public var scale: Float
    public var dropout: Float

    /// mlx-lm's defaults: rank 8, scale 20, no dropout.
    public init(rank: Int = 8, scale: Float = 20, dropout: Float = 0) {
        (self.rank, self.scale, self.dropout) = (rank, scale, dropout)
    }
}

/// Errors from building adapters.
public enum LoRAError: Error, CustomStringConvertible, Equatable {
    case invalidParameters(String)

    public var description: String {
        switch self {
        case .invalidParameters(let reason): return "invalid adapter parameters: \(reason)"
        }
    }
}

/// `linear(x) + scale · (dropout(x) A) B` with `linear` frozen; B starts at
/// zero, so at initialisation the layer computes exactly what `linear` does.
///
/// ```swift
/// let adapted = try LoRALinear(model.qProj, LoRAParameters(rank: 8, scale: 20))
/// ```
open class LoRALinear: Linear {
    @ModuleInfo public var linear: Linear
    @ModuleInfo public var dropout: Dropout
    @ParameterInfo(key: "lora_a") public var loraA: Tensor
    @ParameterInfo(key: "lora_b") public var loraB: Tensor
    public let scale: Float

    /// Wraps `linear` (frozen here) with A uniform in ±1/√in and B zero (mlx-lm).
    public init(_ linear: Linear, _ parameters: LoRAParameters = LoRAParameters(), key: Tensor? = nil) throws {
        guard parameters.rank > 0 else {
            throw LoRAError.invalidParameters("rank must be positive, got \(parameters.rank)")
        }
        guard parameters.dropout >= 0 && parameters.dropout < 1 else {
            throw LoRAError.invalidParameters("dropout must be in [0, 1), got \(parameters.dropout)")
        }
        let (outputs, inputs) = linear.dimensions
        let bound = 1 / Double(inputs).squareRoot()
        self.scale = parameters.scale
        _linear = ModuleInfo(wrappedValue: linear)
        _dropout = ModuleInfo(wrappedValue: Dropout(p: parameters.dropout))
        _loraA = ParameterInfo(
            wrappedValue: Random.uniform(low: -bound, high: bound, [inputs, parameters.rank], key: key), key: "lora_a")
        _loraB = ParameterInfo(wrappedValue: Tensor.zeros([parameters.rank, outputs]), key: "lora_b")
        super.init(wrapping: ())
        try linear.freeze()
    }

    /// The wrapped layer's (for a quantized one: packed) weight.
    public override var weight: Tensor {
        get { linear.weight }
        set { linear.weight = newValue }
    }

    public override var bias: Tensor? {
        get { linear.bias }
        set { linear.bias = newValue }
    }

    open override func callAsFunction(_ x: Tensor) -> Tensor {
        let y = linear(x)
        let z = matmul(matmul(dropout(x), loraA), loraB)
        return y + (scale * z).asType(x.dtype)
    }

    /// The wrapped layer with the adapter merged into its weight: dense for
    /// a dense base; for a quantized one quantized again in the same format,
    /// or left dense with `dequantize` (mlx-lm's `fuse(dequantize:)`).
    public func fused(dequantize: Bool = false) -> Linear {
        let w = linear.denseWeight
        let delta = (scale * matmul(loraB.T, loraA.T)).asType(w.dtype)
        return linear.withWeight(w + delta, dense: dequantize)
    }
}

/// DoRA: the LoRA-adapted weight's rows rescaled to a learned magnitude `m`
/// (initialised to the row norms of the base weight, so the layer starts
/// equal to the base). As in mlx-lm, the norm in the denominator is not
/// differentiated.
open class DoRALinear: LoRALinear {
    @ParameterInfo public var m: Tensor

    public override init(_ linear: Linear, _ parameters: LoRAParameters = LoRAParameters(), key: Tensor? = nil) throws {
        let norms = Linalg.norm(linear.denseWeight.asType(.float32), axes: [1])
        _m = ParameterInfo(wrappedValue: norms)
        try super.init(linear, parameters, key: key)
    }

    open override func callAsFunction(_ x: Tensor) -> Tensor {
        let w = linear.denseWeight
        let y = matmul(x, w.T)
        let z = matmul(matmul(dropout(x), loraA), loraB)
        let out = y + (scale * z).asType(x.dtype)
        let adapted = w + matmul(scale * loraB.T, loraA.T).asType(w.dtype)
        let denominator = stopGradient(Linalg.norm(adapted.asType(.float32), axes: [1]))
        let scaled = (m / denominator).asType(x.dtype) * out
        return linear.bias.map { scaled + $0 } ?? scaled
    }

    public override func fused(dequantize: Bool = false) -> Linear {
        let w = linear.denseWeight
        let adapted = w + (scale * matmul(loraB.T, loraA.T)).asType(w.dtype)
        let norms = Linalg.norm(adapted.asType(.float32), axes: [1])
        let rescaled = ((m / norms).expandedDimensions(axis: 1) * adapted.asType(.float32)).asType(w.dtype)
        return linear.withWeight(rescaled, dense: dequantize)
    }
}

/// LoRA on an embedding table (mlx-lm's `LoRAEmbedding`): rows
/// `embedding(ids) + scale · dropout(A[ids] B)` with A [count, r] uniform in
/// ±1/√count and B [r, dims] zero, so it starts equal to the table; used as
/// the tied output layer, `embedding.asLinear(x) + scale · (dropout(x) Bᵀ) Aᵀ`.
/// The wrapped table (dense or quantized) stays frozen under `embedding`.
open class LoRAEmbedding: Embedding {
    @ModuleInfo public var embedding: Embedding
    @ModuleInfo public var dropout: Dropout
    @ParameterInfo(key: "lora_a") public var loraA: Tensor
    @ParameterInfo(key: "lora_b") public var loraB: Tensor
    public let scale: Float

    public init(_ embedding: Embedding, _ parameters: LoRAParameters = LoRAParameters(), key: Tensor? = nil) throws {
        guard parameters.rank > 0 else {
            throw LoRAError.invalidParameters("rank must be positive, got \(parameters.rank)")
        }
        guard parameters.dropout >= 0 && parameters.dropout < 1 else {
            throw LoRAError.invalidParameters("dropout must be in [0, 1), got \(parameters.dropout)")
        }
        let (count, dimensions) = embedding.dimensions
        let bound = 1 / Double(count).squareRoot()
        self.scale = parameters.scale
        _embedding = ModuleInfo(wrappedValue: embedding)
        _dropout = ModuleInfo(wrappedValue: Dropout(p: parameters.dropout))
        _loraA = ParameterInfo(
            wrappedValue: Random.uniform(low: -bound, high: bound, [count, parameters.rank], key: key), key: "lora_a")
        _loraB = ParameterInfo(wrappedValue: Tensor.zeros([parameters.rank, dimensions]), key: "lora_b")
        super.init(wrapping: ())
        try embedding.freeze()
    }

    /// The wrapped table's (for a quantized one: packed) weight.
    public override var weight: Tensor {
        get { embedding.weight }
        set { embedding.weight = newValue }
    }

    open override func callAsFunction(_ x: Tensor) -> Tensor {
        let y = embedding(x)
        let z = dropout(matmul(loraA.take(x, axis: 0), loraB))
        return y + (scale * z).asType(y.dtype)
    }

    open override func asLinear(_ x: Tensor) -> Tensor {
        let y = embedding.asLinear(x)
        let z = matmul(matmul(dropout(x), loraB.T), loraA.T)
        return y + (scale * z).asType(y.dtype)
    }

    /// The table with the adapter merged: dense for a dense table; for a
    /// quantized one quantized again in its format unless `dequantize`.
    public func fused(dequantize: Bool = false) -> Embedding {
        let w = embedding.denseWeight
        let merged = w + (scale * matmul(loraA, loraB)).asType(w.dtype)
        if !dequantize, let q = embedding as? QuantizedEmbedding {
            return QuantizedEmbedding(Embedding(weight: merged), groupSize: q.groupSize, bits: q.bits)
        }
        return Embedding(weight: merged)
    }
}

extension Embedding {
    /// (count, dimensions) of the table, for a quantized one the unpacked width.
    public var dimensions: (count: Int, dimensions: Int) {
        if let adapter = self as? LoRAEmbedding { return adapter.embedding.dimensions }
        if let q = self as? QuantizedEmbedding { return (weight.dim(0), weight.dim(1) * 32 / q.bits) }
        return (weight.dim(0), weight.dim(-1))
    }

    /// The table as floats (dequantized for a quantized one).
    public var denseWeight: Tensor {
        if let adapter = self as? LoRAEmbedding { return adapter.embedding.denseWeight }
        if let q = self as? QuantizedEmbedding {
            return dequantize(q.weight, scales: q.scales, biases: q.biases, groupSize: q.groupSize, bits: q.bits)
        }
        return weight
    }
}

extension Linear {
    /// (outputs, inputs) of the layer, for a quantized one the unpacked input size.
    public var dimensions: (outputs: Int, inputs: Int) {
        if let adapter = self as? LoRALinear { return adapter.linear.dimensions }
        if let q = self as? QuantizedLinear { return (weight.dim(0), weight.dim(1) * 32 / q.bits) }
        return (weight.dim(0), weight.dim(-1))
    }

    /// The weight as floats (dequantized for a quantized layer).
    public var denseWeight: Tensor {
        if let adapter = self as? LoRALinear { return adapter.linear.denseWeight }
        if let q = self as? QuantizedLinear {
            return dequantize(q.weight, scales: q.scales, biases: q.biases, groupSize: q.groupSize, bits: q.bits)
        }
        return weight
    }

    /// A layer of this one's kind (plain, or quantized the same way unless
    /// `dense`) over `weight`, keeping the bias.
    func withWeight(_ weight: Tensor, dense: Bool = false) -> Linear {
        if !dense, let q = self as? QuantizedLinear {
            return QuantizedLinear(Linear(weight: weight, bias: bias), groupSize: q.groupSize, bits: q.bits)
        }
        return Linear(weight: weight, bias: bias)
    }
}
