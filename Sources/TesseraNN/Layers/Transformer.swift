// Multi-head attention and transformer encoder/decoder layers, MLX's
// definitions (pre-norm by default; relu MLP of 4·dims).

import Tessera

/// Multi-head attention with query/key/value/output projections
/// (`query_proj`, `key_proj`, `value_proj`, `out_proj`; no bias by default, as MLX).
///
/// ```swift
/// let mha = MultiHeadAttention(dimensions: 64, heads: 4)
/// let mask = MultiHeadAttention.createAdditiveCausalMask(10)
/// let y = mha(x, keys: x, values: x, mask: mask)   // x: [B, 10, 64]
/// ```
open class MultiHeadAttention: Module {
    @ModuleInfo(key: "query_proj") public var queryProjection: Linear
    @ModuleInfo(key: "key_proj") public var keyProjection: Linear
    @ModuleInfo(key: "value_proj") public var valueProjection: Linear
    @ModuleInfo(key: "out_proj") public var outProjection: Linear
    public let heads: Int

    public init(
        dimensions: Int, heads: Int, queryInputDimensions: Int? = nil, keyInputDimensions: Int? = nil,
        valueInputDimensions: Int? = nil, valueDimensions: Int? = nil, valueOutputDimensions: Int? = nil,
        bias: Bool = false
    ) {
        precondition(
            dimensions % heads == 0, "[MultiHeadAttention] \(heads) heads must divide \(dimensions) dimensions")
        let keyInput = keyInputDimensions ?? dimensions
        let valueDims = valueDimensions ?? dimensions
        _queryProjection.wrappedValue = Linear(queryInputDimensions ?? dimensions, dimensions, bias: bias)
        _keyProjection.wrappedValue = Linear(keyInput, dimensions, bias: bias)
        _valueProjection.wrappedValue = Linear(valueInputDimensions ?? keyInput, valueDims, bias: bias)
        _outProjection.wrappedValue = Linear(valueDims, valueOutputDimensions ?? dimensions, bias: bias)
        self.heads = heads
    }

    /// Attention of `queries` [B, Lq, D] over `keys`/`values` [B, Lk, D];
    /// `mask` additive (or bool: true keeps), broadcastable to [B, heads, Lq, Lk].
    open func callAsFunction(_ queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor? = nil) -> Tensor {
        func split(_ t: Tensor) -> Tensor {
            let s = t.shape
            return t.reshaped(Array(s.dropLast()) + [heads, s[s.count - 1] / heads]).transposed(axes: [0, 2, 1, 3])
        }
        let q = split(queryProjection(queries)), k = split(keyProjection(keys)), v = split(valueProjection(values))
        let scale = 1 / Float(q.dim(-1)).squareRoot()
        let o = nnScaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: mask)
        let merged = o.transposed(axes: [0, 2, 1, 3])
        return outProjection(merged.reshaped(Array(merged.shape.dropLast(2)) + [-1]))
    }

    /// [n, n] with the dtype's lowest value above the diagonal, 0 elsewhere.
    public static func createAdditiveCausalMask(_ n: Int, dtype: DType = .float32) -> Tensor {
        let i = Tensor.arange(0, n)
        let upper = i.reshaped([n, 1]) .< i.reshaped([1, n])
        return upper.asType(dtype) * lowestValue(dtype)
    }
}

func lowestValue(_ dtype: DType) -> Float {
    switch dtype {
    case .float16: return -65504
    case .bfloat16: return -3.3895313892515355e38
    default: return -Float.greatestFiniteMagnitude
    }
}

/// Self-attention and an MLP, each with a residual connection and LayerNorm
/// (before each block with `normFirst`, the default, else after).
open class TransformerEncoderLayer: Module {
    @ModuleInfo public var attention: MultiHeadAttention
    @ModuleInfo public var ln1: LayerNorm
    @ModuleInfo public var ln2: LayerNorm
    @ModuleInfo public var linear1: Linear
    @ModuleInfo public var linear2: Linear
    @ModuleInfo public var dropout1: Dropout
    @ModuleInfo public var dropout2: Dropout
    let activation: (Tensor) -> Tensor
    public let normFirst: Bool

    public init(
        dimensions: Int, heads: Int, mlpDimensions: Int? = nil, dropout: Float = 0,
        activation: @escaping (Tensor) -> Tensor = relu, normFirst: Bool = true
    ) {
        let mlp = mlpDimensions ?? 4 * dimensions
        attention = MultiHeadAttention(dimensions: dimensions, heads: heads)
        ln1 = LayerNorm(dimensions: dimensions)
        ln2 = LayerNorm(dimensions: dimensions)
        linear1 = Linear(dimensions, mlp)
        linear2 = Linear(mlp, dimensions)
        dropout1 = Dropout(p: dropout)
        dropout2 = Dropout(p: dropout)
        self.activation = activation
        self.normFirst = normFirst
    }

    open func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        if normFirst {
            var y = ln1(x)
            let h = x + dropout1(attention(y, keys: y, values: y, mask: mask))
            y = linear2(dropout2(activation(linear1(ln2(h)))))
            return h + y
        }
        let h = ln1(x + dropout1(attention(x, keys: x, values: x, mask: mask)))
        return ln2(h + linear2(dropout2(activation(linear1(h)))))
    }
}

/// Self-attention, cross-attention over `memory`, and an MLP, each with a
/// residual connection and LayerNorm.
open class TransformerDecoderLayer: Module {
    @ModuleInfo(key: "self_attention") public var selfAttention: MultiHeadAttention
    @ModuleInfo(key: "cross_attention") public var crossAttention: MultiHeadAttention
    @ModuleInfo public var ln1: LayerNorm
    @ModuleInfo public var ln2: LayerNorm
    @ModuleInfo public var ln3: LayerNorm
    @ModuleInfo public var linear1: Linear
    @ModuleInfo public var linear2: Linear
    @ModuleInfo public var dropout1: Dropout
    @ModuleInfo public var dropout2: Dropout
    @ModuleInfo public var dropout3: Dropout
    let activation: (Tensor) -> Tensor
    public let normFirst: Bool

    public init(
        dimensions: Int, heads: Int, mlpDimensions: Int? = nil, dropout: Float = 0,
        activation: @escaping (Tensor) -> Tensor = relu, normFirst: Bool = true
    ) {
        let mlp = mlpDimensions ?? 4 * dimensions
        _selfAttention.wrappedValue = MultiHeadAttention(dimensions: dimensions, heads: heads)
        _crossAttention.wrappedValue = MultiHeadAttention(dimensions: dimensions, heads: heads)
        ln1 = LayerNorm(dimensions: dimensions)
        ln2 = LayerNorm(dimensions: dimensions)
        ln3 = LayerNorm(dimensions: dimensions)
        linear1 = Linear(dimensions, mlp)
        linear2 = Linear(mlp, dimensions)
        dropout1 = Dropout(p: dropout)
        dropout2 = Dropout(p: dropout)
        dropout3 = Dropout(p: dropout)
        self.activation = activation
        self.normFirst = normFirst
    }

    open func callAsFunction(_ x: Tensor, memory: Tensor, mask: Tensor?, memoryMask: Tensor?) -> Tensor {
        if normFirst {
            var y = ln1(x)
            var h = x + dropout1(selfAttention(y, keys: y, values: y, mask: mask))
            y = ln2(h)
            h = h + dropout2(crossAttention(y, keys: memory, values: memory, mask: memoryMask))
            y = linear2(dropout3(activation(linear1(ln3(h)))))
            return h + y
        }
        var h = ln1(x + dropout1(selfAttention(x, keys: x, values: x, mask: mask)))
        h = ln2(h + dropout2(crossAttention(h, keys: memory, values: memory, mask: memoryMask)))
        return ln3(h + linear2(dropout3(activation(linear1(h)))))
    }
}

/// A stack of encoder layers and a final LayerNorm (`layers.i...`, `ln`).
open class TransformerEncoder: Module {
    @ModuleInfo public var layers: [TransformerEncoderLayer]
    @ModuleInfo public var ln: LayerNorm

    public init(
        layerCount: Int, dimensions: Int, heads: Int, mlpDimensions: Int? = nil, dropout: Float = 0,
        activation: @escaping (Tensor) -> Tensor = relu, normFirst: Bool = true
    ) {
        layers = (0..<layerCount).map { _ in
            TransformerEncoderLayer(
                dimensions: dimensions, heads: heads, mlpDimensions: mlpDimensions, dropout: dropout,
                activation: activation, normFirst: normFirst)
        }
        ln = LayerNorm(dimensions: dimensions)
    }

    open func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        ln(layers.reduce(x) { $1($0, mask: mask) })
    }
}

/// A stack of decoder layers and a final LayerNorm (`layers.i...`, `ln`).
open class TransformerDecoder: Module {
    @ModuleInfo public var layers: [TransformerDecoderLayer]
    @ModuleInfo public var ln: LayerNorm

    public init(
        layerCount: Int, dimensions: Int, heads: Int, mlpDimensions: Int? = nil, dropout: Float = 0,
        activation: @escaping (Tensor) -> Tensor = relu, normFirst: Bool = true
    ) {
        layers = (0..<layerCount).map { _ in
            TransformerDecoderLayer(
                dimensions: dimensions, heads: heads, mlpDimensions: mlpDimensions, dropout: dropout,
                activation: activation, normFirst: normFirst)
        }
        ln = LayerNorm(dimensions: dimensions)
    }

    open func callAsFunction(_ x: Tensor, memory: Tensor, mask: Tensor?, memoryMask: Tensor?) -> Tensor {
        ln(layers.reduce(x) { $1($0, memory: memory, mask: mask, memoryMask: memoryMask) })
    }
}

/// An encoder-decoder transformer (MLX's `nn.Transformer`): `encoder`, `decoder`.
open class Transformer: Module {
    @ModuleInfo public var encoder: TransformerEncoder
    @ModuleInfo public var decoder: TransformerDecoder

    public init(
        dimensions: Int = 512, heads: Int = 8, encoderLayers: Int = 6, decoderLayers: Int = 6,
        mlpDimensions: Int? = nil,
        dropout: Float = 0, activation: @escaping (Tensor) -> Tensor = relu, normFirst: Bool = true
    ) {
        encoder = TransformerEncoder(
            layerCount: encoderLayers, dimensions: dimensions, heads: heads, mlpDimensions: mlpDimensions,
            dropout: dropout,
            activation: activation, normFirst: normFirst)
        decoder = TransformerDecoder(
            layerCount: decoderLayers, dimensions: dimensions, heads: heads, mlpDimensions: mlpDimensions,
            dropout: dropout,
            activation: activation, normFirst: normFirst)
    }

    open func callAsFunction(
        source: Tensor, target: Tensor, sourceMask: Tensor?, targetMask: Tensor?, memoryMask: Tensor?
    ) -> Tensor {
        decoder(target, memory: encoder(source, mask: sourceMask), mask: targetMask, memoryMask: memoryMask)
    }
}
