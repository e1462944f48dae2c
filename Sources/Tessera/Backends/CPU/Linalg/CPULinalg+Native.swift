// Native float64 linear algebra: what CPULinalg runs when no LAPACK can be
// loaded (or TESSERA_DISABLE_BLAS=1), so no optional library decides what is
// correct. Matrices are column-major scratch buffers, as for LAPACK, and each
// routine leaves its result where the LAPACK routine it stands in for does:
//
// - LU with partial pivoting (dgetrf) for inverse and solve;
// - Cholesky, right-looking (dpotrf);
// - Householder QR with LAPACK's reflector convention (dgeqrf: beta =
//   -sign(alpha)·norm, so R's signs equal LAPACK's) and Q formed backwards (dorg2r);
// - SVD by one-sided Jacobi (Hestenes): relative accuracy on every singular
//   value, left vectors completed to an orthonormal basis;
// - symmetric eigen-decomposition by tridiagonal reduction (Householder) and
//   the implicit QL iteration with Wilkinson shifts.
//
// The column loops run on contiguous memory (column-major) so they vectorise;
// the trailing updates of LU and Cholesky split their columns over the thread
// pool when the remaining block is large. Batches of small matrices run in
// parallel in CPULinalg instead.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum NativeLinalg {
    /// Column work (multiply-adds) above which a trailing update uses the pool.
    static let parallelWork = 1 << 16

    /// Runs `body` on column ranges of `columns`, in parallel when `work` is large.
    private static func forColumns(_ columns: Range<Int>, work: Int, _ body: (Range<Int>) -> Void) {
        if work < parallelWork || columns.count < 8 {
            body(columns)
            return
        }
        ThreadPool.shared.parallelRanges(columns.count, grain: 4) { r in
            body((columns.lowerBound + r.lowerBound)..<(columns.lowerBound + r.upperBound))
        }
    }

    // MARK: LU

    /// Factorises the n×n matrix `a` (leading dimension n) in place into P A = L U;
    /// `pivots[j]` is the row swapped with row j. Returns false for an exactly singular matrix.
    static func luFactor(_ a: UnsafeMutablePointer<Double>, n: Int, pivots: UnsafeMutablePointer<Int>) -> Bool {
        var singular = false
        for j in 0..<n {
            let col = a + j * n
            var p = j
            var best = abs(col[j])
            for i in (j + 1)..<n where abs(col[i]) > best {
                best = abs(col[i])
                p = i
            }
            pivots[j] = p
            if p != j {
                for c in 0..<n { swap(&a[j + c * n], &a[p + c * n]) }
            }
            let pivot = col[j]
            if pivot == 0 || !pivot.isFinite {
                singular = true
                continue
            }
            let inverse = 1 / pivot
            for i in (j + 1)..<n { col[i] *= inverse }
            let rows = n - j - 1
            forColumns((j + 1)..<n, work: rows * rows) { range in
                for c in range {
                    let target = a + c * n
                    let f = target[j]
                    if f == 0 { continue }
                    for i in (j + 1)..<n { target[i] -= col[i] * f }
                }
            }
        }
        return !singular
    }

    /// Solves A X = B for the `rhs` columns of `b` (leading dimension n) given `luFactor`'s output.
    static func luSolve(
        _ lu: UnsafePointer<Double>, n: Int, pivots: UnsafePointer<Int>, _ b: UnsafeMutablePointer<Double>, rhs: Int
    ) {
        for r in 0..<rhs {
            let x = b + r * n
            for j in 0..<n where pivots[j] != j { swap(&x[j], &x[pivots[j]]) }
            // Forward with unit lower L, column by column.
            for j in 0..<n {
                let v = x[j]
                if v == 0 { continue }
                let col = lu + j * n
                for i in (j + 1)..<n { x[i] -= col[i] * v }
            }
            // Backward with U.
            for j in stride(from: n - 1, through: 0, by: -1) {
                let col = lu + j * n
                x[j] /= col[j]
                let v = x[j]
                for i in 0..<j { x[i] -= col[i] * v }
            }
        }
    }

    // MARK: Cholesky

    /// Factorises the symmetric positive-definite n×n `a` in place. Reads the lower
    /// triangle (or the upper with `upper`) and leaves L there (or U = Lᵀ).
    /// Returns false when the matrix is not positive definite.
    static func cholesky(_ a: UnsafeMutablePointer<Double>, n: Int, upper: Bool) -> Bool {
        if upper { transposeTriangle(a, n: n, fromUpper: true) }
        defer { if upper { transposeTriangle(a, n: n, fromUpper: false) } }
        for j in 0..<n {
            let col = a + j * n
            let d = col[j]
            if !(d > 0) || !d.isFinite { return false }
            let l = d.squareRoot()
            col[j] = l
            let inverse = 1 / l
            for i in (j + 1)..<n { col[i] *= inverse }
            let rows = n - j - 1
            forColumns((j + 1)..<n, work: rows * rows / 2) { range in
                for c in range {
                    let target = a + c * n
                    let f = col[c]
                    if f == 0 { continue }
                    for i in c..<n { target[i] -= col[i] * f }
                }
            }
        }
        return true
    }

    /// Copies one triangle onto the other (upper to lower, or lower to upper).
    private static func transposeTriangle(_ a: UnsafeMutablePointer<Double>, n: Int, fromUpper: Bool) {
        for j in 0..<n {
            for i in (j + 1)..<n {
                if fromUpper { a[i + j * n] = a[j + i * n] } else { a[j + i * n] = a[i + j * n] }
            }
        }
    }

    // MARK: QR

    /// Householder QR of the m×n `a` (leading dimension m) in place: R on and
    /// above the diagonal, the reflectors' vectors below it, their scales in `tau` (min(m, n)).
    static func qrFactor(_ a: UnsafeMutablePointer<Double>, m: Int, n: Int, tau: UnsafeMutablePointer<Double>) {
        let k = Swift.min(m, n)
        for j in 0..<k {
            let col = a + j * m
            let alpha = col[j]
            var scale = 0.0
            for i in (j + 1)..<m { scale = Swift.max(scale, abs(col[i])) }
            var xnorm = 0.0
            if scale > 0 {
                var sum = 0.0
                for i in (j + 1)..<m {
                    let v = col[i] / scale
                    sum += v * v
                }
                xnorm = scale * sum.squareRoot()
            }
            if xnorm == 0 {
                tau[j] = 0
                continue
            }
            let beta = -copysign(hypot(alpha, xnorm), alpha)
            tau[j] = (beta - alpha) / beta
            let inverse = 1 / (alpha - beta)
            for i in (j + 1)..<m { col[i] *= inverse }
            col[j] = beta
            applyReflector(a, ld: m, rows: j..<m, columns: (j + 1)..<n, vector: col, tau: tau[j])
        }
    }

    /// Applies H = I - tau v vᵀ (v[first] = 1, the rest from `vector`) to the
    /// rows `rows` of columns `columns` of `a` from the left.
    private static func applyReflector(
        _ a: UnsafeMutablePointer<Double>, ld: Int, rows: Range<Int>, columns: Range<Int>,
        vector: UnsafePointer<Double>, tau: Double
    ) {
        if tau == 0 || rows.isEmpty { return }
        let first = rows.lowerBound
        forColumns(columns, work: rows.count * columns.count) { range in
            for c in range {
                let target = a + c * ld
                var w = target[first]
                for i in (first + 1)..<rows.upperBound { w += vector[i] * target[i] }
                w *= tau
                if w == 0 { continue }
                target[first] -= w
                for i in (first + 1)..<rows.upperBound { target[i] -= w * vector[i] }
            }
        }
    }

    /// Overwrites the first k columns of `qrFactor`'s output with Q's (m×k, orthonormal columns).
    static func qrFormQ(_ a: UnsafeMutablePointer<Double>, m: Int, k: Int, tau: UnsafePointer<Double>) {
        for j in stride(from: k - 1, through: 0, by: -1) {
            let col = a + j * m
            applyReflector(a, ld: m, rows: j..<m, columns: (j + 1)..<k, vector: col, tau: tau[j])
            for i in (j + 1)..<m { col[i] *= -tau[j] }
            col[j] = 1 - tau[j]
            for i in 0..<j { col[i] = 0 }
        }
    }

    // MARK: SVD

    /// The singular values (descending) of the m×n column-major `a`, and with
    /// `vectors` the full U (m×m) and Vᵀ (n×n), column-major. Throws when the
    /// Jacobi sweeps do not converge.
    static func svd(_ a: [Double], m: Int, n: Int, vectors: Bool) throws -> (s: [Double], u: [Double], vt: [Double]) {
        // One-sided Jacobi orthogonalises columns: work on the taller of A and Aᵀ.
        let transposed = m < n
        let rows = transposed ? n : m, cols = transposed ? m : n
        var g = [Double](repeating: 0, count: Swift.max(rows * cols, 1))
        for j in 0..<cols {
            for i in 0..<rows { g[i + j * rows] = transposed ? a[j + i * m] : a[i + j * m] }
        }
        var v = [Double](repeating: 0, count: vectors ? Swift.max(cols * cols, 1) : 1)
        if vectors { for i in 0..<cols { v[i + i * cols] = 1 } }
        try g.withUnsafeMutableBufferPointer { gp in
            try v.withUnsafeMutableBufferPointer { vp in
                try jacobiOrthogonalise(gp.baseAddress!, rows: rows, cols: cols, v: vectors ? vp.baseAddress : nil)
            }
        }
        // Singular values are the column norms; order them descending.
        var norms = (0..<cols).map { j -> Double in
            var scale = 0.0
            for i in 0..<rows { scale = Swift.max(scale, abs(g[i + j * rows])) }
            if scale == 0 { return 0 }
            var sum = 0.0
            for i in 0..<rows {
                let x = g[i + j * rows] / scale
                sum += x * x
            }
            return scale * sum.squareRoot()
        }
        let order = (0..<cols).sorted { norms[$0] > norms[$1] || (norms[$0] == norms[$1] && $0 < $1) }
        norms = order.map { norms[$0] }
        if !vectors { return (norms, [], []) }
        // Left vectors of the non-negligible values, then completed to a basis.
        var left = [Double](repeating: 0, count: rows * rows)
        let negligible = (norms.first ?? 0) * Double(rows) * Double.ulpOfOne
        var filled = 0
        for (position, j) in order.enumerated() where norms[position] > negligible && norms[position] > 0 {
            for i in 0..<rows { left[i + filled * rows] = g[i + j * rows] / norms[position] }
            filled += 1
        }
        completeBasis(&left, rows: rows, filled: filled)
        // Right vectors in the same order (V's columns), as an orthogonal cols×cols matrix.
        var right = [Double](repeating: 0, count: cols * cols)
        for (position, j) in order.enumerated() {
            for i in 0..<cols { right[i + position * cols] = v[i + j * cols] }
        }
        // A = U S Vᵀ; for Aᵀ = U' S V'ᵀ, A = V' S U'ᵀ: the roles swap.
        let u = transposed ? right : left, vFull = transposed ? left : right
        var vt = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { vt[i + j * n] = vFull[j + i * n] } }
        return (norms, u, vt)
    }

    /// Rotates pairs of columns of `g` (rows×cols) until all are orthogonal
    /// to working precision, applying the same rotations to `v` (cols×cols).
    private static func jacobiOrthogonalise(
        _ g: UnsafeMutablePointer<Double>, rows: Int, cols: Int, v: UnsafeMutablePointer<Double>?
    ) throws {
        let tolerance = Double.ulpOfOne * Double(rows).squareRoot()
        for _ in 0..<80 {
            var rotated = false
            for p in 0..<Swift.max(cols - 1, 0) {
                for q in (p + 1)..<cols {
                    let gp = g + p * rows, gq = g + q * rows
                    var alpha = 0.0, beta = 0.0, gamma = 0.0
                    for i in 0..<rows {
                        alpha += gp[i] * gp[i]
                        beta += gq[i] * gq[i]
                        gamma += gp[i] * gq[i]
                    }
                    if gamma == 0 || abs(gamma) <= tolerance * (alpha * beta).squareRoot() { continue }
                    rotated = true
                    let zeta = (beta - alpha) / (2 * gamma)
                    let t = copysign(1, zeta) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                    let c = 1 / (1 + t * t).squareRoot(), s = c * t
                    rotate(gp, gq, count: rows, c: c, s: s)
                    if let v { rotate(v + p * cols, v + q * cols, count: cols, c: c, s: s) }
                }
            }
            if !rotated { return }
        }
        throw TesseraError.invalidData(op: "svd", reason: "the Jacobi iteration did not converge (non-finite input?)")
    }

    /// x, y ← c x - s y, s x + c y.
    @inline(__always)
    private static func rotate(
        _ x: UnsafeMutablePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int, c: Double, s: Double
    ) {
        for i in 0..<count {
            let a = x[i], b = y[i]
            x[i] = c * a - s * b
            y[i] = s * a + c * b
        }
    }

    /// Extends the first `filled` orthonormal columns of the rows×rows `q` to an
    /// orthonormal basis. Each new column starts from the unit vector least inside
    /// the current span (the row of q with the smallest sum of squares: its
    /// residual is then at least 1/√rows) and is orthogonalised twice (Gram-Schmidt).
    private static func completeBasis(_ q: inout [Double], rows: Int, filled: Int) {
        var inside = [Double](repeating: 0, count: rows)  // squared length of each e_i's projection
        for j in 0..<filled {
            for i in 0..<rows { inside[i] += q[i + j * rows] * q[i + j * rows] }
        }
        for count in filled..<rows {
            var candidate = 0
            for i in 1..<rows where inside[i] < inside[candidate] { candidate = i }
            var x = [Double](repeating: 0, count: rows)
            x[candidate] = 1
            for _ in 0..<2 {
                for j in 0..<count {
                    var d = 0.0
                    for i in 0..<rows { d += q[i + j * rows] * x[i] }
                    for i in 0..<rows { x[i] -= d * q[i + j * rows] }
                }
            }
            let norm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in 0..<rows {
                q[i + count * rows] = x[i] / norm
                inside[i] += q[i + count * rows] * q[i + count * rows]
            }
        }
    }

    // MARK: Symmetric eigen-decomposition

    /// Eigenvalues (ascending) of the symmetric n×n `a` (column-major), reading
    /// its lower triangle (or upper); with `vectors`, `a` is overwritten by the
    /// eigenvectors as columns. Throws when the QL iteration does not converge.
    static func eigh(_ a: UnsafeMutablePointer<Double>, n: Int, upper: Bool, vectors: Bool) throws -> [Double] {
        if n == 0 { return [] }
        transposeTriangle(a, n: n, fromUpper: upper)
        var d = [Double](repeating: 0, count: n), e = [Double](repeating: 0, count: n)
        tridiagonalise(a, n: n, d: &d, e: &e)
        try implicitQL(&d, &e, z: a, n: n, vectors: vectors)
        // Ascending order, vectors alongside.
        let order = (0..<n).sorted { d[$0] < d[$1] || (d[$0] == d[$1] && $0 < $1) }
        if vectors {
            let copy = Array(UnsafeBufferPointer(start: a, count: n * n))
            for (position, j) in order.enumerated() {
                for i in 0..<n { a[i + position * n] = copy[i + j * n] }
            }
        }
        return order.map { d[$0] }
    }

    /// Householder reduction of the symmetric `a` (both triangles filled) to
    /// tridiagonal form T = Qᵀ A Q: diagonal `d`, sub-diagonal `e[1...]`; `a` becomes Q.
    private static func tridiagonalise(_ a: UnsafeMutablePointer<Double>, n: Int, d: inout [Double], e: inout [Double])
    {
        // Reflector k annihilates column k below its sub-diagonal; a[(k+1)..., k] keeps its vector.
        var taus = [Double](repeating: 0, count: n)
        var p = [Double](repeating: 0, count: n)
        for k in 0..<Swift.max(n - 2, 0) {
            let col = a + k * n
            let alpha = col[k + 1]
            var xnorm = 0.0
            for i in (k + 2)..<n { xnorm = hypot(xnorm, col[i]) }
            if xnorm == 0 {
                taus[k] = 0
                e[k + 1] = alpha
                continue
            }
            let beta = -copysign(hypot(alpha, xnorm), alpha)
            let tau = (beta - alpha) / beta
            let inverse = 1 / (alpha - beta)
            for i in (k + 2)..<n { col[i] *= inverse }
            col[k + 1] = 1
            taus[k] = tau
            e[k + 1] = beta
            // Trailing block B = A[k+1..., k+1...]: B ← H B H with H = I - tau v vᵀ.
            // p = tau B v; w = p - (tau/2)(pᵀv) v; B ← B - v wᵀ - w vᵀ.
            let lo = k + 1
            for i in lo..<n { p[i] = 0 }
            for j in lo..<n {
                let bj = a + j * n
                let vj = col[j]
                for i in lo..<n { p[i] += bj[i] * vj }
            }
            var dot = 0.0
            for i in lo..<n {
                p[i] *= tau
                dot += p[i] * col[i]
            }
            let half = 0.5 * tau * dot
            for i in lo..<n { p[i] -= half * col[i] }
            for j in lo..<n {
                let bj = a + j * n
                let vj = col[j], wj = p[j]
                for i in lo..<n { bj[i] -= col[i] * wj + p[i] * vj }
            }
            col[k + 1] = beta
        }
        for i in 0..<n { d[i] = a[i + i * n] }
        if n >= 2 { e[n - 1] = a[(n - 1) + (n - 2) * n] }
        e[0] = 0
        // Q = H_0 H_1 ... H_{n-3}, accumulated backwards into a.
        var q = [Double](repeating: 0, count: n * n)
        for i in 0..<n { q[i + i * n] = 1 }
        q.withUnsafeMutableBufferPointer { qp in
            let qm = qp.baseAddress!
            for k in stride(from: n - 3, through: 0, by: -1) {
                let col = a + k * n
                let saved = col[k + 1]
                col[k + 1] = 1
                applyReflector(qm, ld: n, rows: (k + 1)..<n, columns: (k + 1)..<n, vector: col, tau: taus[k])
                col[k + 1] = saved
            }
        }
        for i in 0..<(n * n) { a[i] = q[i] }
    }

    /// Eigenvalues of the symmetric tridiagonal (d, e[1...]) by the implicit QL
    /// method with Wilkinson shifts; with `vectors`, rotations accumulate into z's columns.
    private static func implicitQL(
        _ d: inout [Double], _ e: inout [Double], z: UnsafeMutablePointer<Double>, n: Int, vectors: Bool
    ) throws {
        for i in 1..<Swift.max(n, 1) { e[i - 1] = e[i] }
        e[n - 1] = 0
        for l in 0..<n {
            var iterations = 0
            while true {
                var m = l
                while m < n - 1 {
                    let dd = abs(d[m]) + abs(d[m + 1])
                    if abs(e[m]) <= Double.ulpOfOne * dd { break }
                    m += 1
                }
                if m == l { break }
                iterations += 1
                if iterations > 60 {
                    throw TesseraError.invalidData(
                        op: "eigh", reason: "the QL iteration did not converge (non-finite input?)")
                }
                var g = (d[l + 1] - d[l]) / (2 * e[l])
                var r = hypot(g, 1)
                g = d[m] - d[l] + e[l] / (g + copysign(r, g))
                var s = 1.0, c = 1.0, p = 0.0
                var i = m - 1
                var deflated = false
                while i >= l {
                    var f = s * e[i]
                    let b = c * e[i]
                    r = hypot(f, g)
                    e[i + 1] = r
                    if r == 0 {
                        d[i + 1] -= p
                        e[m] = 0
                        deflated = true
                        break
                    }
                    s = f / r
                    c = g / r
                    g = d[i + 1] - p
                    r = (d[i] - g) * s + 2 * c * b
                    p = s * r
                    d[i + 1] = g + p
                    g = c * r - b
                    if vectors {
                        let zi = z + i * n, zj = z + (i + 1) * n
                        for k in 0..<n {
                            f = zj[k]
                            zj[k] = s * zi[k] + c * f
                            zi[k] = c * zi[k] - s * f
                        }
                    }
                    i -= 1
                }
                if deflated { continue }
                d[l] -= p
                e[l] = g
                e[m] = 0
            }
        }
    }
}
