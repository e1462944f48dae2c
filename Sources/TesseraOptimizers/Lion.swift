// Lion (Chen et al. 2023) and Adafactor (Shazeer & Stern 2018), as MLX
// defines them.

import Tessera
import TesseraNN

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Lion: c = β₁m + (1-β₁)g, m ← β₂m + (1-β₂)g, p ← p(1 - lr λ) - lr sign(c).
public final class Lion: Optimizer {
    public let betas: (Float, Float)
    public let weightDecay: Float

    public init(learningRate: LearningRate, betas: (Float, Float) = (0.9, 0.99), weightDecay: Float = 0) {
        precondition(
            (0..<1).contains(betas.0) && (0..<1).contains(betas.1), "[Lion] betas must be in [0, 1), got \(betas)")
        self.betas = betas
        self.weightDecay = weightDecay
        super.init(learningRate: learningRate)
    }

    public override func initialState(for parameter: Tensor) -> [String: Tensor] { ["m": Tensor.zerosLike(parameter)] }

    public override func apply(gradient g: Tensor, parameter: Tensor, state: inout [String: Tensor]) -> Tensor {
        let (b1, b2) = betas
        let lr = learningRateValue()
        let m = state["m"]!
        let c = b1 * m + (1 - b1) * g
        state["m"] = b2 * m + (1 - b2) * g
        var p = parameter
        if weightDecay > 0 { p = (1 - lr * weightDecay).asType(p.dtype) * p }
        return p - lr.asType(g.dtype) * sign(c)
    }
}

/// Adafactor: factored second moments for matrices (row and column
/// averages), relative step sizes and update clipping. With
/// `learningRate: nil` and `relativeStep`, the step size is min(1e-2, 1/√t)
/// (or 1e-6 t with `warmupInit`), scaled by the parameter's RMS when `scaleParameter`.
public final class Adafactor: Optimizer {
    public let eps: (Float, Float)
    public let clipThreshold: Float
    public let decayRate: Float
    public let beta1: Float?
    public let weightDecay: Float
    public let scaleParameter: Bool
    public let relativeStep: Bool
    public let warmupInit: Bool

    public init(
        learningRate: LearningRate? = nil, eps: (Float, Float) = (1e-30, 1e-3), clipThreshold: Float = 1,
        decayRate: Float = -0.8, beta1: Float? = nil, weightDecay: Float = 0, scaleParameter: Bool = true,
        relativeStep: Bool = true, warmupInit: Bool = false
    ) {
        precondition(
            learningRate != nil || relativeStep, "[Adafactor] needs a learning rate when relativeStep is false")
        self.eps = eps
        self.clipThreshold = clipThreshold
        self.decayRate = decayRate
        self.beta1 = beta1
        self.weightDecay = weightDecay
        self.scaleParameter = scaleParameter
        self.relativeStep = relativeStep
        self.warmupInit = warmupInit
        super.init(learningRate: learningRate ?? .constant(0))
    }

    public override func initialState(for parameter: Tensor) -> [String: Tensor] {
        var s: [String: Tensor] = [:]
        if parameter.ndim >= 2 {
            let shape = parameter.shape
            s["exp_avg_sq_row"] = Tensor.zeros(Array(shape.dropLast()), dtype: parameter.dtype)
            s["exp_avg_sq_col"] = Tensor.zeros(
                Array(shape.dropLast(2)) + [shape[shape.count - 1]], dtype: parameter.dtype)
        } else {
            s["exp_avg_sq"] = Tensor.zerosLike(parameter)
        }
        if beta1 != nil { s["exp_avg"] = Tensor.zerosLike(parameter) }
        return s
    }

    private func rms(_ x: Tensor) -> Tensor { sqrt(square(x).mean()) }

    public override func apply(gradient g: Tensor, parameter: Tensor, state: inout [String: Tensor]) -> Tensor {
        let parameterRMS = rms(parameter)
        // Step-dependent scalars: host arithmetic eagerly (as MLX), graph
        // ops on the traced step inside a compiled step.
        let relative: Tensor, beta2: Tensor
        if let t = compiledStep {
            if relativeStep {
                let minStep = warmupInit ? 1e-6 * t : Tensor(Float(1e-2))
                relative = minimum(minStep, 1 / sqrt(t))
            } else {
                relative = learningRateValue()
            }
            beta2 = 1 - power(t, Tensor(decayRate))
        } else {
            let t = Float(step)
            if relativeStep {
                let minStep: Float = warmupInit ? 1e-6 * t : 1e-2
                relative = Tensor(Swift.min(minStep, 1 / t.squareRoot()))
            } else {
                relative = Tensor(currentLearningRate)
            }
            beta2 = Tensor(1 - floatPower(t, decayRate))
        }
        let lr: Tensor =
            scaleParameter
            ? maximum(parameterRMS, Tensor(eps.1).asType(parameterRMS.dtype)) * relative.asType(parameterRMS.dtype)
            : relative.asType(parameterRMS.dtype)
        var update = square(g) + eps.0
        let keep = beta2.asType(update.dtype), mix = (1 - beta2).asType(update.dtype)
        if g.ndim >= 2 {
            let row = keep * state["exp_avg_sq_row"]! + mix * update.mean(axis: -1)
            let col = keep * state["exp_avg_sq_col"]! + mix * update.mean(axis: -2)
            state["exp_avg_sq_row"] = row
            state["exp_avg_sq_col"] = col
            let rFactor = rsqrt(row / row.mean(axis: -1, keepDims: true))
            let cFactor = rsqrt(col)
            update = rFactor.expandedDimensions(axis: -1) * cFactor.expandedDimensions(axis: -2) * g
        } else {
            let v = keep * state["exp_avg_sq"]! + mix * update
            state["exp_avg_sq"] = v
            update = rsqrt(v) * g
        }
        update = update / maximum(Tensor(Float(1)).asType(update.dtype), rms(update) / clipThreshold)
        update = lr * update
        if let beta1 {
            let avg = beta1 * state["exp_avg"]! + (1 - beta1) * update
            state["exp_avg"] = avg
            update = avg
        }
        var p = parameter
        if weightDecay != 0 { p = p + p * (-weightDecay * lr) }
        return p - update
    }
}
