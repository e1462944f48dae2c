// Adam, AdamW and Adamax with MLX's semantics: no bias correction unless
// asked (`biasCorrection: true`), AdamW decays the parameter by lr·λ before
// the Adam step.

import Tessera
import TesseraNN

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Adam: m ← β₁m + (1-β₁)g, v ← β₂v + (1-β₂)g², p ← p - lr m / (√v + ε);
/// with bias correction, p ← p - (lr / (1-β₁ᵗ)) m / (√v / √(1-β₂ᵗ) + ε).
open class Adam: Optimizer {
    public let betas: (Float, Float)
    public let eps: Float
    public let biasCorrection: Bool

    public init(
        learningRate: LearningRate, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
        biasCorrection: Bool = false
    ) {
        precondition(
            (0..<1).contains(betas.0) && (0..<1).contains(betas.1), "[Adam] betas must be in [0, 1), got \(betas)")
        precondition(eps >= 0, "[Adam] eps must be non-negative")
        self.betas = betas
        self.eps = eps
        self.biasCorrection = biasCorrection
        super.init(learningRate: learningRate)
    }

    open override func initialState(for parameter: Tensor) -> [String: Tensor] {
        ["m": Tensor.zerosLike(parameter), "v": Tensor.zerosLike(parameter)]
    }

    open override func apply(gradient g: Tensor, parameter: Tensor, state: inout [String: Tensor]) -> Tensor {
        let (b1, b2) = betas
        let m = b1 * state["m"]! + (1 - b1) * g
        let v = b2 * state["v"]! + (1 - b2) * square(g)
        state["m"] = m
        state["v"] = v
        if biasCorrection {
            let c1 = learningRateValue() / (1 - stepPower(b1))
            let c2 = 1 / sqrt(1 - stepPower(b2))
            return parameter - c1.asType(g.dtype) * m / (sqrt(v) * c2.asType(g.dtype) + eps)
        }
        return parameter - learningRateValue(as: g.dtype) * m / (sqrt(v) + eps)
    }
}

/// Adam with decoupled weight decay: p ← p (1 - lr λ), then the Adam step.
public final class AdamW: Adam {
    public let weightDecay: Float

    public init(
        learningRate: LearningRate, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, weightDecay: Float = 0.01,
        biasCorrection: Bool = false
    ) {
        self.weightDecay = weightDecay
        super.init(learningRate: learningRate, betas: betas, eps: eps, biasCorrection: biasCorrection)
    }

    public override func apply(gradient: Tensor, parameter: Tensor, state: inout [String: Tensor]) -> Tensor {
        let decay = (1 - learningRateValue() * weightDecay).asType(parameter.dtype)
        return super.apply(gradient: gradient, parameter: parameter * decay, state: &state)
    }
}

/// Adamax: m ← β₁m + (1-β₁)g, v ← max(β₂v, |g|), p ← p - lr m / (v + ε).
public final class Adamax: Adam {
    public init(learningRate: LearningRate, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8) {
        super.init(learningRate: learningRate, betas: betas, eps: eps)
    }

    public override func apply(gradient g: Tensor, parameter: Tensor, state: inout [String: Tensor]) -> Tensor {
        let (b1, b2) = betas
        let m = b1 * state["m"]! + (1 - b1) * g
        let v = maximum(b2 * state["v"]!, abs(g))
        state["m"] = m
        state["v"] = v
        return parameter - learningRateValue(as: g.dtype) * m / (v + eps)
    }
}
