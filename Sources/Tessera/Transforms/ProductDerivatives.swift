// Derivatives of prod and cumprod that stay finite where an input is zero.
// Dividing the product by x (the textbook rule) gives 0/0 = NaN there; torch
// and MLX give the product of the other elements, and so do these rules:
// prod through two exclusive cumprods (MLX's trick), cumprod by treating the
// first zero along the scan apart (later elements see a zero product).

/// For each element of `x`, the product of the other elements over `axes` (no division).
func productOfOthers(_ x: Tensor, axes: [Int]) -> Tensor {
    let kept = (0..<x.ndim).filter { !axes.contains($0) }
    let order = kept + axes
    var inverse = order
    for (i, a) in order.enumerated() { inverse[a] = i }
    let moved = x.transposed(axes: order)
    let count = axes.reduce(1) { $0 * x.shape[$1] }
    let rows = moved.reshaped(kept.map { x.shape[$0] } + [count])
    let before = rows.cumprod(axis: -1, reverse: false, inclusive: false)
    let after = rows.cumprod(axis: -1, reverse: true, inclusive: false)
    return (before * after).reshaped(moved.shape).transposed(axes: inverse)
}

/// Where the zeros of `x` are along a scan: the first one, and which elements come after a zero.
private struct ScanZeros {
    let isZero: Tensor
    let first: Tensor
    /// x with its first zero along the scan replaced by 1, for the products that skip it.
    let firstAsOne: Tensor

    init(_ x: Tensor, axis: Int, reverse: Bool) {
        isZero = x .== 0.0
        let before = isZero.asType(x.dtype).cumsum(axis: axis, reverse: reverse, inclusive: false)
        first = logicalAnd(isZero, before .== 0.0)
        firstAsOne = which(first, 1.0, x)
    }

    /// The number of zeros the scan has multiplied in at each element.
    func seen(_ dtype: DType, axis: Int, reverse: Bool, inclusive: Bool) -> Tensor {
        isZero.asType(dtype).cumsum(axis: axis, reverse: reverse, inclusive: inclusive)
    }
}

/// The cotangent of x for `output = x.cumprod(axis:reverse:inclusive:)` and its cotangent `g`.
func cumprodVJP(x: Tensor, output: Tensor, g: Tensor, axis: Int, reverse: Bool, inclusive: Bool) -> Tensor {
    let zeros = ScanZeros(x, axis: axis, reverse: reverse)
    let safe = which(zeros.isZero, 1.0, x)
    // Before the first zero every product that includes x_j holds it as a factor.
    let regular = (g * output).cumsum(axis: axis, reverse: !reverse, inclusive: inclusive) / safe
    // At the first zero: the products that include it, with it taken out.
    let skipped = zeros.firstAsOne.cumprod(axis: axis, reverse: reverse, inclusive: inclusive)
    let atFirst = (g * skipped).cumsum(axis: axis, reverse: !reverse, inclusive: inclusive)
    // After it every product that includes x_j also includes that zero.
    let afterZero = zeros.seen(x.dtype, axis: axis, reverse: reverse, inclusive: false) .> 0.0
    return which(zeros.first, atFirst, which(afterZero, 0.0, regular))
}

/// The tangent of `output = x.cumprod(axis:reverse:inclusive:)` for the tangent `tx` of x.
func cumprodJVP(x: Tensor, output: Tensor, tx: Tensor, axis: Int, reverse: Bool, inclusive: Bool) -> Tensor {
    let zeros = ScanZeros(x, axis: axis, reverse: reverse)
    let safe = which(zeros.isZero, 1.0, x)
    let regular = output * (tx / safe).cumsum(axis: axis, reverse: reverse, inclusive: inclusive)
    // Once a zero is in the product only its own tangent moves it.
    let firstTangent = which(zeros.first, tx, 0.0).cumsum(axis: axis, reverse: reverse, inclusive: inclusive)
    let skipped = zeros.firstAsOne.cumprod(axis: axis, reverse: reverse, inclusive: inclusive)
    let noZeroYet = zeros.seen(x.dtype, axis: axis, reverse: reverse, inclusive: inclusive) .== 0.0
    return which(noZeroYet, regular, firstTangent * skipped)
}
