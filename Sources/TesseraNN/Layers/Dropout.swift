// Dropout: zeroes elements with probability p in training mode and scales
// the rest by 1/(1-p); the identity in evaluation mode (MLX).

import Tessera

/// Zeroes each element with probability `p` while training.
public final class Dropout: Module, UnaryLayer {
    public let p: Float

    public init(p: Float = 0.5) {
        precondition(p >= 0 && p < 1, "[Dropout] p must be in [0, 1), got \(p)")
        self.p = p
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard training && p > 0 else { return x }
        let keep = 1 - p
        let mask = Random.bernoulli(Double(keep), x.shape)
        return which(mask, x, Tensor(0).asType(x.dtype)) * (1 / keep)
    }
}

/// Zeroes whole channels (the last axis of (N, H, W, C) or (H, W, C)) with probability `p` while training.
public final class Dropout2d: Module, UnaryLayer {
    public let p: Float

    public init(p: Float = 0.5) {
        precondition(p >= 0 && p < 1, "[Dropout2d] p must be in [0, 1), got \(p)")
        self.p = p
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.ndim == 3 || x.ndim == 4, "[Dropout2d] expects 3 or 4 axes, got \(x.shape)")
        guard training && p > 0 else { return x }
        var shape = x.shape
        shape[x.ndim - 2] = 1
        shape[x.ndim - 3] = 1
        let keep = 1 - p
        let mask = Random.bernoulli(Double(keep), shape)
        return which(mask, x, Tensor(0).asType(x.dtype)) * (1 / keep)
    }
}
