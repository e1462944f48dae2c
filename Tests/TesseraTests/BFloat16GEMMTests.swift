// The bfloat16 weights' GEMM on AVX512-BF16 dot products (kernels_gemm_bf16.c)
// against double-precision references, on every instruction set the dispatch
// can pick, at both BFloat16MatmulPrecision settings.

import CTesseraKernels
import Foundation
import XCTest

@testable import Tessera

/// Tolerances (relative to Σ|x w| of each output, the reference's magnitude):
/// where the vdpbf16ps kernel runs, against the reference on x rounded to
/// bfloat16 (what the kernel multiplies): float32 accumulation, 1e-5; and
/// against the reference on x itself: 2^-8 (one bfloat16 rounding per value
/// of x, the documented bound of `.high`) + 1e-5. Everywhere else (other
/// instruction sets, `.highest`, the kernel switched off): the float32 GEMM's
/// 1e-5 against the reference on x itself.
extension CPUKernelTests {
    /// Rows of x: one full block of 64 and tails of 1-4 vectors of 16; weight
    /// rows: tails of the 6-row tile; K: odd (a zero-padded pair), and longer
    /// than one block of 768 values (the tile adds into C after the first);
    /// the last shape splits over the pool.
    func testBFloat16GEMMMatchesReferenceEveryISAAndPrecision() throws {
        let shapes = [(2, 5, 1), (17, 13, 3), (64, 6, 64), (65, 37, 129), (50, 7, 1601), (130, 70, 577), (200, 96, 210)]
        for (m, n, k) in shapes {
            let xv = Self.values(m * k, seed: UInt64(m * 13 + k))
            let wv = Self.rounded(Self.values(n * k, seed: UInt64(n * 7 + k)), .bfloat16)
            let xr = Self.rounded(xv, .bfloat16)
            let wT = Self.transposed(wv, rows: n, cols: k)  // [k, n] for the reference
            let (exact, scale) = Self.referenceMatmul(xv, wT, m: m, n: n, k: k)
            let (onRounded, _) = Self.referenceMatmul(xr, wT, m: m, n: n, k: k)
            let stored = Tensor(wv, shape: [n, k]).asType(.bfloat16).bytes().withUnsafeBytes {
                Tensor(bytes: $0, shape: [n, k], dtype: .bfloat16)
            }
            for xDtype in [DType.float32, .bfloat16] {
                let x = Tensor(xv, shape: [m, k]).asType(xDtype)
                for precision in [BFloat16MatmulPrecision.highest, .high] {
                    BFloat16MatmulPrecision.current = precision
                    defer { BFloat16MatmulPrecision.current = .highest }
                    try forEachBFloat16Kernel { isa in
                        let tag = "\(isa) \(precision) x \(xDtype) \(m)x\(n)x\(k)"
                        let dots = isa == "avx512 bf16" && (precision == .high || xDtype == .bfloat16)
                        let out = ArrayView.allocate(shape: [m, n], dtype: .float32)
                        XCTAssertTrue(try GEMM.matmul(x.view(), stored.T.view(), out, useBLAS: false))
                        let got = Tensor(evaluated: out).toArray(Float.self)
                        if dots || xDtype == .bfloat16 {
                            assertClose(got, onRounded, rel: 1e-5, scale: scale, tag + " vs rounded x")
                        }
                        if xDtype == .float32 {
                            assertClose(
                                got, exact, rel: (dots ? 0x1p-8 : 0) + 1e-5, scale: scale, tag + " vs exact x")
                            if !dots {
                                // The float32 GEMM: x is not rounded (some output differs from the rounded-x product).
                                let apart = zip(got, onRounded).contains { Swift.abs(Double($0) - $1) > 1e-4 }
                                XCTAssertTrue(apart || m * k < 8, tag + ": x looks rounded to bfloat16")
                            }
                        }
                    }
                }
            }
        }
    }

    /// The public op (a bfloat16 weight's `matmul(x, w.T)`, batched x) and a
    /// non-finite x: NaN and infinity reach their rows' outputs as float32's do.
    func testBFloat16GEMMThroughMatmulAndNonFiniteX() {
        let m = 40, n = 30, k = 96
        var xv = Self.values(2 * m * k, seed: 5)
        xv[(m - 1) * k + 10] = .nan  // the last row: assertClose stops at a NaN
        xv[m * k + 7 * k + 2] = .infinity
        let wv = Self.rounded(Self.values(n * k, seed: 6).map { Swift.abs($0) + 0.25 }, .bfloat16)
        let w = Tensor(wv, shape: [n, k]).asType(.bfloat16).bytes().withUnsafeBytes {
            Tensor(bytes: $0, shape: [n, k], dtype: .bfloat16)
        }
        BFloat16MatmulPrecision.current = .high
        defer { BFloat16MatmulPrecision.current = .highest }
        forEachBFloat16Kernel { isa in
            let y = matmul(Tensor(xv, shape: [2, m, k]), w.T).toArray(Float.self)
            let wT = Self.transposed(wv, rows: n, cols: k)
            for b in 0..<2 {
                let xs = Array(xv[(b * m * k)..<((b + 1) * m * k)])
                let rounded = isa == "avx512 bf16" ? Self.rounded(xs, .bfloat16) : xs
                let (want, scale) = Self.referenceMatmul(rounded, wT, m: m, n: n, k: k)
                assertClose(
                    Array(y[(b * m * n)..<((b + 1) * m * n)]), want, rel: 1e-5, scale: scale, "\(isa) batch \(b)")
            }
            XCTAssertTrue(y[((m - 1) * n)..<(m * n)].allSatisfy(\.isNaN), "\(isa) NaN row")
            XCTAssertTrue(y[((m + 7) * n)..<((m + 8) * n)].allSatisfy { $0 == .infinity }, "\(isa) infinite row")
        }
    }

    /// `forEachISA`, and on AVX-512 with AVX512_BF16 once more with the bf16
    /// kernel on ("avx512 bf16"); the plain "avx512" pass runs with it off.
    func forEachBFloat16Kernel(_ body: (String) throws -> Void) rethrows {
        let available = tk_set_gemm_bf16(1) != 0
        _ = tk_set_gemm_bf16(0)
        defer { _ = tk_set_gemm_bf16(1) }
        try forEachISA(body)
        if available {
            _ = tk_set_gemm_bf16(1)
            XCTAssertEqual(tk_gemm_bf16_available(), 1)
            try body("avx512 bf16")
        }
    }

    static func transposed(_ v: [Float], rows: Int, cols: Int) -> [Float] {
        var out = [Float](repeating: 0, count: v.count)
        for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = v[r * cols + c] } }
        return out
    }
}
