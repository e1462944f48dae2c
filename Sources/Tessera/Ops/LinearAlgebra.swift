// Linear algebra ops: matmul (batched, broadcasting, numpy's 1-D rules).

/// The matrix product of `a` and `b`, batched over leading axes with broadcasting.
/// A 1-D `a` is a row vector and a 1-D `b` a column vector; those axes are
/// removed from the result, as in numpy.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    opPrecondition(a.ndim >= 1 && b.ndim >= 1, "matmul", "needs at least 1-D inputs, got \(a.shape) and \(b.shape)")
    let dtype = promoteTypes(a.dtype, b.dtype)
    opPrecondition(
        dtype.isFloatingPoint, "matmul",
        "only real floating point types are supported, got \(a.dtype) and \(b.dtype)")
    let x = a.ndim == 1 ? a.reshaped([1, a.shape[0]]) : a
    let y = b.ndim == 1 ? b.reshaped([b.shape[0], 1]) : b
    let m = x.dim(-2), k = x.dim(-1), k2 = y.dim(-2), n = y.dim(-1)
    opPrecondition(k == k2, "matmul", "inner dimensions differ: \(a.shape) and \(b.shape)")
    let batch = broadcastShapes(Array(x.shape.dropLast(2)), Array(y.shape.dropLast(2)), "matmul")
    let out = Tensor(
        shape: batch + [m, n], dtype: dtype, primitive: .matmul,
        inputs: [x.asType(dtype).broadcast(to: batch + [m, k]), y.asType(dtype).broadcast(to: batch + [k, n])])
    var shape = batch
    if a.ndim > 1 { shape.append(m) }
    if b.ndim > 1 { shape.append(n) }
    return out.reshaped(shape)
}
