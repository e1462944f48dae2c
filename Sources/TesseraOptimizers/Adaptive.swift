// Optimizers with per-coordinate step sizes from squared-gradient averages:
// RMSprop, Adagrad, AdaDelta (MLX's definitions).

import Tessera
import TesseraNN

/// RMSprop: v ← αv + (1-α)g², p ← p - lr g / (√v + ε).
public final class RMSprop: Optimizer {
    public let alpha: Float
    public let eps: Float

    public init(learningRate: LearningRate, alpha: Float = 0.99, eps: Float = 1e-8) {
        precondition(alpha >= 0, "[RMSprop] alpha must be non-negative, got \(alpha)")
        precondition(eps > 0, "[RMSprop] eps must be positive, got \(eps)")
        self.alpha = alpha
        self.eps = eps
        super.init(learningRate: learningRate)
    }

    public override func initialState(for parameter: Tensor) -> [String: Tensor] { ["v": Tensor.zerosLike(parameter)] }

    public override func apply(gradient g: Tensor, parameter: Tensor, state: inout [String: Tensor]) -> Tensor {
        let v = alpha * state["v"]! + (1 - alpha) * square(g)
        state["v"] = v
        return parameter - learningRateValue(as: g.dtype) * g / (sqrt(v) + eps)
    }
}

/// Adagrad: v ← v + g², p ← p - lr g / (√v + ε).
public final class Adagrad: Optimizer {
    public let eps: Float

    public init(learningRate: LearningRate, eps: Float = 1e-8) {
        precondition(eps > 0, "[Adagrad] eps must be positive, got \(eps)")
        self.eps = eps
        super.init(learningRate: learningRate)
    }

    public override func initialState(for parameter: Tensor) -> [String: Tensor] { ["v": Tensor.zerosLike(parameter)] }

    public override func apply(gradient g: Tensor, parameter: Tensor, state: inout [String: Tensor]) -> Tensor {
        let v = state["v"]! + square(g)
        state["v"] = v
        return parameter - learningRateValue(as: g.dtype) * g / (sqrt(v) + eps)
    }
}

/// AdaDelta: v ← ρv + (1-ρ)g², d = √(u + ε) / √(v + ε) g, u ← ρu + (1-ρ)d², p ← p - lr d.
public final class AdaDelta: Optimizer {
    public let rho: Float
    public let eps: Float

    public init(learningRate: LearningRate, rho: Float = 0.9, eps: Float = 1e-6) {
        precondition(rho >= 0, "[AdaDelta] rho must be non-negative, got \(rho)")
        precondition(eps > 0, "[AdaDelta] eps must be positive, got \(eps)")
        self.rho = rho
        self.eps = eps
        super.init(learningRate: learningRate)
    }

    public override func initialState(for parameter: Tensor) -> [String: Tensor] {
        ["v": Tensor.zerosLike(parameter), "u": Tensor.zerosLike(parameter)]
    }

    public override func apply(gradient g: Tensor, parameter: Tensor, state: inout [String: Tensor]) -> Tensor {
        let v = rho * state["v"]! + (1 - rho) * square(g)
        let u0 = state["u"]!
        let d = sqrt(u0 + eps) / sqrt(v + eps) * g
        state["v"] = v
        state["u"] = rho * u0 + (1 - rho) * square(d)
        return parameter - learningRateValue(as: g.dtype) * d
    }
}
