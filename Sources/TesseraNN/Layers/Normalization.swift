// Normalisation layers over the last (channel) axis, MLX's definitions:
// LayerNorm, RMSNorm, GroupNorm (MLX's grouping, or torch's with
// `pytorchCompatible`), BatchNorm (batch statistics while training, running
// statistics in evaluation mode; the running variance is unbiased).

import Tessera

/// Normalises the last axis to zero mean and unit variance, then scales and shifts.
open class LayerNorm: Module, UnaryLayer {
    @ParameterInfo public var weight: Tensor?
    @ParameterInfo public var bias: Tensor?
    public let eps: Float

    public init(dimensions: Int, eps: Float = 1e-5, affine: Bool = true, bias: Bool = true) {
        precondition(eps > 0, "[LayerNorm] eps must be positive")
        weight = affine ? Tensor.ones([dimensions]) : nil
        self.bias = affine && bias ? Tensor.zeros([dimensions]) : nil
        self.eps = eps
    }

    open func callAsFunction(_ x: Tensor) -> Tensor { nnLayerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// x · rsqrt(mean(x²) + eps) · weight over the last axis.
open class RMSNorm: Module, UnaryLayer {
    @ParameterInfo public var weight: Tensor
    public let eps: Float

    public init(dimensions: Int, eps: Float = 1e-5) {
        precondition(eps > 0, "[RMSNorm] eps must be positive")
        weight = Tensor.ones([dimensions])
        self.eps = eps
    }

    open func callAsFunction(_ x: Tensor) -> Tensor { nnRMSNorm(x, weight: weight, eps: eps) }
}

/// Normalises groups of channels over (spatial axes, channels in the group), per sample.
///
/// MLX's default groups channel c into group c % groupCount; with
/// `pytorchCompatible` group g holds the consecutive channels
/// g·C/G ..< (g+1)·C/G, as torch's GroupNorm.
open class GroupNorm: Module, UnaryLayer {
    @ParameterInfo public var weight: Tensor?
    @ParameterInfo public var bias: Tensor?
    public let groupCount: Int, dimensions: Int, eps: Float, pytorchCompatible: Bool

    public init(
        groupCount: Int, dimensions: Int, eps: Float = 1e-5, affine: Bool = true, pytorchCompatible: Bool = false
    ) {
        precondition(eps > 0, "[GroupNorm] eps must be positive")
        precondition(
            groupCount > 0 && dimensions % groupCount == 0,
            "[GroupNorm] \(groupCount) groups must divide \(dimensions) channels")
        weight = affine ? Tensor.ones([dimensions]) : nil
        bias = affine ? Tensor.zeros([dimensions]) : nil
        (self.groupCount, self.dimensions, self.eps, self.pytorchCompatible) = (
            groupCount, dimensions, eps, pytorchCompatible
        )
    }

    open func callAsFunction(_ x: Tensor) -> Tensor {
        let batch = x.dim(0), dims = x.dim(-1), shape = x.shape
        let groupSize = dims / groupCount
        var y: Tensor
        if pytorchCompatible {
            var g = x.reshaped([batch, -1, groupCount, groupSize]).transposed(axes: [0, 2, 1, 3])
                .reshaped([batch, groupCount, -1])
            g = nnLayerNorm(g, weight: nil, bias: nil, eps: eps)
            y = g.reshaped([batch, groupCount, -1, groupSize]).transposed(axes: [0, 2, 1, 3]).reshaped(shape)
        } else {
            let g = x.reshaped([batch, -1, groupCount])
            let mean = g.mean(axis: 1, keepDims: true)
            let variance = g.variance(axis: 1, keepDims: true)
            y = ((g - mean) * rsqrt(variance + eps)).reshaped(shape)
        }
        if let weight { y = y * weight }
        if let bias { y = y + bias }
        return y
    }
}

/// Batch normalisation over all axes but the last, for inputs of 2 to 4 axes.
///
/// In training mode it normalises with the batch statistics and updates
/// `running_mean`/`running_var` (momentum-weighted; unbiased variance); in
/// evaluation mode (`train(false)`) it uses the running statistics. The
/// running statistics are frozen: never differentiated or optimised.
open class BatchNorm: Module, UnaryLayer {
    @ParameterInfo public var weight: Tensor?
    @ParameterInfo public var bias: Tensor?
    @ParameterInfo(key: "running_mean") public var runningMean: Tensor? = nil
    @ParameterInfo(key: "running_var") public var runningVar: Tensor? = nil
    public let eps: Float, momentum: Float

    public init(
        featureCount: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true, trackRunningStats: Bool = true
    ) {
        precondition(eps > 0, "[BatchNorm] eps must be positive")
        weight = affine ? Tensor.ones([featureCount]) : nil
        bias = affine ? Tensor.zeros([featureCount]) : nil
        (self.eps, self.momentum) = (eps, momentum)
        super.init()
        runningMean = trackRunningStats ? Tensor.zeros([featureCount]) : nil
        runningVar = trackRunningStats ? Tensor.ones([featureCount]) : nil
        freezeRunningStats()
    }

    private func freezeRunningStats() {
        if runningMean != nil { try! super.freeze(recursive: false, keys: ["running_mean", "running_var"]) }
    }

    /// Unfreezes as asked, keeping the running statistics frozen (MLX).
    open override func unfreeze(recursive: Bool = true, keys: [String]? = nil, strict: Bool = false) throws {
        try super.unfreeze(recursive: recursive, keys: keys, strict: strict)
        freezeRunningStats()
    }

    open func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.ndim >= 2 && x.ndim <= 4, "[BatchNorm] expects 2 to 4 axes, got \(x.shape)")
        let axes = Array(0..<(x.ndim - 1))
        var mean = x.mean(axes: axes), variance = x.variance(axes: axes)
        if training, let rm = runningMean, let rv = runningVar {
            let n = x.shape.dropLast().reduce(1, *)
            precondition(n > 1, "[BatchNorm] training needs more than one value per channel")
            let unbiased = stopGradient(x.variance(axes: axes, ddof: 1))
            runningMean = (1 - momentum) * rm + momentum * stopGradient(mean)
            runningVar = (1 - momentum) * rv + momentum * unbiased
        } else if let rm = runningMean, let rv = runningVar {
            (mean, variance) = (rm, rv)
        }
        var y = (x - mean) * rsqrt(variance + eps)
        if let weight { y = y * weight }
        if let bias { y = y + bias }
        return y
    }
}
