// CPU linear algebra through LAPACK (see LAPACK.swift): inverse, solve,
// Cholesky, QR, SVD, symmetric eigen-decomposition. Inputs are float64 with
// any strides, batched over all axes but the last two; each matrix is copied
// into a column-major scratch buffer (LAPACK's layout), factorised, and the
// requested part written row-major into the output.

enum LinalgKernels {
    /// Column-major copy of matrix `rows × cols` of `view` starting at element `offset`.
    private static func load(_ view: ArrayView, _ p: UnsafePointer<Double>, _ offset: Int, _ rows: Int, _ cols: Int)
        -> [Double]
    {
        let nd = view.shape.count
        let s0 = view.strides[nd - 2], s1 = view.strides[nd - 1]
        var buffer = [Double](repeating: 0, count: Swift.max(rows * cols, 1))
        for j in 0..<cols {
            for i in 0..<rows { buffer[i + j * rows] = p[offset + i * s0 + j * s1] }
        }
        return buffer
    }

    /// Writes the top-left `rows × cols` of column-major `buffer` (leading dimension `ld`) row-major at `out`.
    private static func store(
        _ buffer: [Double], ld: Int, rows: Int, cols: Int, into out: UnsafeMutablePointer<Double>,
        keep: (Int, Int) -> Bool = { _, _ in true }
    ) {
        for i in 0..<rows {
            for j in 0..<cols { out[i * cols + j] = keep(i, j) ? buffer[i + j * ld] : 0 }
        }
    }

    private static func fail(_ op: String, _ reason: String) -> TesseraError {
        .invalidData(op: op, reason: reason)
    }

    static func evaluate(_ primitive: Primitive, inputs: [ArrayView], output: ArrayView) throws {
        let out = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: Double.self)
        let a = inputs[0]
        let nd = a.shape.count
        let m = a.shape[nd - 2], n = a.shape[nd - 1]
        if output.count == 0 { return }
        let lapack = try LAPACK.get()
        let pa = try a.hostPointer(Double.self)
        let pb = try inputs.count > 1 ? inputs[1].hostPointer(Double.self) : pa
        let perMatrix = output.count / Swift.max(a.shape.prefix(nd - 2).reduce(1, *), 1)
        var info: LInt = 0
        var M = LInt(m), N = LInt(n)
        try forEachBatch(shape: Array(a.shape.prefix(nd - 2)), strides: inputs.map { Array($0.strides.prefix(nd - 2)) }) {
            batch, offsets in
            let o = out + batch * perMatrix
            var buf = load(a, pa, offsets[0], m, n)
            var lda = LInt(Swift.max(m, 1))
            switch primitive {
            case .inverse:
                var pivots = [LInt](repeating: 0, count: Swift.max(n, 1))
                lapack.dgetrf(&M, &N, &buf, &lda, &pivots, &info)
                if info > 0 { throw fail("inv", "matrix \(batch) of the batch is singular") }
                var query = 0.0, lwork: LInt = -1
                lapack.dgetri(&N, &buf, &lda, &pivots, &query, &lwork, &info)
                lwork = LInt(Swift.max(query, 1))
                var work = [Double](repeating: 0, count: Int(lwork))
                lapack.dgetri(&N, &buf, &lda, &pivots, &work, &lwork, &info)
                if info != 0 { throw fail("inv", "LAPACK dgetri failed (info \(info))") }
                store(buf, ld: n, rows: n, cols: n, into: o)
            case .solve:
                let b = inputs[1]
                let rhs = b.shape[nd - 1]
                var bBuf = load(b, pb, offsets[1], n, rhs)
                var nrhs = LInt(rhs), ldb = LInt(Swift.max(n, 1))
                var pivots = [LInt](repeating: 0, count: Swift.max(n, 1))
                lapack.dgesv(&N, &nrhs, &buf, &lda, &pivots, &bBuf, &ldb, &info)
                if info > 0 { throw fail("solve", "matrix \(batch) of the batch is singular") }
                store(bBuf, ld: n, rows: n, cols: rhs, into: o)
            case .cholesky(let upper):
                var uplo: CChar = upper ? 85 : 76  // "U" / "L"
                lapack.dpotrf(&uplo, &N, &buf, &lda, &info, 1)
                if info > 0 { throw fail("cholesky", "matrix \(batch) of the batch is not positive definite") }
                store(buf, ld: n, rows: n, cols: n, into: o) { i, j in upper ? i <= j : i >= j }
            case .qr(let part):
                let k = Swift.min(m, n)
                var tau = [Double](repeating: 0, count: Swift.max(k, 1))
                var query = 0.0, lwork: LInt = -1
                lapack.dgeqrf(&M, &N, &buf, &lda, &tau, &query, &lwork, &info)
                lwork = LInt(Swift.max(query, 1))
                var work = [Double](repeating: 0, count: Int(lwork))
                lapack.dgeqrf(&M, &N, &buf, &lda, &tau, &work, &lwork, &info)
                if part == 1 {
                    store(buf, ld: m, rows: k, cols: n, into: o) { i, j in i <= j }
                } else {
                    var K = LInt(k)
                    lwork = -1
                    lapack.dorgqr(&M, &K, &K, &buf, &lda, &tau, &query, &lwork, &info)
                    lwork = LInt(Swift.max(query, 1))
                    work = [Double](repeating: 0, count: Int(lwork))
                    lapack.dorgqr(&M, &K, &K, &buf, &lda, &tau, &work, &lwork, &info)
                    store(buf, ld: m, rows: m, cols: k, into: o)
                }
                if info != 0 { throw fail("qr", "LAPACK failed (info \(info))") }
            case .svd(let part):
                let k = Swift.min(m, n)
                var jobz: CChar = part == 1 ? 78 : 65  // "N" / "A"
                var s = [Double](repeating: 0, count: Swift.max(k, 1))
                var u = [Double](repeating: 0, count: part == 1 ? 1 : Swift.max(m * m, 1))
                var vt = [Double](repeating: 0, count: part == 1 ? 1 : Swift.max(n * n, 1))
                var ldu = LInt(Swift.max(m, 1)), ldvt = LInt(Swift.max(n, 1))
                var iwork = [LInt](repeating: 0, count: Swift.max(8 * k, 1))
                var query = 0.0, lwork: LInt = -1
                lapack.dgesdd(&jobz, &M, &N, &buf, &lda, &s, &u, &ldu, &vt, &ldvt, &query, &lwork, &iwork, &info, 1)
                lwork = LInt(Swift.max(query, 1))
                var work = [Double](repeating: 0, count: Int(lwork))
                lapack.dgesdd(&jobz, &M, &N, &buf, &lda, &s, &u, &ldu, &vt, &ldvt, &work, &lwork, &iwork, &info, 1)
                if info != 0 { throw fail("svd", "LAPACK dgesdd did not converge (info \(info))") }
                switch part {
                case 0: store(u, ld: m, rows: m, cols: m, into: o)
                case 1: for i in 0..<k { o[i] = s[i] }
                default: store(vt, ld: n, rows: n, cols: n, into: o)
                }
            case .eigh(let part, let upper):
                var jobz: CChar = part == 1 ? 86 : 78  // "V" / "N"
                var uplo: CChar = upper ? 85 : 76
                var w = [Double](repeating: 0, count: Swift.max(n, 1))
                var query = 0.0, lwork: LInt = -1
                lapack.dsyev(&jobz, &uplo, &N, &buf, &lda, &w, &query, &lwork, &info, 1, 1)
                lwork = LInt(Swift.max(query, 1))
                var work = [Double](repeating: 0, count: Int(lwork))
                lapack.dsyev(&jobz, &uplo, &N, &buf, &lda, &w, &work, &lwork, &info, 1, 1)
                if info != 0 { throw fail("eigh", "LAPACK dsyev did not converge (info \(info))") }
                if part == 0 {
                    for i in 0..<n { o[i] = w[i] }
                } else {
                    store(buf, ld: n, rows: n, cols: n, into: o)
                }
            default:
                fatalError("[\(primitive.name)] is not a LAPACK op")
            }
        }
    }
}
