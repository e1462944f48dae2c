// Positional encodings: rotary (RoPE), sinusoidal, and ALiBi biases (MLX's definitions).

import Tessera

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Rotary position embedding of the first `dimensions` features of x [..., L, D].
///
/// ```swift
/// let rope = RoPE(dimensions: 64)
/// let q = rope(q, offset: cache.offset)
/// ```
public final class RoPE: Module, UnaryLayer {
    public let dimensions: Int, traditional: Bool, base: Float, scale: Float

    public init(dimensions: Int, traditional: Bool = false, base: Float = 10000, scale: Float = 1) {
        precondition(dimensions > 0 && dimensions % 2 == 0, "[RoPE] dimensions must be positive and even")
        (self.dimensions, self.traditional, self.base, self.scale) = (dimensions, traditional, base, scale)
    }

    public func callAsFunction(_ x: Tensor, offset: Int) -> Tensor {
        nnRoPE(x, dimensions: dimensions, traditional: traditional, base: base, scale: scale, offset: offset)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { callAsFunction(x, offset: 0) }
}

/// Sinusoidal features of positions: x [...] → [..., dimensions], sines then
/// cosines (or cosines first) of x at `dimensions / 2` geometric frequencies
/// from `maxFrequency` down to `minFrequency`, times `scale` (default √(2/dimensions)).
public final class SinusoidalPositionalEncoding: Module, UnaryLayer {
    let sigmas: Tensor
    public let scale: Float, cosineFirst: Bool

    public init(
        dimensions: Int, minFrequency: Float = 0.0001, maxFrequency: Float = 1, scale: Float? = nil,
        cosineFirst: Bool = false, fullTurns: Bool = false
    ) {
        precondition(
            dimensions > 0 && dimensions % 2 == 0, "[SinusoidalPositionalEncoding] dimensions must be positive and even"
        )
        let half = dimensions / 2
        let oneZero = half == 1 ? Tensor([Float(1)]) : 1 - Tensor.arange(0, Double(half)) / Float(half - 1)
        let lo = Float(Glibc.log(Double(minFrequency))), hi = Float(Glibc.log(Double(maxFrequency)))
        var s = exp(oneZero * (hi - lo) + lo)
        if fullTurns { s = s * Float(2 * Double.pi) }
        sigmas = s
        self.scale = scale ?? (2 / Float(dimensions)).squareRoot()
        self.cosineFirst = cosineFirst
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = x.expandedDimensions(axis: -1) * sigmas
        let parts = cosineFirst ? [cos(y), sin(y)] : [sin(y), cos(y)]
        let out = concatenated(parts, axis: -1)
        return scale == 1 ? out : out * scale
    }
}

/// Attention with linear biases: adds -slope_h·|i - j| to attention scores [B, H, Lq, Lk].
public final class ALiBi: Module {
    public override init() {}

    /// The per-head slopes, shape [heads, 1, 1].
    public static func slopes(heads: Int, dtype: DType = .float32) -> Tensor {
        func get(_ n: Int) -> [Double] {
            let l = Glibc.log2(Double(n))
            if l == l.rounded() {
                let start = Glibc.pow(2, -Glibc.pow(2, -(l - 3)))
                return (0..<n).map { Glibc.pow(start, Double($0 + 1)) }
            }
            let closest = Int(Glibc.pow(2, Glibc.floor(l)))
            let extra = get(2 * closest).enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
            return get(closest) + extra.prefix(n - closest)
        }
        return Tensor(get(heads).map { Float($0) }, shape: [heads, 1, 1]).asType(dtype)
    }

    /// The bias [1, heads, Lq - offset, Lk] for query positions offset..<Lq and key positions 0..<Lk.
    public static func matrix(queryLength: Int, keyLength: Int, heads: Int, offset: Int = 0, dtype: DType = .float32)
        -> Tensor
    {
        let q = Tensor.arange(offset, queryLength).reshaped([-1, 1])
        let k = Tensor.arange(0, keyLength).reshaped([1, -1])
        let distance = -abs(q - k).asType(.float32)
        return (distance.reshaped([1, 1] + distance.shape) * slopes(heads: heads)).asType(dtype)
    }

    public func callAsFunction(_ scores: Tensor, offset: Int = 0, mask: Tensor? = nil) -> Tensor {
        var bias = ALiBi.matrix(
            queryLength: scores.dim(-2) + offset, keyLength: scores.dim(-1), heads: scores.dim(1), offset: offset,
            dtype: scores.dtype)
        if let mask { bias = bias + mask }
        return scores + bias
    }
}
