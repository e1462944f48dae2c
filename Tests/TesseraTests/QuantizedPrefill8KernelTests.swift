import CTesseraKernels
import Foundation
import TesseraTestSupport
import XCTest

@testable import Tessera

/// The 8-bit many-row product on integer dot products (tk_qgemm8: the 4-bit
/// prefill kernel's VNNI path with 8-bit codes; what a tied 8-bit LM head's
/// forward runs in training) against the double-precision reference, on
/// every instruction set the dispatch can pick, with the switch
/// (`QuantizedMatmulPrecision.integerEightBitProducts`) on and off.
///
/// Tolerance: as QuantizedPrefillKernelTests: the float kernel within
/// float32's 1e-5 of the reference's magnitude; the integer kernel also
/// within what rounding x to 16-bit integers per block of 32 may add
/// (`integerRounding`, R = 127 · 257).
extension CPUKernelTests {
    /// Rows past 16 in every remainder of the blocks of 4, a partial last
    /// panel of 32 columns (and one below 16), K of 1, 3 and 18 blocks of 32,
    /// groups 32/64/128, scales float32/float16/bfloat16.
    func testInteger8BitProductOnEveryInstructionSet() throws {
        _ = tk_set_qmv_x_bytes(2)
        let was = tk_set_qgemm8_enabled(1)
        defer {
            _ = tk_set_qmv_x_bytes(3)
            _ = tk_set_qgemm8_enabled(was)
        }
        let cases: [(group: Int, k: Int, sdt: DType, m: Int, n: Int)] = [
            (32, 32, .float32, 17, 40), (32, 96, .float16, 18, 70), (64, 192, .bfloat16, 19, 9),
            (128, 384, .float32, 35, 333), (32, 576, .float16, 20, 64), (64, 128, .float32, 33, 17)
        ]
        for c in cases {
            let ops = Self.quantizedOperands(
                bits: 8, group: c.group, n: c.n, k: c.k, seed: UInt64(c.k + c.n + 5), dtype: c.sdt)
            let xv = Self.values(c.m * c.k, seed: UInt64(c.m * 11 + c.k))
            let (want, scale) = Self.referenceMatmul(xv, ops.w, m: c.m, n: c.n, k: c.k)
            let slack = Self.integerRounding(
                xv, ops.w, biases: ops.biases, group: c.group, m: c.m, n: c.n, k: c.k, range: 127 * 257)
            try forEachISAAndVNNI { label, isa, vnni in
                let sdtCode = Int32(SIMDKernels.code(c.sdt)!)
                let integer = tk_qgemm8_available(sdtCode, c.k, Int32(c.group)) != 0
                XCTAssertEqual(integer, isa == 2 && vnni, "\(label): the 8-bit integer kernel is VNNI's only")
                let out = ArrayView.allocate(shape: [c.m, c.n], dtype: .float32)
                try QuantizedKernels.matmul(
                    x: Tensor(xv, shape: [c.m, c.k]).view(), wq: Tensor(ops.wq, shape: [c.n, c.k / 4]).view(),
                    scales: Tensor(ops.scales, shape: [c.n, c.k / c.group]).asType(c.sdt).view(),
                    biases: Tensor(ops.biases, shape: [c.n, c.k / c.group]).asType(c.sdt).view(),
                    groupSize: c.group, bits: 8, into: out)
                let got = Tensor(evaluated: out).toArray(Float.self)
                assertClose(
                    got, want, rel: 1e-5, scale: scale, slack: integer ? slack : nil,
                    "\(label) g\(c.group) k=\(c.k) \(c.sdt) m=\(c.m) n=\(c.n)")
                if integer {
                    // The switch off: the float kernel, as inference runs (and not the integer result).
                    _ = tk_set_qgemm8_enabled(0)
                    defer { _ = tk_set_qgemm8_enabled(1) }
                    let off = ArrayView.allocate(shape: [c.m, c.n], dtype: .float32)
                    try QuantizedKernels.matmul(
                        x: Tensor(xv, shape: [c.m, c.k]).view(), wq: Tensor(ops.wq, shape: [c.n, c.k / 4]).view(),
                        scales: Tensor(ops.scales, shape: [c.n, c.k / c.group]).asType(c.sdt).view(),
                        biases: Tensor(ops.biases, shape: [c.n, c.k / c.group]).asType(c.sdt).view(),
                        groupSize: c.group, bits: 8, into: off)
                    let float = Tensor(evaluated: off).toArray(Float.self)
                    assertClose(float, want, rel: 1e-5, scale: scale, "switch off: \(label) g\(c.group) k=\(c.k)")
                    XCTAssertNotEqual(
                        float.map(\.bitPattern), got.map(\.bitPattern), "switch off must take the float kernel")
                }
            }
        }
    }

    /// The kernel itself on column ranges as the pool splits them (panels of
    /// 32, the last one short; the plain C packing for it), 8- and 16-bit x,
    /// codes at both ends (0 and 255) included.
    func testInteger8BitKernelColumnRangesAndWidths() throws {
        guard tk_qgemm8_available(Int32(TK_F32), 192, 64) != 0 else {
            throw XCTSkip("no AVX-512 VNNI here: tk_qgemm8 is not available")
        }
        let m = 21, n = 75, k = 192, group = 64
        var ops = Self.quantizedOperands(bits: 8, group: group, n: n, k: k, seed: 77, dtype: .float32)
        ops.wq[0] = 0xFFFF_FFFF
        ops.wq[1] = 0
        ops.wq[k / 4 * (n - 1)] = 0xFF00_FF00
        ops.w = Self.dequantized(ops.wq, ops.scales, ops.biases, bits: 8, group: group, n: n, k: k)
        let xv = Self.values(m * k, seed: 78)
        let (want, scale) = Self.referenceMatmul(xv, ops.w, m: m, n: n, k: k)
        for xb in [1, 2] {
            let bytes = tk_qgemm4_x_bytes(m, k, Int32(group), Int32(xb))
            var prepared = [UInt8](repeating: 0, count: bytes)
            XCTAssertEqual(tk_qgemm4_prepare(xv, m, k, Int32(group), Int32(xb), &prepared), 1)
            var out = [Float](repeating: .nan, count: m * n)
            var scratch = [UInt8](repeating: 0, count: tk_qgemm4_panel_bytes(k, Int32(group)))
            for n0 in stride(from: 0, to: n, by: 32) {
                XCTAssertEqual(
                    tk_qgemm8(
                        Int32(TK_F32), prepared, ops.wq, ops.scales, ops.biases, &out, m, n, k, Int32(group),
                        Int32(xb), n0, min(n, n0 + 32), &scratch), 1)
            }
            let range = xb == 2 ? 127.0 * 257 : 127
            assertClose(
                out, want, rel: 1e-5, scale: scale,
                slack: Self.integerRounding(
                    xv, ops.w, biases: ops.biases, group: group, m: m, n: n, k: k, range: range), "XB \(xb)")
        }
        // Refusals: a column start off the panels, a third x width.
        var out = [Float](repeating: 0, count: m * n)
        var scratch = [UInt8](repeating: 0, count: tk_qgemm4_panel_bytes(k, Int32(group)))
        let prepared = [UInt8](repeating: 0, count: tk_qgemm4_x_bytes(m, k, Int32(group), 2))
        XCTAssertEqual(
            tk_qgemm8(Int32(TK_F32), prepared, ops.wq, ops.scales, ops.biases, &out, m, n, k, 64, 2, 16, 48, &scratch),
            0)
        XCTAssertEqual(
            tk_qgemm8(Int32(TK_F32), prepared, ops.wq, ops.scales, ops.biases, &out, m, n, k, 64, 3, 0, 32, &scratch), 0
        )
    }
}
