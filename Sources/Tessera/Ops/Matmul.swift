// Matmul ops (the API of Backends/CPU/Matmul): matmul (batched, broadcasting, numpy's 1-D
// rules) and the matrix-shaped helpers tril, triu, diagonal, diag. The
// factorizations and norms (mx.linalg) are Ops/Linalg.swift.

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
        inputs: [
            matmulOperand(x, dtype).broadcast(to: batch + [m, k]), matmulOperand(y, dtype).broadcast(to: batch + [k, n])
        ])
    var shape = batch
    if a.ndim > 1 { shape.append(m) }
    if b.ndim > 1 { shape.append(n) }
    return out.reshaped(shape)
}

/// An input of a matmul node computing `dtype`: cast to it, except that on
/// the CPU a float32 product keeps float16/bfloat16 operands as they are (its
/// kernels read half weights as half and widen them in registers, so a half
/// model's weights are never converted whole at each step). Other backends
/// get operands of the output's dtype.
func matmulOperand(_ t: Tensor, _ dtype: DType) -> Tensor {
    if t.dtype == dtype { return t }
    if dtype == .float32, t.dtype == .float16 || t.dtype == .bfloat16, Stream.current.device == .cpu { return t }
    return t.asType(dtype)
}

// MARK: - Triangles and diagonals

extension Tensor {
    /// True where column - row <= k, over the last two axes of `shape`.
    private static func triangleMask(_ rows: Int, _ cols: Int, k: Int) -> Tensor {
        let r = arange(0, rows, dtype: .int64).reshaped([rows, 1])
        let c = arange(0, cols, dtype: .int64).reshaped([1, cols])
        return (c - r) .<= k
    }

    /// The lower triangle of the last two axes (entries with column - row <= k), zeros elsewhere.
    ///
    /// ```swift
    /// Tensor.ones([3, 3]).tril()   // [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    /// ```
    public func tril(k: Int = 0) -> Tensor {
        opPrecondition(ndim >= 2, "tril", "needs at least 2 dimensions, got shape \(shape)")
        return which(Tensor.triangleMask(dim(-2), dim(-1), k: k), self, Tensor.zeros([], dtype: dtype))
    }

    /// The upper triangle of the last two axes (entries with column - row >= k), zeros elsewhere.
    public func triu(k: Int = 0) -> Tensor {
        opPrecondition(ndim >= 2, "triu", "needs at least 2 dimensions, got shape \(shape)")
        return which(Tensor.triangleMask(dim(-2), dim(-1), k: k - 1), Tensor.zeros([], dtype: dtype), self)
    }

    /// The diagonal `offset` (above the main one when positive) of the plane of
    /// `axis1` and `axis2`, as a new last axis, as numpy's `diagonal`.
    public func diagonal(offset: Int = 0, axis1: Int = 0, axis2: Int = 1) -> Tensor {
        let a1 = normalizeAxis(axis1, ndim, "diagonal"), a2 = normalizeAxis(axis2, ndim, "diagonal")
        opPrecondition(a1 != a2, "diagonal", "axis1 and axis2 are both \(a1) for shape \(shape)")
        let n1 = shape[a1], n2 = shape[a2]
        let length = Swift.max(0, offset >= 0 ? Swift.min(n1, n2 - offset) : Swift.min(n1 + offset, n2))
        let i = Tensor.arange(Swift.max(-offset, 0), Swift.max(-offset, 0) + length)
        let j = Tensor.arange(Swift.max(offset, 0), Swift.max(offset, 0) + length)
        var sizes = shape
        sizes[a1] = 1
        sizes[a2] = 1
        let picked = gather(self, [i, j], axes: [a1, a2], sliceSizes: sizes, "diagonal")
        let rest = shape.indices.filter { $0 != a1 && $0 != a2 }.map { shape[$0] }
        return picked.reshaped([length] + rest).movedAxis(source: 0, destination: -1)
    }

    /// For a 1-D tensor, a square matrix with it on diagonal `k`; for a 2-D
    /// tensor, its diagonal `k`. As numpy's `diag`.
    ///
    /// ```swift
    /// Tensor([1, 2]).diag()   // [[1, 0], [0, 2]]
    /// ```
    public func diag(k: Int = 0) -> Tensor {
        opPrecondition(ndim == 1 || ndim == 2, "diag", "needs a 1-D or 2-D tensor, got shape \(shape)")
        if ndim == 2 { return diagonal(offset: k) }
        let n = shape[0], side = n + Swift.abs(k)
        let rows = Tensor.arange(Swift.max(-k, 0), Swift.max(-k, 0) + n)
        let cols = Tensor.arange(Swift.max(k, 0), Swift.max(k, 0) + n)
        return scatter(
            Tensor.zeros([side, side], dtype: dtype), reshaped([n, 1, 1]), [rows, cols], axes: [0, 1], .set, "diag")
    }
}
