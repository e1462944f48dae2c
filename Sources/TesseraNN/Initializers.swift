// Parameter initialisers (MLX's `nn.init`): constant, uniform, normal,
// identity, Glorot/Xavier and He/Kaiming, uniform and normal. Fans follow
// MLX: fan_in = shape[-1] * receptive field, fan_out = shape[0] * receptive
// field, receptive field = product of shape[1..<ndim-1]. Draws use `Random`
// (reproducible after `Random.seed`).

import Tessera

/// Initial values for a parameter of `shape`.
///
/// ```swift
/// let w = Init.glorotUniform([128, 64])        // limit sqrt(6 / (64 + 128))
/// let c = Init.heNormal([32, 3, 3, 16], mode: .fanOut)
/// ```
public enum Init {
    public enum FanMode: Sendable { case fanIn, fanOut }

    public static func constant(_ shape: [Int], value: Double, dtype: DType = .float32) -> Tensor {
        Tensor.full(shape, value: value, dtype: dtype)
    }

    public static func uniform(_ shape: [Int], low: Double = 0, high: Double = 1, dtype: DType = .float32) -> Tensor {
        Random.uniform(low: low, high: high, shape, dtype: dtype)
    }

    public static func normal(_ shape: [Int], mean: Double = 0, std: Double = 1, dtype: DType = .float32) -> Tensor {
        Random.normal(shape, dtype: dtype, loc: mean, scale: std)
    }

    /// The identity matrix (shape must be square).
    public static func identity(_ shape: [Int], dtype: DType = .float32) -> Tensor {
        precondition(shape.count == 2 && shape[0] == shape[1], "[Init.identity] needs a square shape, got \(shape)")
        return Tensor.eye(shape[0], dtype: dtype)
    }

    /// (fan in, fan out) of a weight of `shape`.
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        precondition(shape.count >= 2, "[Init] fans need at least 2 dimensions, got \(shape)")
        let receptive = shape.dropFirst().dropLast().reduce(1, *)
        return (shape[shape.count - 1] * receptive, shape[0] * receptive)
    }

    /// Uniform in ±gain·√(6 / (fan_in + fan_out)).
    public static func glorotUniform(_ shape: [Int], gain: Double = 1, dtype: DType = .float32) -> Tensor {
        let (i, o) = fans(shape)
        let limit = gain * (6 / Double(i + o)).squareRoot()
        return uniform(shape, low: -limit, high: limit, dtype: dtype)
    }

    /// Normal with std gain·√(2 / (fan_in + fan_out)).
    public static func glorotNormal(_ shape: [Int], gain: Double = 1, dtype: DType = .float32) -> Tensor {
        let (i, o) = fans(shape)
        return normal(shape, std: gain * (2 / Double(i + o)).squareRoot(), dtype: dtype)
    }

    /// Uniform in ±gain·√(3 / fan).
    public static func heUniform(
        _ shape: [Int], mode: FanMode = .fanIn, gain: Double = 1, dtype: DType = .float32
    ) -> Tensor {
        let (i, o) = fans(shape)
        let limit = gain * (3 / Double(mode == .fanIn ? i : o)).squareRoot()
        return uniform(shape, low: -limit, high: limit, dtype: dtype)
    }

    /// Normal with std gain / √fan.
    public static func heNormal(
        _ shape: [Int], mode: FanMode = .fanIn, gain: Double = 1, dtype: DType = .float32
    ) -> Tensor {
        let (i, o) = fans(shape)
        return normal(shape, std: gain / Double(mode == .fanIn ? i : o).squareRoot(), dtype: dtype)
    }
}
