import CTesseraKernels
import Foundation
import TesseraTestSupport
import XCTest

@testable import Tessera

/// The prefill quantized product (more than `qmvMaxRows` rows of x) against
/// the double-precision reference of CPUKernelTests, on every instruction set
/// the dispatch can pick: the integer kernels at `QuantizedMatmulPrecision.high`
/// (AVX-512 VNNI, kernels_qgemm_vnni.c; AVX2 vpmaddubsw, kernels_qgemm_avx2.c,
/// on the AVX2 variant and on AVX-512 with VNNI turned off) and the float
/// kernel (dequantized weights and the float32 GEMM) everywhere else.
///
/// Tolerance: the float kernel within CPUKernelTests' float32 1e-5 of the
/// reference's magnitude; the integer kernel also within what rounding x to
/// integers may add: per block of 32 values, max|x| of the block / (2 R) per
/// value (R = 127 * 257 for 16-bit x, 127 for 8-bit), times |s q| summed over
/// the block (the bias part uses x's float sums), with 1% for the float
/// rounding of x / d.
extension CPUKernelTests {
    static func integerRounding(
        _ x: [Float], _ w: [Float], biases: [Float], group: Int, m: Int, n: Int, k: Int, range: Double
    ) -> [Double] {
        var bound = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for b in stride(from: 0, to: k, by: 32) {
                let step = (b..<(b + 32)).map { Double(Swift.abs(x[i * k + $0])) }.max()! / (2 * range) * 1.01
                for j in 0..<n {
                    var sq = 0.0
                    for p in b..<(b + 32) {
                        sq += Swift.abs(Double(w[p * n + j]) - Double(biases[j * (k / group) + p / group]))
                    }
                    bound[i * n + j] += step * sq
                }
            }
        }
        return bound
    }

    /// Rows past 16 (m % 4 of 0-3: the kernel's blocks of 4 rows), columns
    /// with a partial last panel of 32, K not a multiple of 128, groups 32,
    /// 64, 128, scales float32 / float16 / bfloat16 under float32 x.
    func testPrefillQuantizedMatmulMatchesReference() throws {
        let cases: [(group: Int, k: Int)] = [(32, 32), (32, 96), (32, 576), (64, 192), (128, 384)]
        for (group, k) in cases {
            for sdt in [DType.float32, .float16, .bfloat16] {
                for (m, n) in [(17, 40), (18, 70), (35, 32), (20, 333)] {
                    let ops = Self.quantizedOperands(
                        bits: 4, group: group, n: n, k: k, seed: UInt64(group + k + m), dtype: sdt)
                    let xv = Self.values(m * k, seed: UInt64(m * 31 + k))
                    let (want, scale) = Self.referenceMatmul(xv, ops.w, m: m, n: n, k: k)
                    try forEachQuantizedKernel { isa in
                        let integer = isa == "avx512 x16"
                        if integer {
                            XCTAssertNotNil(QuantizedKernels.integerPrefillBytes)
                            XCTAssertEqual(tk_qgemm4_available(Int32(SIMDKernels.code(sdt)!), k, Int32(group)), 1)
                        }
                        let out = ArrayView.allocate(shape: [m, n], dtype: .float32)
                        try QuantizedKernels.matmul(
                            x: Tensor(xv, shape: [m, k]).view(), wq: Tensor(ops.wq, shape: [n, k / 8]).view(),
                            scales: Tensor(ops.scales, shape: [n, k / group]).asType(sdt).view(),
                            biases: Tensor(ops.biases, shape: [n, k / group]).asType(sdt).view(), groupSize: group,
                            bits: 4, into: out)
                        assertClose(
                            Tensor(evaluated: out).toArray(Float.self), want, rel: 1e-5, scale: scale,
                            slack: integer
                                ? Self.integerRounding(
                                    xv, ops.w, biases: ops.biases, group: group, m: m, n: n, k: k,
                                    range: 127 * 257) : nil,
                            "\(isa) g\(group) k=\(k) scales \(sdt) m=\(m) n=\(n)")
                    }
                }
            }
        }
    }

    /// At `.high` on every instruction set the dispatch can pick: the
    /// baseline takes the float kernel, AVX2 and AVX-512 without VNNI the
    /// AVX2 integer kernel, AVX-512 with VNNI the VNNI one; each within the
    /// reference's tolerance plus the rounding of x to 16 bits (the float
    /// kernel within 1e-5 alone). Rows 17-35 (row blocks of 2 and 4 with
    /// every remainder), partial column panels of 32 and halves of 16, every
    /// group size and scale dtype; the two integer kernels give the same
    /// floats bit for bit (the same exact block sums, the same float steps).
    func testIntegerPrefillOnEveryInstructionSet() throws {
        _ = tk_set_qmv_x_bytes(2)
        defer { _ = tk_set_qmv_x_bytes(3) }
        let cases: [(group: Int, k: Int, sdt: DType, m: Int, n: Int)] = [
            (32, 32, .float32, 17, 40), (32, 96, .float16, 18, 70), (64, 192, .bfloat16, 19, 9),
            (128, 384, .float32, 35, 333), (32, 576, .float16, 20, 48), (64, 128, .float32, 33, 17)
        ]
        for c in cases {
            let ops = Self.quantizedOperands(
                bits: 4, group: c.group, n: c.n, k: c.k, seed: UInt64(c.k + c.n), dtype: c.sdt)
            let xv = Self.values(c.m * c.k, seed: UInt64(c.m * 7 + c.k))
            let (want, scale) = Self.referenceMatmul(xv, ops.w, m: c.m, n: c.n, k: c.k)
            let slack = Self.integerRounding(
                xv, ops.w, biases: ops.biases, group: c.group, m: c.m, n: c.n, k: c.k, range: 127 * 257)
            var integerResults: [String: [Float]] = [:]
            try forEachISAAndVNNI { label, isa, vnni in
                let sdtCode = Int32(SIMDKernels.code(c.sdt)!)
                let integer = tk_qgemm4_available(sdtCode, c.k, Int32(c.group)) != 0
                XCTAssertEqual(integer, isa >= 1, "\(label): the integer kernel is available from AVX2 on")
                if integer { XCTAssertEqual(tk_qgemm4_vnni_active() != 0, isa == 2 && vnni, label) }
                let out = ArrayView.allocate(shape: [c.m, c.n], dtype: .float32)
                try QuantizedKernels.matmul(
                    x: Tensor(xv, shape: [c.m, c.k]).view(), wq: Tensor(ops.wq, shape: [c.n, c.k / 8]).view(),
                    scales: Tensor(ops.scales, shape: [c.n, c.k / c.group]).asType(c.sdt).view(),
                    biases: Tensor(ops.biases, shape: [c.n, c.k / c.group]).asType(c.sdt).view(),
                    groupSize: c.group, bits: 4, into: out)
                let got = Tensor(evaluated: out).toArray(Float.self)
                assertClose(
                    got, want, rel: 1e-5, scale: scale, slack: integer ? slack : nil,
                    "\(label) g\(c.group) k=\(c.k) \(c.sdt) m=\(c.m) n=\(c.n)")
                if integer { integerResults[label] = got }
            }
            let distinct = Set(integerResults.values.map { $0.map(\.bitPattern) })
            XCTAssertLessThanOrEqual(distinct.count, 1, "the integer kernels differ: \(integerResults.keys.sorted())")
        }
    }

    /// The kernel itself at 8-bit x (XB = 1), and at 16-bit, on column
    /// ranges as the pool splits them (panels of 32, the last one short).
    func testIntegerPrefillKernelBothXWidths() throws {
        guard tk_qgemm4_available(Int32(TK_F32), 192, 64) != 0 else {
            throw XCTSkip("this CPU has no AVX2: the integer prefill kernels do not run here")
        }
        let m = 23, n = 75, k = 192, group = 64
        let ops = Self.quantizedOperands(bits: 4, group: group, n: n, k: k, seed: 3, dtype: .float32)
        let xv = Self.values(m * k, seed: 4)
        let (want, scale) = Self.referenceMatmul(xv, ops.w, m: m, n: n, k: k)
        // VNNI where the CPU has it, AVX2 with VNNI off, and the AVX2 variant
        for (isa, vnni) in [(Int(tk_isa_supported()), 1), (Int(tk_isa_supported()), 0), (1, 1)] {
            _ = tk_set_isa(Int32(isa))
            _ = tk_set_qmv_vnni(Int32(vnni))
            defer {
                _ = tk_set_isa(tk_isa_supported())
                _ = tk_set_qmv_vnni(1)
            }
            for (xb, range) in [(1, 127.0), (2, 127.0 * 257)] {
                let bytes = tk_qgemm4_x_bytes(m, k, Int32(group), Int32(xb))
                var prepared = [UInt8](repeating: 0, count: bytes)
                var out = [Float](repeating: .nan, count: m * n)
                var scratch = [UInt8](repeating: 0, count: tk_qgemm4_panel_bytes(k, Int32(group)))
                XCTAssertEqual(tk_qgemm4_prepare(xv, m, k, Int32(group), Int32(xb), &prepared), 1)
                for n0 in stride(from: 0, to: n, by: 32) {
                    XCTAssertEqual(
                        tk_qgemm4(
                            Int32(TK_F32), prepared, ops.wq, ops.scales, ops.biases, &out, m, n, k, Int32(group),
                            Int32(xb), n0, Swift.min(n, n0 + 32), &scratch), 1)
                }
                assertClose(
                    out, want, rel: 1e-5, scale: scale,
                    slack: Self.integerRounding(
                        xv, ops.w, biases: ops.biases, group: group, m: m, n: n, k: k,
                        range: range),
                    "isa \(isa) VNNI \(tk_qgemm4_vnni_active()) XB \(xb)")
            }
        }
        // A block with a non-finite value, or of tiny values only, is refused (the caller takes the float kernel).
        for special: Float in [.nan, .infinity, 1e-30] {
            var x = xv
            for i in (special.isFinite ? 32 : 40)..<(special.isFinite ? 64 : 41) { x[k + i] = special }
            var prepared = [UInt8](repeating: 0, count: tk_qgemm4_x_bytes(m, k, Int32(group), 2))
            XCTAssertEqual(tk_qgemm4_prepare(x, m, k, Int32(group), 2, &prepared), 0, "\(special)")
        }
    }

    /// tk_qgemm4_prepare's vector variants (AVX-512, AVX2: vcvtps2dq in place
    /// of nearbyintf) against the plain C reference, byte for byte, on every
    /// instruction set the dispatch can pick: row counts off the sums' blocks
    /// of 4, K of 1 to 18 blocks, both x widths, values rounding at .5 ties
    /// (a block whose max is the range itself has inverse scale 1), zeros,
    /// -0, blocks of one value, and the refusals (inf, NaN, tiny blocks).
    func testIntegerPrefillPrepareMatchesReferenceBytes() {
        forEachISA { isa in
            for (m, k, group) in [(1, 32, 32), (3, 64, 64), (5, 192, 64), (7, 128, 128), (6, 576, 64), (17, 96, 32)] {
                for xb in [1, 2] {
                    let range: Float = xb == 2 ? 127 * 257 : 127
                    var x = Self.values(m * k, seed: UInt64(m * 1000 + k + xb), lo: -3, hi: 3)
                    // Row 0, block 0: ties at .5 under inverse scale 1 (max |x| = range).
                    for j in 0..<32 {
                        x[j] = (j == 0 ? range : Float(j - 16) + 0.5) * (j % 3 == 0 ? -1 : 1)
                    }
                    if k >= 64 {
                        for j in 32..<64 { x[j] = j % 2 == 0 ? 0 : -0.0 }  // a block of zeros and -0
                    }
                    if m > 1 {
                        for j in 0..<32 { x[k + j] = j == 7 ? -2.5e-20 : 0 }  // one value, the rest zero
                    }
                    if m > 2 {
                        for j in 0..<k { x[2 * k + j] *= 1e6 }  // a large row
                    }
                    let bytes = tk_qgemm4_x_bytes(m, k, Int32(group), Int32(xb))
                    var want = [UInt8](repeating: 0xAA, count: bytes), got = [UInt8](repeating: 0x55, count: bytes)
                    XCTAssertEqual(tk_qgemm4_prepare_ref(x, m, k, Int32(group), Int32(xb), &want), 1)
                    XCTAssertEqual(tk_qgemm4_prepare(x, m, k, Int32(group), Int32(xb), &got), 1)
                    XCTAssertEqual(got, want, "\(isa) M \(m) K \(k) group \(group) XB \(xb)")
                    for (special, at) in [(Float.nan, k - 1), (.infinity, 5), (-.infinity, k + 31), (1e-30, 0)] {
                        var y = x
                        if special.isFinite {
                            for j in 0..<32 { y[at + j] = j == 3 ? special : 0 }
                        } else if at < y.count {
                            y[at] = special
                        }
                        XCTAssertEqual(
                            tk_qgemm4_prepare(y, m, k, Int32(group), Int32(xb), &got),
                            tk_qgemm4_prepare_ref(y, m, k, Int32(group), Int32(xb), &want), "\(isa) \(special)")
                    }
                }
            }
        }
    }

    /// A prefill product whose x holds a non-finite value gives what the float
    /// kernel gives (the integer kernel declines it), bit for bit.
    func testPrefillQuantizedMatmulNonFiniteXTakesFloatKernel() throws {
        let m = 20, n = 40, k = 128, group = 32
        let ops = Self.quantizedOperands(bits: 4, group: group, n: n, k: k, seed: 8, dtype: .float16)
        for special in [Float.nan, .infinity] {
            var xv = Self.values(m * k, seed: 6)
            xv[5 * k + 17] = special
            func product() throws -> [Float] {
                let out = ArrayView.allocate(shape: [m, n], dtype: .float32)
                try QuantizedKernels.matmul(
                    x: Tensor(xv, shape: [m, k]).view(), wq: Tensor(ops.wq, shape: [n, k / 8]).view(),
                    scales: Tensor(ops.scales, shape: [n, k / group]).asType(.float16).view(),
                    biases: Tensor(ops.biases, shape: [n, k / group]).asType(.float16).view(), groupSize: group,
                    bits: 4, into: out)
                return Tensor(evaluated: out).toArray(Float.self)
            }
            _ = tk_set_qmv_x_bytes(2)
            let high = try product()
            _ = tk_set_qmv_x_bytes(3)
            let float = try product()
            XCTAssertEqual(high.map(\.bitPattern), float.map(\.bitPattern), "\(special)")
        }
    }
}
