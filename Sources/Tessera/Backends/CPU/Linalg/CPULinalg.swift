// CPU linear algebra: inverse, solve, Cholesky, QR, SVD, symmetric
// eigen-decomposition. Inputs are float64 with any strides, batched over all
// axes but the last two; each matrix is copied into a column-major scratch
// buffer, factorised, and the requested part written row-major into the output.
//
// LAPACK (CPULinalg+LAPACK.swift, opened at run time) computes when it can
// be loaded; otherwise, or with TESSERA_DISABLE_BLAS=1, the native routines
// in CPULinalg+Native.swift do, with the same results to rounding (the same
// conventions: R's signs, ascending eigenvalues, descending singular values).
// The optional library only accelerates. Native batches run in parallel.

import CTesseraKernels
import Synchronization

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

    /// Tests set it to run the native routines where LAPACK is loaded too.
    static let forceNative = Atomic<Bool>(false)

    /// The LAPACK in use: nil when none loads or optional libraries are disabled.
    static var lapack: LAPACK? {
        if tk_blas_disabled() != 0 || forceNative.load(ordering: .relaxed) { return nil }
        return try? LAPACK.get()
    }

    /// One matrix (or pair) of the batch: its index and the inputs' element offsets.
    private struct Item {
        let batch: Int
        let offsets: [Int]
    }

    static func evaluate(_ primitive: Primitive, inputs: [ArrayView], output: ArrayView) throws {
        let out = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: Double.self)
        let a = inputs[0]
        let nd = a.shape.count
        if output.count == 0 { return }
        let pa = try a.hostPointer(Double.self)
        let pb = try inputs.count > 1 ? inputs[1].hostPointer(Double.self) : pa
        let perMatrix = output.count / Swift.max(a.shape.prefix(nd - 2).reduce(1, *), 1)
        var items: [Item] = []
        forEachBatch(shape: Array(a.shape.prefix(nd - 2)), strides: inputs.map { Array($0.strides.prefix(nd - 2)) }) {
            items.append(Item(batch: $0, offsets: $1))
        }
        let context = Context(
            primitive: primitive, a: a, pa: pa, b: inputs.count > 1 ? inputs[1] : a, pb: pb, out: out,
            perMatrix: perMatrix)
        if let lapack {
            for item in items { try context.run(item, lapack: lapack) }
            return
        }
        // Native: matrices of the batch in parallel (each routine splits large updates itself).
        let errors = ErrorSlots(count: items.count)
        ThreadPool.shared.parallelFor(items.count) { i in
            do { try context.run(items[i], lapack: nil) } catch { errors.set(i, error) }
        }
        if let error = errors.first { throw error }
    }

    /// Errors thrown by parallel batch items, one slot each (each written by one thread).
    private final class ErrorSlots: @unchecked Sendable {
        private var slots: [Error?]
        init(count: Int) { slots = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ error: Error) { slots[i] = error }
        var first: Error? { slots.lazy.compactMap { $0 }.first }
    }

    /// What every matrix of one evaluation shares.
    private struct Context {
        let primitive: Primitive
        let a: ArrayView
        let pa: UnsafePointer<Double>
        let b: ArrayView
        let pb: UnsafePointer<Double>
        let out: UnsafeMutablePointer<Double>
        let perMatrix: Int

        func run(_ item: Item, lapack: LAPACK?) throws {
            let nd = a.shape.count
            let m = a.shape[nd - 2], n = a.shape[nd - 1]
            let o = out + item.batch * perMatrix
            let buf = load(a, pa, item.offsets[0], m, n)
            let batch = item.batch
            switch primitive {
            case .inverse:
                let inverse =
                    try lapack.map { try $0.inverse(buf, n: n, batch: batch) }
                    ?? native.inverse(buf, n: n, batch: batch)
                store(inverse, ld: n, rows: n, cols: n, into: o)
            case .solve:
                let rhs = b.shape[nd - 1]
                let bBuf = load(b, pb, item.offsets[1], n, rhs)
                let x =
                    try lapack.map { try $0.solve(buf, bBuf, n: n, rhs: rhs, batch: batch) }
                    ?? native.solve(buf, bBuf, n: n, rhs: rhs, batch: batch)
                store(x, ld: n, rows: n, cols: rhs, into: o)
            case .cholesky(let upper):
                let factor =
                    try lapack.map { try $0.cholesky(buf, n: n, upper: upper, batch: batch) }
                    ?? native.cholesky(buf, n: n, upper: upper, batch: batch)
                store(factor, ld: n, rows: n, cols: n, into: o) { i, j in upper ? i <= j : i >= j }
            case .qr(let part):
                let k = Swift.min(m, n)
                let factors =
                    try lapack.map { try $0.qr(buf, m: m, n: n, formQ: part == 0) }
                    ?? native.qr(buf, m: m, n: n, formQ: part == 0)
                if part == 1 {
                    store(factors, ld: m, rows: k, cols: n, into: o) { i, j in i <= j }
                } else {
                    store(factors, ld: m, rows: m, cols: k, into: o)
                }
            case .svd(let part):
                let k = Swift.min(m, n)
                let (s, u, vt) =
                    try lapack.map { try $0.svd(buf, m: m, n: n, vectors: part != 1) }
                    ?? NativeLinalg.svd(buf, m: m, n: n, vectors: part != 1)
                switch part {
                case 0: store(u, ld: m, rows: m, cols: m, into: o)
                case 1: for i in 0..<k { o[i] = s[i] }
                default: store(vt, ld: n, rows: n, cols: n, into: o)
                }
            case .eigh(let part, let upper):
                let (w, vectors) =
                    try lapack.map { try $0.eigh(buf, n: n, upper: upper, vectors: part == 1) }
                    ?? native.eigh(buf, n: n, upper: upper, vectors: part == 1)
                if part == 0 {
                    for i in 0..<n { o[i] = w[i] }
                } else {
                    store(vectors, ld: n, rows: n, cols: n, into: o)
                }
            default:
                throw TesseraError.invalidData(op: primitive.name, reason: "is not a linear-algebra op")
            }
        }
    }

    /// The native routines with LAPACK's calling shape (column-major buffers in, results out).
    private enum native {
        static func inverse(_ a: [Double], n: Int, batch: Int) throws -> [Double] {
            var identity = [Double](repeating: 0, count: Swift.max(n * n, 1))
            for i in 0..<n { identity[i + i * n] = 1 }
            do {
                return try solve(a, identity, n: n, rhs: n, batch: batch)
            } catch TesseraError.invalidData(_, let reason) {
                throw fail("inv", reason)
            }
        }

        static func solve(_ a: [Double], _ b: [Double], n: Int, rhs: Int, batch: Int) throws -> [Double] {
            var lu = a, x = b
            var pivots = [Int](repeating: 0, count: Swift.max(n, 1))
            let regular = lu.withUnsafeMutableBufferPointer { l in
                pivots.withUnsafeMutableBufferPointer {
                    NativeLinalg.luFactor(l.baseAddress!, n: n, pivots: $0.baseAddress!)
                }
            }
            if !regular { throw fail("solve", "matrix \(batch) of the batch is singular") }
            x.withUnsafeMutableBufferPointer { xp in
                NativeLinalg.luSolve(lu, n: n, pivots: pivots, xp.baseAddress!, rhs: rhs)
            }
            return x
        }

        static func cholesky(_ a: [Double], n: Int, upper: Bool, batch: Int) throws -> [Double] {
            var l = a
            let ok = l.withUnsafeMutableBufferPointer { NativeLinalg.cholesky($0.baseAddress!, n: n, upper: upper) }
            if !ok { throw fail("cholesky", "matrix \(batch) of the batch is not positive definite") }
            return l
        }

        static func qr(_ a: [Double], m: Int, n: Int, formQ: Bool) -> [Double] {
            var f = a
            var tau = [Double](repeating: 0, count: Swift.max(Swift.min(m, n), 1))
            f.withUnsafeMutableBufferPointer { fp in
                NativeLinalg.qrFactor(fp.baseAddress!, m: m, n: n, tau: &tau)
                if formQ { NativeLinalg.qrFormQ(fp.baseAddress!, m: m, k: Swift.min(m, n), tau: tau) }
            }
            return f
        }

        static func eigh(_ a: [Double], n: Int, upper: Bool, vectors: Bool) throws -> ([Double], [Double]) {
            var z = a
            let w = try z.withUnsafeMutableBufferPointer {
                try NativeLinalg.eigh($0.baseAddress!, n: n, upper: upper, vectors: vectors)
            }
            return (w, z)
        }
    }
}

// The LAPACK routines with the same calling shape as `native` above.
extension LAPACK {
    private func fail(_ op: String, _ reason: String) -> TesseraError { .invalidData(op: op, reason: reason) }

    func inverse(_ a: [Double], n: Int, batch: Int) throws -> [Double] {
        var buf = a, info: LInt = 0, N = LInt(n), lda = LInt(Swift.max(n, 1))
        var pivots = [LInt](repeating: 0, count: Swift.max(n, 1))
        dgetrf(&N, &N, &buf, &lda, &pivots, &info)
        if info > 0 { throw fail("inv", "matrix \(batch) of the batch is singular") }
        var query = 0.0, lwork: LInt = -1
        dgetri(&N, &buf, &lda, &pivots, &query, &lwork, &info)
        lwork = LInt(Swift.max(query, 1))
        var work = [Double](repeating: 0, count: Int(lwork))
        dgetri(&N, &buf, &lda, &pivots, &work, &lwork, &info)
        if info != 0 { throw fail("inv", "LAPACK dgetri failed (info \(info))") }
        return buf
    }

    func solve(_ a: [Double], _ b: [Double], n: Int, rhs: Int, batch: Int) throws -> [Double] {
        var buf = a, x = b, info: LInt = 0, N = LInt(n), lda = LInt(Swift.max(n, 1))
        var nrhs = LInt(rhs), ldb = LInt(Swift.max(n, 1))
        var pivots = [LInt](repeating: 0, count: Swift.max(n, 1))
        dgesv(&N, &nrhs, &buf, &lda, &pivots, &x, &ldb, &info)
        if info > 0 { throw fail("solve", "matrix \(batch) of the batch is singular") }
        return x
    }

    func cholesky(_ a: [Double], n: Int, upper: Bool, batch: Int) throws -> [Double] {
        var buf = a, info: LInt = 0, N = LInt(n), lda = LInt(Swift.max(n, 1))
        var uplo: CChar = upper ? 85 : 76  // "U" / "L"
        dpotrf(&uplo, &N, &buf, &lda, &info, 1)
        if info > 0 { throw fail("cholesky", "matrix \(batch) of the batch is not positive definite") }
        return buf
    }

    func qr(_ a: [Double], m: Int, n: Int, formQ: Bool) throws -> [Double] {
        var buf = a, info: LInt = 0, M = LInt(m), N = LInt(n), lda = LInt(Swift.max(m, 1))
        let k = Swift.min(m, n)
        var tau = [Double](repeating: 0, count: Swift.max(k, 1))
        var query = 0.0, lwork: LInt = -1
        dgeqrf(&M, &N, &buf, &lda, &tau, &query, &lwork, &info)
        lwork = LInt(Swift.max(query, 1))
        var work = [Double](repeating: 0, count: Int(lwork))
        dgeqrf(&M, &N, &buf, &lda, &tau, &work, &lwork, &info)
        if formQ {
            var K = LInt(k)
            lwork = -1
            dorgqr(&M, &K, &K, &buf, &lda, &tau, &query, &lwork, &info)
            lwork = LInt(Swift.max(query, 1))
            work = [Double](repeating: 0, count: Int(lwork))
            dorgqr(&M, &K, &K, &buf, &lda, &tau, &work, &lwork, &info)
        }
        if info != 0 { throw fail("qr", "LAPACK failed (info \(info))") }
        return buf
    }

    func svd(_ a: [Double], m: Int, n: Int, vectors: Bool) throws -> (s: [Double], u: [Double], vt: [Double]) {
        var buf = a, info: LInt = 0, M = LInt(m), N = LInt(n), lda = LInt(Swift.max(m, 1))
        let k = Swift.min(m, n)
        var jobz: CChar = vectors ? 65 : 78  // "A" / "N"
        var s = [Double](repeating: 0, count: Swift.max(k, 1))
        var u = [Double](repeating: 0, count: vectors ? Swift.max(m * m, 1) : 1)
        var vt = [Double](repeating: 0, count: vectors ? Swift.max(n * n, 1) : 1)
        var ldu = LInt(Swift.max(m, 1)), ldvt = LInt(Swift.max(n, 1))
        var iwork = [LInt](repeating: 0, count: Swift.max(8 * k, 1))
        var query = 0.0, lwork: LInt = -1
        dgesdd(&jobz, &M, &N, &buf, &lda, &s, &u, &ldu, &vt, &ldvt, &query, &lwork, &iwork, &info, 1)
        lwork = LInt(Swift.max(query, 1))
        var work = [Double](repeating: 0, count: Int(lwork))
        dgesdd(&jobz, &M, &N, &buf, &lda, &s, &u, &ldu, &vt, &ldvt, &work, &lwork, &iwork, &info, 1)
        if info != 0 { throw fail("svd", "LAPACK dgesdd did not converge (info \(info))") }
        return (s, u, vt)
    }

    func eigh(_ a: [Double], n: Int, upper: Bool, vectors: Bool) throws -> ([Double], [Double]) {
        var buf = a, info: LInt = 0, N = LInt(n), lda = LInt(Swift.max(n, 1))
        var jobz: CChar = vectors ? 86 : 78  // "V" / "N"
        var uplo: CChar = upper ? 85 : 76
        var w = [Double](repeating: 0, count: Swift.max(n, 1))
        var query = 0.0, lwork: LInt = -1
        dsyev(&jobz, &uplo, &N, &buf, &lda, &w, &query, &lwork, &info, 1, 1)
        lwork = LInt(Swift.max(query, 1))
        var work = [Double](repeating: 0, count: Int(lwork))
        dsyev(&jobz, &uplo, &N, &buf, &lda, &w, &work, &lwork, &info, 1, 1)
        if info != 0 { throw fail("eigh", "LAPACK dsyev did not converge (info \(info))") }
        return (w, buf)
    }
}
