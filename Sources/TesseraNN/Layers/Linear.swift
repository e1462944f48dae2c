// Linear, Identity, Embedding and Sequential. Weights are [out, in] as in MLX
// and torch; `Linear` computes x Wᵀ + b.

import Tessera

/// `x Wᵀ + b` with weight [outputDimensions, inputDimensions], initialised
/// uniform in ±1/√inputDimensions (weight and bias), as in MLX.
///
/// ```swift
/// let l = Linear(64, 128)
/// let y = l(x)   // [..., 64] -> [..., 128]
/// ```
open class Linear: Module, UnaryLayer {
    @ParameterInfo public var weight: Tensor
    @ParameterInfo public var bias: Tensor?

    public init(_ inputDimensions: Int, _ outputDimensions: Int, bias: Bool = true) {
        let scale = 1 / Double(inputDimensions).squareRoot()
        weight = Init.uniform([outputDimensions, inputDimensions], low: -scale, high: scale)
        self.bias = bias ? Init.uniform([outputDimensions], low: -scale, high: scale) : nil
    }

    /// A layer over given tensors (weight [out, in], bias [out]).
    public init(weight: Tensor, bias: Tensor? = nil) {
        self.weight = weight
        self.bias = bias
    }

    /// For layers that keep their weights in a wrapped layer (adapters): no
    /// parameters of their own here; they override `weight` and `bias`.
    init(wrapping: Void) {
        _weight = ParameterInfo(key: "weight")
        _bias = ParameterInfo(key: "bias")
    }

    open func callAsFunction(_ x: Tensor) -> Tensor {
        let y = matmul(x, weight.T)
        return bias.map { y + $0 } ?? y
    }
}

/// Returns its input.
public final class Identity: Module, UnaryLayer {
    public override init() {}
    public func callAsFunction(_ x: Tensor) -> Tensor { x }
}

/// A lookup table of `count` vectors of `dimensions`, initialised normal with
/// std 1/√dimensions (MLX).
open class Embedding: Module, UnaryLayer {
    @ParameterInfo public var weight: Tensor

    public init(_ count: Int, _ dimensions: Int) {
        weight = Init.normal([count, dimensions], std: 1 / Double(dimensions).squareRoot())
    }

    public init(weight: Tensor) { self.weight = weight }

    /// For layers that keep their table in a wrapped layer (adapters): no
    /// parameter of their own here; they override `weight`.
    init(wrapping: Void) {
        _weight = ParameterInfo(key: "weight")
    }

    /// The rows of the table at the integer indices `x`: shape x.shape + [dimensions].
    open func callAsFunction(_ x: Tensor) -> Tensor { weight.take(x, axis: 0) }

    /// `x Wᵀ`: the table used as an output projection (tied embeddings).
    open func asLinear(_ x: Tensor) -> Tensor { matmul(x, weight.T) }
}

/// Layers applied in order.
///
/// ```swift
/// let mlp = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
/// ```
public final class Sequential: Module, UnaryLayer {
    @ModuleInfo public var layers: [any UnaryLayer]

    public init(_ layers: [any UnaryLayer]) { self.layers = layers }
    public convenience init(_ layers: any UnaryLayer...) { self.init(layers) }

    public func callAsFunction(_ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }
}
