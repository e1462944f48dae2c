// Activation functions, as free functions and as parameterless layers
// (`relu(x)` and `ReLU()(x)`), with MLX's definitions. `tanh` and `sigmoid`
// are Tessera ops; the layers `Tanh` and `Sigmoid` wrap them.

import Tessera

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// max(x, 0).
public func relu(_ x: Tensor) -> Tensor { maximum(x, Tensor(0).asType(x.dtype)) }

/// min(max(x, 0), 6).
public func relu6(_ x: Tensor) -> Tensor { minimum(relu(x), Tensor(6).asType(x.dtype)) }

/// x where x > 0, `negativeSlope * x` elsewhere (derivative `negativeSlope` at 0, as torch).
public func leakyRelu(_ x: Tensor, negativeSlope: Float = 0.01) -> Tensor {
    which(x .> 0, x, x * negativeSlope)
}

/// x where x > 0, `alpha * (exp(x) - 1)` elsewhere.
public func elu(_ x: Tensor, alpha: Float = 1) -> Tensor {
    which(x .> 0, x, expm1(x) * alpha)
}

/// Exact GELU: `x * Φ(x) = x * (1 + erf(x / √2)) / 2`.
public func gelu(_ x: Tensor) -> Tensor {
    x * (1 + erf(x / Float(2).squareRoot())) / 2
}

/// GELU with the tanh approximation: `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
public func geluApproximate(_ x: Tensor) -> Tensor {
    let c = Float((2 / Double.pi).squareRoot())
    return 0.5 * x * (1 + tanh(c * (x + 0.044715 * x * x * x)))
}

/// GELU with the sigmoid approximation: `x * sigmoid(1.702 x)`.
public func geluFastApproximate(_ x: Tensor) -> Tensor { x * sigmoid(1.702 * x) }

/// x * sigmoid(x) (also called swish).
public func silu(_ x: Tensor) -> Tensor { x * sigmoid(x) }

/// log(1 + exp(x)), computed stably.
public func softplus(_ x: Tensor) -> Tensor { logAddExp(x, Tensor(0).asType(x.dtype)) }

/// x * tanh(softplus(x)).
public func mish(_ x: Tensor) -> Tensor { x * tanh(softplus(x)) }

/// log(sigmoid(x)) = -softplus(-x).
public func logSigmoid(_ x: Tensor) -> Tensor { -softplus(-x) }

/// x / (1 + |x|).
public func softsign(_ x: Tensor) -> Tensor { x / (1 + abs(x)) }

/// `scale * elu(x, alpha)` with the self-normalising constants.
public func selu(_ x: Tensor) -> Tensor { elu(x, alpha: 1.67326319217681884765625) * 1.05070102214813232421875 }

/// x * relu6(x + 3) / 6.
public func hardSwish(_ x: Tensor) -> Tensor { x * relu6(x + 3) / 6 }

/// Gated linear unit: the first half of `axis` times the sigmoid of the second.
public func glu(_ x: Tensor, axis: Int = -1) -> Tensor {
    let halves = x.split(parts: 2, axis: axis)
    return halves[0] * sigmoid(halves[1])
}

/// The layer form of an activation function.
open class Activation: Module, UnaryLayer {
    let function: (Tensor) -> Tensor
    init(_ function: @escaping (Tensor) -> Tensor) { self.function = function }
    public func callAsFunction(_ x: Tensor) -> Tensor { function(x) }
}

public final class ReLU: Activation { public init() { super.init(relu) } }
public final class ReLU6: Activation { public init() { super.init(relu6) } }
public final class LeakyReLU: Activation {
    public init(negativeSlope: Float = 0.01) { super.init { leakyRelu($0, negativeSlope: negativeSlope) } }
}
public final class ELU: Activation {
    public init(alpha: Float = 1) { super.init { elu($0, alpha: alpha) } }
}
/// GELU, exact (`.none`, the default) or approximated as MLX's `approx` ("precise"/"tanh" or "fast").
public final class GELU: Activation {
    public enum Approximation: Sendable { case none, tanh, fast }
    public init(approximation: Approximation = .none) {
        switch approximation {
        case .none: super.init(gelu)
        case .tanh: super.init(geluApproximate)
        case .fast: super.init(geluFastApproximate)
        }
    }
}
public final class SiLU: Activation { public init() { super.init(silu) } }
public final class Mish: Activation { public init() { super.init(mish) } }
public final class Softplus: Activation { public init() { super.init(softplus) } }
public final class Softsign: Activation { public init() { super.init(softsign) } }
public final class LogSigmoid: Activation { public init() { super.init(logSigmoid) } }
public final class SELU: Activation { public init() { super.init(selu) } }
public final class HardSwish: Activation { public init() { super.init(hardSwish) } }
public final class Tanh: Activation { public init() { super.init(tanh) } }
public final class Sigmoid: Activation { public init() { super.init(sigmoid) } }
public final class GLU: Activation {
    public init(axis: Int = -1) { super.init { glu($0, axis: axis) } }
}
/// softmax over `axis` as a layer.
public final class Softmax: Activation {
    public init(axis: Int = -1) { super.init { nnSoftmax($0, axis: axis) } }
}
