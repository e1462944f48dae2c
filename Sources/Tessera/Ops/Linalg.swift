// Linear algebra, MLX's `mx.linalg` (mlx-swift's `MLXLinalg`): norms built
// from ordinary ops (and singular values), and factorizations through LAPACK
// opened at run time. Factorizations compute in float64 and return the
// input's float type (integers give float32); without LAPACK, evaluation
// throws `TesseraError.libraryUnavailable` saying what to install.
//
// Each output of a multi-output factorization (qr, svd, eigh) is its own
// node and repeats the factorization when several are evaluated.

/// The order of `Linalg.norm`: a number (`2`, `1`, `.infinity`, `-.infinity`, `0`, any p),
/// or the Frobenius / nuclear matrix norms.
public enum NormOrder: Sendable, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    case p(Double)
    case fro
    case nuc

    public static let inf = NormOrder.p(.infinity)
    public static let negativeInf = NormOrder.p(-.infinity)

    public init(integerLiteral value: Int) { self = .p(Double(value)) }
    public init(floatLiteral value: Double) { self = .p(value) }
}

public enum Linalg {
    /// The float type a factorization returns.
    private static func resultType(_ dtype: DType) -> DType { dtype.isFloatingPoint ? dtype : .float32 }

    private static func checkMatrix(_ op: String, _ a: Tensor, square: Bool) {
        opPrecondition(a.ndim >= 2, op, "needs a matrix (at least 2 axes), got \(a.shape)")
        opPrecondition(!a.dtype.isComplex, op, "complex matrices are not supported")
        if square { opPrecondition(a.dim(-1) == a.dim(-2), op, "needs square matrices, got \(a.shape)") }
    }

    private static func factor(_ a: Tensor, _ primitive: Primitive, shape: [Int]) -> Tensor {
        Tensor(shape: shape, dtype: .float64, primitive: primitive, inputs: [a.asType(.float64)])
            .asType(resultType(a.dtype))
    }

    /// The inverse of each square matrix of the last two axes.
    ///
    /// ```swift
    /// let ai = Linalg.inv(a)   // matmul(a, ai) ≈ identity
    /// ```
    public static func inv(_ a: Tensor) -> Tensor {
        checkMatrix("inv", a, square: true)
        return factor(a, .inverse, shape: a.shape)
    }

    /// The solution x of `a x = b`; `b` is `[..., n]` (one vector) or `[..., n, m]`.
    public static func solve(_ a: Tensor, _ b: Tensor) -> Tensor {
        checkMatrix("solve", a, square: true)
        let n = a.dim(-1)
        let vector = b.ndim == 1 || (b.ndim == a.ndim - 1 && b.dim(-1) == n)
        let rhs = vector ? b.expandedDimensions(axis: -1) : b
        opPrecondition(rhs.dim(-2) == n, "solve", "b \(b.shape) does not match a \(a.shape)")
        let batch = broadcastShapes(Array(a.shape.dropLast(2)), Array(rhs.shape.dropLast(2)), "solve")
        let dtype = resultType(promoteTypes(a.dtype, b.dtype))
        let out = Tensor(
            shape: batch + [n, rhs.dim(-1)], dtype: .float64, primitive: .solve,
            inputs: [
                a.asType(.float64).broadcast(to: batch + [n, n]),
                rhs.asType(.float64).broadcast(to: batch + [n, rhs.dim(-1)])
            ]
        ).asType(dtype)
        return vector ? out.squeezed(axis: -1) : out
    }

    /// The Cholesky factor of symmetric positive-definite matrices: lower `L`
    /// with `L Lᵀ = a` (or upper `U` with `Uᵀ U = a`). Reads one triangle.
    public static func cholesky(_ a: Tensor, upper: Bool = false) -> Tensor {
        checkMatrix("cholesky", a, square: true)
        return factor(a, .cholesky(upper: upper), shape: a.shape)
    }

    /// The reduced QR decomposition: `q [..., m, k]` with orthonormal columns
    /// and upper-triangular `r [..., k, n]`, k = min(m, n), `q r = a`.
    public static func qr(_ a: Tensor) -> (q: Tensor, r: Tensor) {
        checkMatrix("qr", a, square: false)
        let m = a.dim(-2), n = a.dim(-1), k = Swift.min(m, n), batch = Array(a.shape.dropLast(2))
        return (factor(a, .qr(part: 0), shape: batch + [m, k]), factor(a, .qr(part: 1), shape: batch + [k, n]))
    }

    /// The singular value decomposition `a = u[..., :k] * s @ vt[..., :k, :]`:
    /// `u [..., m, m]`, `s [..., k]` descending, `vt [..., n, n]` (MLX's full matrices).
    public static func svd(_ a: Tensor) -> (u: Tensor, s: Tensor, vt: Tensor) {
        checkMatrix("svd", a, square: false)
        let m = a.dim(-2), n = a.dim(-1), batch = Array(a.shape.dropLast(2))
        return (
            factor(a, .svd(part: 0), shape: batch + [m, m]), singularValues(a),
            factor(a, .svd(part: 2), shape: batch + [n, n])
        )
    }

    /// The singular values `[..., min(m, n)]`, descending.
    public static func singularValues(_ a: Tensor) -> Tensor {
        checkMatrix("svd", a, square: false)
        return factor(a, .svd(part: 1), shape: Array(a.shape.dropLast(2)) + [Swift.min(a.dim(-2), a.dim(-1))])
    }

    /// Eigenvalues (ascending) and eigenvectors (columns) of symmetric
    /// matrices, from the lower triangle (`upper: true`: the upper one).
    public static func eigh(_ a: Tensor, upper: Bool = false) -> (eigenvalues: Tensor, eigenvectors: Tensor) {
        checkMatrix("eigh", a, square: true)
        let batch = Array(a.shape.dropLast(2))
        return (
            factor(a, .eigh(part: 0, upper: upper), shape: batch + [a.dim(-1)]),
            factor(a, .eigh(part: 1, upper: upper), shape: a.shape)
        )
    }

    /// A vector or matrix norm, as numpy/MLX `linalg.norm`.
    ///
    /// With `axes` nil: the 2-norm of the flattened tensor when `order` is nil,
    /// else a vector norm of a 1-D or a matrix norm of a 2-D tensor. One axis
    /// gives vector norms (`p`: sum(|x|^p)^(1/p); `.inf`/`.negativeInf`: max/min
    /// |x|; 0: the count of non-zeros); two axes give matrix norms (`.fro`,
    /// `.nuc`, 1/-1: max/min column sum, `.inf`/`.negativeInf`: max/min row
    /// sum, 2/-2: largest/smallest singular value).
    ///
    /// ```swift
    /// Linalg.norm(v)                          // Euclidean length
    /// Linalg.norm(m, order: .nuc)             // sum of singular values
    /// Linalg.norm(x, order: 1, axes: [-1])    // L1 norm of each row
    /// ```
    public static func norm(_ x: Tensor, order: NormOrder? = nil, axes: [Int]? = nil, keepDims: Bool = false) -> Tensor
    {
        let op = "norm"
        opPrecondition(!x.dtype.isComplex, op, "complex inputs are not supported")
        let xf = x.dtype.isFloatingPoint ? x : x.asType(.float32)
        guard let order else {
            // The 2-norm over the given axes (all when nil): Frobenius for matrices.
            return sqrt(square(xf).sum(axes: axes, keepDims: keepDims))
        }
        let chosen: [Int]
        if let axes {
            chosen = normalizeAxes(axes, x.ndim, op)
        } else {
            opPrecondition(
                x.ndim == 1 || x.ndim == 2, op, "an order needs a 1-D or 2-D input or explicit axes, got \(x.shape)")
            chosen = Array(0..<x.ndim)
        }
        opPrecondition(chosen.count == 1 || chosen.count == 2, op, "needs one or two axes, got \(chosen)")
        if chosen.count == 1 {
            guard case .p(let p) = order else { fatalError("[norm] .fro and .nuc are matrix norms; give two axes") }
            return vectorNorm(xf, p: p, axis: chosen[0], keepDims: keepDims)
        }
        return matrixNorm(xf, order: order, axes: (chosen[0], chosen[1]), keepDims: keepDims)
    }

    private static func vectorNorm(_ x: Tensor, p: Double, axis: Int, keepDims: Bool) -> Tensor {
        let a = abs(x)
        switch p {
        case .infinity: return a.max(axes: [axis], keepDims: keepDims)
        case -.infinity: return a.min(axes: [axis], keepDims: keepDims)
        case 0: return (x .!= 0).asType(x.dtype).sum(axes: [axis], keepDims: keepDims)
        case 1: return a.sum(axes: [axis], keepDims: keepDims)
        case 2: return sqrt(square(x).sum(axes: [axis], keepDims: keepDims))
        default: return power(power(a, p).sum(axes: [axis], keepDims: keepDims), 1 / p)
        }
    }

    private static func matrixNorm(_ x: Tensor, order: NormOrder, axes: (Int, Int), keepDims: Bool) -> Tensor {
        let (row, col) = axes
        let result: Tensor
        switch order {
        case .fro:
            result = sqrt(square(x).sum(axes: [row, col], keepDims: true))
        case .nuc, .p(2), .p(-2):
            // Singular values of the matrices moved to the last two axes.
            let rest = (0..<x.ndim).filter { $0 != row && $0 != col }
            let s = singularValues(x.transposed(axes: rest + [row, col]))
            let reduced: Tensor
            switch order {
            case .nuc: reduced = s.sum(axes: [-1])
            case .p(2): reduced = s.max(axes: [-1])
            default: reduced = s.min(axes: [-1])
            }
            var shape = x.shape
            shape[row] = 1
            shape[col] = 1
            result = reduced.reshaped(shape)
        case .p(1): result = abs(x).sum(axes: [row], keepDims: true).max(axes: [col], keepDims: true)
        case .p(-1): result = abs(x).sum(axes: [row], keepDims: true).min(axes: [col], keepDims: true)
        case .p(.infinity): result = abs(x).sum(axes: [col], keepDims: true).max(axes: [row], keepDims: true)
        case .p(-.infinity): result = abs(x).sum(axes: [col], keepDims: true).min(axes: [row], keepDims: true)
        case .p(let p): fatalError("[norm] matrix norm order \(p) is not supported (use .fro, .nuc, ±1, ±2, ±inf)")
        }
        return keepDims ? result : result.squeezed(axes: [row, col])
    }
}
