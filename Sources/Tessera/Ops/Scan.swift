// Running reductions along an axis: cumsum, cumprod, cummax, cummin, each
// inclusive (default) or exclusive, forwards or reversed. `axis: nil` scans
// the flattened tensor. cumsum/cumprod of bool give int32 (MLX); other
// dtypes keep theirs, integers wrapping on overflow.

extension Tensor {
    private func scan(_ op: ScanOp, _ axis: Int?, _ reverse: Bool, _ inclusive: Bool) -> Tensor {
        let name = "cum\(op.rawValue)"
        guard let axis else { return flattened().scan(op, 0, reverse, inclusive) }
        opPrecondition(ndim > 0, name, "needs at least one axis, got shape \(shape)")
        let a = normalizeAxis(axis, ndim, name)
        var x = self
        switch op {
        case .sum, .prod:
            if dtype == .bool { x = asType(.int32) }
        case .max, .min:
            opPrecondition(dtype != .complex64, name, "not supported for complex64 (shape \(shape))")
        }
        return Tensor(
            shape: x.shape, dtype: x.dtype, primitive: .scan(op, axis: a, reverse: reverse, inclusive: inclusive),
            inputs: [x])
    }

    /// Running sums along `axis`.
    ///
    /// ```swift
    /// Tensor([1, 2, 3]).cumsum()                   // [1, 3, 6]
    /// Tensor([1, 2, 3]).cumsum(inclusive: false)   // [0, 1, 3]
    /// ```
    public func cumsum(axis: Int? = nil, reverse: Bool = false, inclusive: Bool = true) -> Tensor {
        scan(.sum, axis, reverse, inclusive)
    }

    /// Running products along `axis`.
    public func cumprod(axis: Int? = nil, reverse: Bool = false, inclusive: Bool = true) -> Tensor {
        scan(.prod, axis, reverse, inclusive)
    }

    /// Running maxima along `axis` (NaN propagates); exclusive scans start at the dtype's lowest value.
    public func cummax(axis: Int? = nil, reverse: Bool = false, inclusive: Bool = true) -> Tensor {
        scan(.max, axis, reverse, inclusive)
    }

    /// Running minima along `axis` (NaN propagates); exclusive scans start at the dtype's highest value.
    public func cummin(axis: Int? = nil, reverse: Bool = false, inclusive: Bool = true) -> Tensor {
        scan(.min, axis, reverse, inclusive)
    }
}
