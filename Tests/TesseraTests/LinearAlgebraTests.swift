import XCTest

@testable import Tessera

final class LinearAlgebraTests: XCTestCase {
    /// Every batch entry is computed (the kernel once computed only the first).
    func testBatchedMatmulComputesEveryBatch() {
        let a = Tensor((0..<8).map { Float($0) }, shape: [2, 2, 2])
        XCTAssertEqual(matmul(a, a).toArray(Float.self), [2, 3, 6, 11, 46, 55, 66, 79])
        let b = Tensor((0..<24).map { Float($0) }, shape: [3, 1, 2, 4])
        let c = Tensor((0..<8).map { Float($0) }, shape: [2, 4, 1])
        let out = matmul(b, c)
        XCTAssertEqual(out.shape, [3, 2, 2, 1])
        // out[i, j, r, 0] = b[i, 0, r, :] · c[j, :, 0]
        let expected = (0..<12).map { index -> Float in
            let i = index / 4, j = (index / 2) % 2, r = index % 2
            return (0..<4).map { Float((i * 8 + r * 4 + $0) * (j * 4 + $0)) }.reduce(0, +)
        }
        XCTAssertEqual(out.toArray(Float.self), expected)
    }

    private func order(_ c: FixtureCase) -> NormOrder? {
        switch c.params["order"] {
        case let s as String:
            switch s {
            case "fro": return .fro
            case "nuc": return .nuc
            case "inf": return .inf
            case "-inf": return .negativeInf
            default: fatalError("unknown order \(s)")
            }
        case let n as NSNumber: return .p(n.doubleValue)
        default: return nil
        }
    }

    /// Norms and LAPACK factorizations against numpy (float64 references).
    func testAgainstNumpy() throws {
        let cases = try loadFixtureCases("linalg.json")
        XCTAssertGreaterThanOrEqual(cases.count, 70)
        for c in cases {
            let a = c.inputs[0]
            // float32 inputs are factorised in float64: compare at float32's tolerance.
            switch c.op {
            case "norm":
                let out = Linalg.norm(
                    a, order: order(c), axes: try c.params.optionalInts("axes"),
                    keepDims: try c.params.optionalBool("keepDims") ?? false)
                assertMatches(out, c.expected[0], c.name)
            case "inv": assertMatches(Linalg.inv(a), c.expected[0], c.name)
            case "solve": assertMatches(Linalg.solve(a, c.inputs[1]), c.expected[0], c.name)
            case "cholesky": assertMatches(Linalg.cholesky(a, upper: try c.params.bool("upper")), c.expected[0], c.name)
            case "qr":
                let (q, r) = Linalg.qr(a)
                assertMatches(q, c.expected[0], "\(c.name) q")
                assertMatches(r, c.expected[1], "\(c.name) r")
            case "svd":
                let (u, s, vt) = Linalg.svd(a)
                assertMatches(s, c.expected[0], "\(c.name) s")
                // Singular vectors are unique up to sign: check u diag(s) vt = a and orthogonality.
                let k = s.dim(-1)
                let us = u[.ellipsis, 0..<k] * s.expandedDimensions(axis: -2)
                // Deliberately looser than the table: these products compound the
                // factorization's rounding (and float32's) over a whole matrix product.
                let products = FixtureComparison.within(Tolerance(rtol: 1e-4, atol: 1e-4))
                assertMatches(matmul(us, vt[.ellipsis, 0..<k, 0...]), a, "\(c.name) reconstruction", products)
                let m = u.dim(-1)
                assertMatches(
                    matmul(u.swappedAxes(-1, -2), u), Tensor.eye(m, dtype: a.dtype).broadcast(to: u.shape),
                    "\(c.name) uᵀu", products)
            case "eigh":
                let upper = try c.params.bool("upper")
                let (w, v) = Linalg.eigh(a, upper: upper)
                assertMatches(w, c.expected[0], "\(c.name) eigenvalues")
                // A v = v diag(w) on the symmetric matrix the triangle describes.
                let full = upper ? which(Tensor.eye(5, dtype: .bool), a, a + a.swappedAxes(-1, -2)) : a
                // Deliberately looser than the table, as for svd's products above.
                assertMatches(
                    matmul(full, v), v * w.expandedDimensions(axis: -2), "\(c.name) vectors",
                    .within(Tolerance(rtol: 1e-4, atol: 1e-4)))
            default:
                XCTFail("unknown op \(c.op)")
            }
        }
    }

    func testFactorizationsRoundTrip() {
        let a = Tensor([4, 1, 2, 1, 5, 3, 2, 3, 6] as [Double], shape: [3, 3])
        assertMatches(matmul(a, Linalg.inv(a)), Tensor.eye(3, dtype: .float64), "inv")
        let l = Linalg.cholesky(a)
        assertMatches(matmul(l, l.T), a, "cholesky")
        let (q, r) = Linalg.qr(a)
        assertMatches(matmul(q, r), a, "qr")
        XCTAssertEqual(Linalg.inv(Tensor([1, 2, 3, 4] as [Int], shape: [2, 2])).dtype, .float32)
    }

    func testSingularAndIndefiniteMatricesThrow() {
        let singular = Tensor([1, 2, 2, 4] as [Float], shape: [2, 2])
        XCTAssertThrowsError(try checkedEval([Linalg.inv(singular)])) { error in
            guard case TesseraError.invalidData(let op, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(op, "inv")
        }
        XCTAssertThrowsError(try checkedEval([Linalg.solve(singular, Tensor([1, 1] as [Float]))]))
        XCTAssertThrowsError(try checkedEval([Linalg.cholesky(Tensor([1, 2, 2, 1] as [Float], shape: [2, 2]))]))
    }

    /// A missing LAPACK is a typed error that says what to install, never a crash.
    func testMissingLAPACKIsATypedError() {
        let result = LAPACK.load(from: ["libtessera-no-such-lapack.so"])
        guard case .failure(let error) = result, case .libraryUnavailable(let message) = error else {
            return XCTFail("expected libraryUnavailable, got \(result)")
        }
        XCTAssertTrue(message.contains("apt-get install -y libopenblas-dev"), message)
        XCTAssertTrue(message.contains("libtessera-no-such-lapack.so"), message)
    }
}
