// SGD with momentum, dampening, Nesterov momentum and weight decay (MLX's
// semantics: the velocity starts at zero, so dampening applies from the
// first step, unlike torch).

import Tessera
import TesseraNN

/// Stochastic gradient descent.
///
/// v ← μ v + (1 - dampening) g (g += λ p first when weightDecay λ > 0);
/// p ← p - lr (g + μ v) with Nesterov, else p - lr v.
public final class SGD: Optimizer {
    public let momentum: Float
    public let weightDecay: Float
    public let dampening: Float
    public let nesterov: Bool

    public init(
        learningRate: LearningRate, momentum: Float = 0, weightDecay: Float = 0, dampening: Float = 0,
        nesterov: Bool = false
    ) {
        precondition(
            !nesterov || (momentum > 0 && dampening == 0), "[SGD] Nesterov momentum needs momentum > 0 and no dampening"
        )
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.dampening = dampening
        self.nesterov = nesterov
        super.init(learningRate: learningRate)
    }

    public override func initialState(for parameter: Tensor) -> [String: Tensor] {
        momentum > 0 ? ["v": Tensor.zerosLike(parameter)] : [:]
    }

    public override func apply(gradient: Tensor, parameter: Tensor, state: inout [String: Tensor]) -> Tensor {
        var g = gradient
        if weightDecay != 0 { g = g + weightDecay * parameter }
        let lr = learningRateValue(as: g.dtype)
        if momentum <= 0 { return parameter - lr * g }
        var v = momentum * state["v"]!
        v = dampening > 0 ? v + (1 - dampening) * g : v + g
        state["v"] = v
        let update = nesterov ? g + momentum * v : v
        return parameter - lr * update
    }
}
