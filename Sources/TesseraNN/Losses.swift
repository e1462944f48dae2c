// Loss functions with MLX's definitions and default reductions. Additions
// over MLX, with torch's semantics: `crossEntropy(ignoreIndex:)` and
// `crossEntropy(classWeights:)` (a mean then divides by the total weight of
// the targets that count).

import Tessera

/// How a loss reduces its per-element values.
public enum LossReduction: Sendable {
    case none, mean, sum
}

func reduce(_ loss: Tensor, _ reduction: LossReduction) -> Tensor {
    switch reduction {
    case .none: return loss
    case .mean: return loss.mean()
    case .sum: return loss.sum()
    }
}

private func checkSameShape(_ a: Tensor, _ b: Tensor, _ op: String) {
    precondition(a.shape == b.shape, "[\(op)] predictions \(a.shape) and targets \(b.shape) must have the same shape")
}

/// Cross entropy of `logits` against class indices (shape of logits without
/// `axis`) or class probabilities (shape of logits).
///
/// - `weights`: per-element weights of the loss (MLX).
/// - `classWeights`: a weight per class, `[C]` (torch's `weight`); class-index targets only.
/// - `ignoreIndex`: targets equal to it contribute 0, and a mean skips them.
/// - `labelSmoothing`: in [0, 1).
///
/// ```swift
/// let loss = crossEntropy(logits, labels, reduction: .mean)
/// ```
public func crossEntropy(
    _ logits: Tensor, _ targets: Tensor, weights: Tensor? = nil, classWeights: Tensor? = nil,
    axis: Int = -1, labelSmoothing: Float = 0, ignoreIndex: Int? = nil, reduction: LossReduction = .none
) -> Tensor {
    precondition(labelSmoothing >= 0 && labelSmoothing < 1, "[crossEntropy] labelSmoothing must be in [0, 1)")
    let a = axis < 0 ? axis + logits.ndim : axis
    let asProbabilities = targets.ndim == logits.ndim
    var reducedShape = logits.shape
    reducedShape.remove(at: a)
    precondition(
        asProbabilities ? targets.shape == logits.shape : targets.shape == reducedShape,
        "[crossEntropy] targets \(targets.shape) must have the shape of logits \(logits.shape) or of it without axis \(axis)"
    )
    precondition(
        asProbabilities ? (classWeights == nil && ignoreIndex == nil) : true,
        "[crossEntropy] classWeights and ignoreIndex need class-index targets")

    let shifted = logits - stopGradient(logits.max(axis: a, keepDims: true))
    var safeTargets = targets
    var keep: Tensor? = nil
    if let ignoreIndex {
        let k = targets .!= Tensor(Int32(ignoreIndex)).asType(targets.dtype)
        keep = k
        safeTargets = which(k, targets, Tensor(0).asType(targets.dtype))
    }
    let score: Tensor
    if asProbabilities {
        score = (shifted * targets).sum(axis: a)
    } else {
        score = shifted.takeAlongAxis(safeTargets.expandedDimensions(axis: a), axis: a).squeezed(axis: a)
    }
    let lse = shifted.logSumExp(axis: a)
    var loss: Tensor
    if labelSmoothing > 0 {
        loss = lse - (1 - labelSmoothing) * score - shifted.mean(axis: a) * labelSmoothing
    } else {
        loss = lse - score
    }
    var denominatorWeights: Tensor? = nil
    if let classWeights {
        precondition(
            classWeights.shape == [logits.shape[a]],
            "[crossEntropy] classWeights must have shape [\(logits.shape[a])], got \(classWeights.shape)")
        let w = classWeights.take(safeTargets, axis: 0).asType(loss.dtype)
        loss = loss * w
        denominatorWeights = w
    }
    if let weights {
        precondition(
            weights.shape == loss.shape, "[crossEntropy] weights \(weights.shape) must have shape \(loss.shape)")
        loss = loss * weights
    }
    if let keep {
        let k = keep.asType(loss.dtype)
        loss = loss * k
        denominatorWeights = denominatorWeights.map { $0 * k } ?? k
    }
    if reduction == .mean, let denominatorWeights {
        return loss.sum() / denominatorWeights.sum()
    }
    return reduce(loss, reduction)
}

/// Binary cross entropy of logits (`withLogits`, the default) or probabilities against targets in [0, 1].
public func binaryCrossEntropy(
    _ inputs: Tensor, _ targets: Tensor, weights: Tensor? = nil, withLogits: Bool = true,
    reduction: LossReduction = .mean
) -> Tensor {
    checkSameShape(inputs, targets, "binaryCrossEntropy")
    var loss: Tensor
    if withLogits {
        loss = logAddExp(Tensor(0).asType(inputs.dtype), inputs) - inputs * targets
    } else {
        let logP = log(inputs).clip(min: -100), log1mP = log(1 - inputs).clip(min: -100)
        loss = -(targets * logP + (1 - targets) * log1mP)
    }
    if let weights { loss = loss * weights }
    return reduce(loss, reduction)
}

/// Mean squared error.
public func mseLoss(_ predictions: Tensor, _ targets: Tensor, reduction: LossReduction = .mean) -> Tensor {
    checkSameShape(predictions, targets, "mseLoss")
    return reduce(square(predictions - targets), reduction)
}

/// Mean absolute error.
public func l1Loss(_ predictions: Tensor, _ targets: Tensor, reduction: LossReduction = .mean) -> Tensor {
    checkSameShape(predictions, targets, "l1Loss")
    return reduce(abs(predictions - targets), reduction)
}

/// 0.5 d²/β where |d| < β, else |d| - 0.5 β.
public func smoothL1Loss(
    _ predictions: Tensor, _ targets: Tensor, beta: Float = 1, reduction: LossReduction = .mean
) -> Tensor {
    checkSameShape(predictions, targets, "smoothL1Loss")
    let d = abs(predictions - targets)
    return reduce(which(d .< beta, 0.5 * square(d) / beta, d - 0.5 * beta), reduction)
}

/// 0.5 d² where |d| ≤ δ, else δ (|d| - 0.5 δ).
public func huberLoss(
    _ inputs: Tensor, _ targets: Tensor, delta: Float = 1, reduction: LossReduction = .none
) -> Tensor {
    let e = abs(inputs - targets)
    let quadratic = minimum(e, Tensor(delta).asType(e.dtype))
    let linear = e - quadratic
    return reduce(0.5 * square(quadratic) + delta * linear, reduction)
}

/// Negative log likelihood of log-probabilities `inputs` at class indices `targets`.
public func nllLoss(_ inputs: Tensor, _ targets: Tensor, axis: Int = -1, reduction: LossReduction = .none) -> Tensor {
    let a = axis < 0 ? axis + inputs.ndim : axis
    let picked = inputs.takeAlongAxis(targets.expandedDimensions(axis: a), axis: a).squeezed(axis: a)
    return reduce(-picked, reduction)
}

/// KL divergence of log-probabilities: sum(exp(targets) (targets - inputs)) along `axis`
/// (both are log-probabilities, as in MLX).
public func klDivLoss(_ inputs: Tensor, _ targets: Tensor, axis: Int = -1, reduction: LossReduction = .none) -> Tensor {
    reduce((exp(targets) * (targets - inputs)).sum(axis: axis), reduction)
}

/// Cosine similarity along `axis`: x1·x2 / max(|x1| |x2|, eps).
public func cosineSimilarityLoss(
    _ x1: Tensor, _ x2: Tensor, axis: Int = 1, eps: Float = 1e-8, reduction: LossReduction = .none
) -> Tensor {
    let n1 = sqrt(square(x1).sum(axis: axis)), n2 = sqrt(square(x2).sum(axis: axis))
    let loss = (x1 * x2).sum(axis: axis) / maximum(n1 * n2, Tensor(eps).asType(n1.dtype))
    return reduce(loss, reduction)
}

/// max(1 - inputs * targets, 0), targets in {-1, 1}.
public func hingeLoss(_ inputs: Tensor, _ targets: Tensor, reduction: LossReduction = .none) -> Tensor {
    reduce(relu(1 - inputs * targets), reduction)
}

/// log(cosh(inputs - targets)).
public func logCoshLoss(_ inputs: Tensor, _ targets: Tensor, reduction: LossReduction = .none) -> Tensor {
    let e = inputs - targets
    return reduce(logAddExp(e, -e) - Float(0.6931471805599453), reduction)
}
