// Reductions over any set of axes, with keepDims. `axes: nil` reduces all.
// Output dtypes follow MLX: sum/prod widen bool and 8/16-bit integers to
// 32 bits; mean/variance/std of integers are float32; arg-reductions give uint32.

/// Normalised, sorted, duplicate-free axes; nil means all.
func normalizeAxes(_ axes: [Int]?, _ ndim: Int, _ op: String) -> [Int] {
    guard let axes else { return Array(0..<ndim) }
    let normalized = axes.map { normalizeAxis($0, ndim, op) }
    opPrecondition(Set(normalized).count == normalized.count, op, "duplicate axes in \(axes)")
    return normalized.sorted()
}

package func reduce(_ op: ReduceOp, _ x: Tensor, axes: [Int]?, keepDims: Bool) -> Tensor {
    let axes = normalizeAxes(axes, x.ndim, op.rawValue)
    var input = x
    var outDType = x.dtype
    switch op {
    case .sum, .prod:
        switch x.dtype {
        case .bool, .int8, .int16: outDType = .int32
        case .uint8, .uint16: outDType = .uint32
        default: break
        }
        input = x.asType(outDType)
    case .max, .min:
        opPrecondition(x.dtype != .complex64, op.rawValue, "not supported for complex64")
        opPrecondition(
            axes.allSatisfy { x.shape[$0] > 0 }, op.rawValue,
            "cannot reduce a zero-size axis of shape \(x.shape) (it has no identity)")
    case .all, .any:
        outDType = .bool
    }
    var kept = x.shape
    for a in axes { kept[a] = 1 }
    let result = Tensor(shape: kept, dtype: outDType, primitive: .reduce(op, axes: axes), inputs: [input])
    return keepDims ? result : result.squeezed(axes: axes)
}

extension Tensor {
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        reduce(.sum, self, axes: axes, keepDims: keepDims)
    }
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    public func prod(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        reduce(.prod, self, axes: axes, keepDims: keepDims)
    }
    public func prod(axis: Int, keepDims: Bool = false) -> Tensor { prod(axes: [axis], keepDims: keepDims) }

    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        reduce(.max, self, axes: axes, keepDims: keepDims)
    }
    public func max(axis: Int, keepDims: Bool = false) -> Tensor { max(axes: [axis], keepDims: keepDims) }

    public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        reduce(.min, self, axes: axes, keepDims: keepDims)
    }
    public func min(axis: Int, keepDims: Bool = false) -> Tensor { min(axes: [axis], keepDims: keepDims) }

    /// Whether every element is non-zero.
    public func all(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        reduce(.all, self, axes: axes, keepDims: keepDims)
    }
    /// Whether any element is non-zero.
    public func any(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        reduce(.any, self, axes: axes, keepDims: keepDims)
    }

    /// The number of elements `axes` cover.
    private func reducedCount(_ axes: [Int]?) -> Int {
        normalizeAxes(axes, ndim, "mean").reduce(1) { $0 * shape[$1] }
    }

    private var inexact: Tensor { dtype.isInexact ? self : asType(.float32) }

    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let x = inexact
        return x.sum(axes: axes, keepDims: keepDims) / Double(reducedCount(axes))
    }
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// The variance, dividing by `n - ddof`.
    public func variance(axes: [Int]? = nil, keepDims: Bool = false, ddof: Int = 0) -> Tensor {
        opPrecondition(dtype != .complex64, "variance", "not supported for complex64")
        let x = inexact
        let centered = x - x.mean(axes: axes, keepDims: true)
        return square(centered).sum(axes: axes, keepDims: keepDims) / Double(reducedCount(axes) - ddof)
    }
    public func variance(axis: Int, keepDims: Bool = false, ddof: Int = 0) -> Tensor {
        variance(axes: [axis], keepDims: keepDims, ddof: ddof)
    }

    public func std(axes: [Int]? = nil, keepDims: Bool = false, ddof: Int = 0) -> Tensor {
        sqrt(variance(axes: axes, keepDims: keepDims, ddof: ddof))
    }
    public func std(axis: Int, keepDims: Bool = false, ddof: Int = 0) -> Tensor {
        std(axes: [axis], keepDims: keepDims, ddof: ddof)
    }

    /// log(sum(exp(x))), shifted by the maximum so it neither overflows nor underflows.
    public func logSumExp(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let x = inexact
        let m = x.max(axes: axes, keepDims: true)
        let shift = which(isFinite(m), m, 0.0)
        let out = log(exp(x - shift).sum(axes: axes, keepDims: true)) + shift
        return keepDims ? out : out.squeezed(axes: normalizeAxes(axes, ndim, "logSumExp"))
    }
    public func logSumExp(axis: Int, keepDims: Bool = false) -> Tensor { logSumExp(axes: [axis], keepDims: keepDims) }

    /// The index of the largest element along `axis` (of the flattened tensor when nil), as uint32.
    public func argMax(axis: Int? = nil, keepDims: Bool = false) -> Tensor { argReduce(.argMax, axis, keepDims) }

    /// The index of the smallest element along `axis` (of the flattened tensor when nil), as uint32.
    public func argMin(axis: Int? = nil, keepDims: Bool = false) -> Tensor { argReduce(.argMin, axis, keepDims) }

    private func argReduce(_ op: ArgReduceOp, _ axis: Int?, _ keepDims: Bool) -> Tensor {
        guard let axis else {
            let flat = reshaped([-1]).argReduce(op, 0, true)
            return keepDims ? flat.reshaped([Int](repeating: 1, count: ndim)) : flat.reshaped([])
        }
        let a = normalizeAxis(axis, ndim, op.rawValue)
        opPrecondition(shape[a] > 0, op.rawValue, "cannot reduce a zero-size axis of shape \(shape)")
        opPrecondition(dtype != .complex64, op.rawValue, "not supported for complex64")
        var kept = shape
        kept[a] = 1
        let result = Tensor(shape: kept, dtype: .uint32, primitive: .argReduce(op, axis: a), inputs: [self])
        return keepDims ? result : result.squeezed(axes: [a])
    }
}
