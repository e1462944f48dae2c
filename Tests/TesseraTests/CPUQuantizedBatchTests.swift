import CTesseraKernels
import XCTest

@testable import Tessera

/// The decode product for several rows of x (a continuously batched step)
/// against the one-row kernel, bit for bit: the batched VNNI kernel
/// (tk_qmv_prepared_batch) and the float kernel over several rows must give
/// every row exactly what it gives alone, whatever rows sit beside it.
extension CPUKernelTests {
    /// tk_qmv_prepared_batch against tk_qmv_prepared row by row over the same
    /// output rows n0..<n1: random shapes (N and n0..<n1 odd, K with a
    /// partial last 128 values), 4 and 8 bits, groups 32/64/128, x in
    /// float32/float16/bfloat16, scales in x's dtype or float16 under float32
    /// x (a GGUF's), x rounded to 24 or 16 bits (the 16-bit kernel's segments
    /// of 16 chunks: one or more), 1 to 16 rows.
    func testBatchedQmvKernelIsBitForBitTheOneRowKernel() throws {
        guard tk_qmv_vnni() != 0 else {
            throw XCTSkip(
                "no AVX-512 VNNI here: the batched VNNI kernel cannot run (the float kernels are checked below)")
        }
        var state: UInt64 = 0x5EED_0019
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33) % bound
        }
        func converted(_ v: [Float], _ dt: Int32) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: v.count * (dt == Int32(TK_F32) ? 4 : 2))
            out.withUnsafeMutableBytes { o in
                v.withUnsafeBytes { tk_convert(Int32(TK_F32), $0.baseAddress, dt, o.baseAddress, v.count) }
            }
            return out
        }
        defer { _ = tk_set_qmv_x_bytes(3) }
        for trial in 0..<80 {
            let bits = [4, 8][next(2)], group = [32, 64, 128][next(3)]
            // Every fifth K up to 2560 (more than the 16 chunks of 128 values one segment of the
            // 16-bit kernel keeps: its accumulators are stored between segments).
            let k = trial % 5 == 4 ? group * (1 + next(2560 / group)) : group * (1 + next(group == 32 ? 20 : 8))
            let n = 1 + next(200), m = 1 + next(16)
            let dt = [Int32(TK_F32), Int32(TK_F16), Int32(TK_BF16)][next(3)]
            let sdt = dt == Int32(TK_F32) && next(2) == 0 ? Int32(TK_F16) : dt
            let xb = tk_set_qmv_x_bytes(next(2) == 0 ? 2 : 3)
            let n0 = next(n), n1 = n0 + 1 + next(n - n0)
            let es = dt == Int32(TK_F32) ? 4 : 2, groups = k / group
            let seed = UInt64(trial * 7919)
            let x = converted(Self.values(m * k, seed: seed), dt)
            let wq = Self.values(n * k * bits / 32, seed: seed + 1).map { $0.bitPattern &* 2_654_435_761 ^ 0x9E37_79B9 }
            let sv = Self.values(n * groups, seed: seed + 2, lo: 0.01, hi: 0.1)
            let scales = converted(sv, sdt)
            let biases = converted(sv.enumerated().map { -Float(1 << (bits - 1)) * $1 + 0.01 * Float($0 % 13) }, sdt)
            let bytes = tk_qmv_scratch(dt, 1, k, Int32(group), Int32(bits))
            XCTAssertGreaterThan(bytes, 0)
            let stride = (bytes + 63) / 64 * 64
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: stride * m, alignment: 64)
            defer { scratch.deallocate() }
            var alone = [UInt8](repeating: 0xA5, count: m * n * es), batch = alone
            x.withUnsafeBytes { px in
                for r in 0..<m {
                    XCTAssertNotEqual(
                        tk_qmv_prepare(
                            dt, px.baseAddress! + r * k * es, 1, k, Int32(group), Int32(bits), scratch + r * stride),
                        0)
                }
            }
            wq.withUnsafeBufferPointer { pw in
                scales.withUnsafeBytes { ps in
                    biases.withUnsafeBytes { pb in
                        alone.withUnsafeMutableBytes { po in
                            for r in 0..<m {
                                tk_qmv_prepared(
                                    dt, sdt, scratch + r * stride, pw.baseAddress!, ps.baseAddress!, pb.baseAddress!,
                                    po.baseAddress! + r * n * es, 1, n, k, Int32(group), Int32(bits), n0, n1)
                            }
                        }
                        batch.withUnsafeMutableBytes { po in
                            tk_qmv_prepared_batch(
                                dt, sdt, scratch, stride, pw.baseAddress!, ps.baseAddress!, pb.baseAddress!,
                                po.baseAddress!, m, n, k, Int32(group), Int32(bits), n0, n1)
                        }
                    }
                }
            }
            let tag = "q\(bits) g\(group) k=\(k) n=\(n) rows \(n0)..<\(n1) m=\(m) dt \(dt) sdt \(sdt) x \(xb) bytes"
            XCTAssertEqual(batch, alone, tag)
            // The rows were written (not left at the fill on both sides).
            XCTAssertNotEqual(Array(alone[(n0 * es)..<(n1 * es)]), [UInt8](repeating: 0xA5, count: (n1 - n0) * es), tag)
        }
    }

    /// Through QuantizedKernels.matmul, the path a batched decode step takes
    /// (x prepared row by row, the output rows split over the pool), on every
    /// instruction set, with x at 16 bits and with VNNI off: each of up to 16
    /// rows of x is bit for bit that row computed alone.
    func testQuantizedMatmulRowsAreBitForBitEachRowAlone() throws {
        for (bits, group, k, n) in [(4, 32, 576, 1003), (8, 32, 576, 777), (4, 64, 320, 301), (8, 128, 384, 99)] {
            for dtype in [DType.float32, .bfloat16] {
                let ops = Self.quantizedOperands(
                    bits: bits, group: group, n: n, k: k, seed: UInt64(k + n), dtype: dtype)
                for m in [3, 16] {
                    let xv = Self.rounded(Self.values(m * k, seed: UInt64(m * n)), dtype)
                    try forEachQuantizedKernel { isa in
                        let all = try quantizedMatmul(xv, ops, m: m, n: n, k: k, group: group, bits: bits, dtype: dtype)
                        for row in 0..<m {
                            let alone = try quantizedMatmul(
                                Array(xv[(row * k)..<((row + 1) * k)]), ops, m: 1, n: n, k: k, group: group,
                                bits: bits, dtype: dtype)
                            XCTAssertEqual(
                                all[(row * n)..<((row + 1) * n)].map(\.bitPattern), alone.map(\.bitPattern),
                                "\(isa) q\(bits) g\(group) k=\(k) n=\(n) \(dtype) m=\(m) row \(row)")
                        }
                    }
                }
            }
        }
    }
}
