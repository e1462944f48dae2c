// Linear algebra (LAPACK and native) against numpy; factorizations round-trip;
// singular input throws; the disable switch leaves libraries unloaded.

import Foundation
import TesseraTestSupport
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

    /// Norms and factorizations against numpy (float64 references), through
    /// LAPACK where it loads and the native routines where it does not.
    func testAgainstNumpy() throws {
        let cases = try loadFixtureCases("linalg.json")
        XCTAssertGreaterThanOrEqual(cases.count, 70)
        try check(cases)
    }

    /// The native routines (used without LAPACK) against numpy on every case,
    /// also where LAPACK is loaded: small matrices and larger, rank-deficient,
    /// repeated-eigenvalue ones (Tools/gen_linalg_fixtures.py).
    func testNativeAgainstNumpy() throws {
        LinalgKernels.forceNative.store(true, ordering: .relaxed)
        defer { LinalgKernels.forceNative.store(false, ordering: .relaxed) }
        let sizes = try loadFixtureCases("linalg_sizes.json")
        XCTAssertGreaterThanOrEqual(sizes.count, 30)
        try check(try loadFixtureCases("linalg.json") + sizes)
    }

    /// The larger cases through whichever path this machine takes (LAPACK in CI).
    func testLargerCasesAgainstNumpy() throws {
        try check(try loadFixtureCases("linalg_sizes.json"))
    }

    private func check(_ cases: [FixtureCase]) throws {
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
                for (name, basis) in [("u", u), ("v", vt.swappedAxes(-1, -2))] {
                    let m = basis.dim(-1)
                    assertMatches(
                        matmul(basis.swappedAxes(-1, -2), basis),
                        Tensor.eye(m, dtype: a.dtype).broadcast(to: basis.shape),
                        "\(c.name) \(name)ᵀ\(name)", products)
                }
            case "eigh":
                let upper = try c.params.bool("upper")
                let (w, v) = Linalg.eigh(a, upper: upper)
                assertMatches(w, c.expected[0], "\(c.name) eigenvalues")
                // A v = v diag(w) on the symmetric matrix the triangle describes, v orthogonal.
                let n = a.dim(-1)
                let full = upper ? which(Tensor.eye(n, dtype: .bool), a, a + a.swappedAxes(-1, -2)) : a
                // Deliberately looser than the table, as for svd's products above.
                let products = FixtureComparison.within(Tolerance(rtol: 1e-4, atol: 1e-4))
                assertMatches(matmul(full, v), v * w.expandedDimensions(axis: -2), "\(c.name) vectors", products)
                assertMatches(
                    matmul(v.swappedAxes(-1, -2), v), Tensor.eye(n, dtype: a.dtype).broadcast(to: v.shape),
                    "\(c.name) vᵀv", products)
            default:
                XCTFail("unknown op \(c.op)")
            }
        }
    }

    /// Matrices large enough that the native LU and Cholesky split their
    /// updates over the pool: checked by identities (a·inv(a) = I, L Lᵀ = a,
    /// Q R = a), and against LAPACK where it loads.
    func testNativeLargeMatrices() throws {
        let n = 300
        let g = Random.normal([n, n], key: Random.key(7)).asType(.float64)
        let a = g + Tensor.eye(n, dtype: .float64) * Double(n).squareRoot()
        let spd = matmul(g, g.T) + Tensor.eye(n, dtype: .float64) * Double(n)
        eval(a, spd)
        LinalgKernels.forceNative.store(true, ordering: .relaxed)
        let native = [Linalg.inv(a), Linalg.cholesky(spd), Linalg.qr(a).q, Linalg.qr(a).r]
        try checkedEval(native)
        LinalgKernels.forceNative.store(false, ordering: .relaxed)
        let identity = Tensor.eye(n, dtype: .float64)
        let tight = FixtureComparison.within(Tolerance(rtol: 1e-9, atol: 1e-9))
        assertMatches(matmul(a, native[0]), identity, "a·inv(a)", tight)
        assertMatches(matmul(native[1], native[1].T), spd, "L Lᵀ", tight)
        assertMatches(matmul(native[2], native[3]), a, "Q R", tight)
        guard LinalgKernels.lapack != nil else { return }
        let reference = [Linalg.inv(a), Linalg.cholesky(spd), Linalg.qr(a).q, Linalg.qr(a).r]
        for (name, pair) in zip(["inv", "cholesky", "q", "r"], zip(native, reference)) {
            assertMatches(pair.0, pair.1, "native \(name) vs LAPACK", tight)
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

    /// TESSERA_DISABLE_BLAS=1 (the fresh-box CI step) leaves OpenBLAS and LAPACK
    /// unloaded, so that step really runs the native paths.
    func testDisableSwitchLeavesOptionalLibrariesUnloaded() throws {
        let value = ProcessInfo.processInfo.environment["TESSERA_DISABLE_BLAS"] ?? ""
        try XCTSkipIf(value.isEmpty || value == "0", "TESSERA_DISABLE_BLAS is not set")
        XCTAssertNil(LinalgKernels.lapack)
        XCTAssertFalse(GEMM.blasAvailable)
        XCTAssertFalse(GEMM.blasForGEMM)
        XCTAssertFalse(GEMM.blasForGEMV)
        assertMatches(
            matmul(Linalg.inv(Tensor([2, 0, 0, 4] as [Double], shape: [2, 2])), Tensor([2, 4] as [Double])),
            Tensor([1, 1] as [Double]), "native inverse")
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
