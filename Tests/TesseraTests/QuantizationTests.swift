// Affine quantization against MLX, round-trip error bounds, quantized matmul vs
// dequantized matmul (batched, shared, half scales); bad gather indices throw.

import CTesseraKernels
import TesseraTestSupport
import XCTest

@testable import Tessera

/// MLX's affine quantization, bit for bit, and quantized matrix products,
/// against fixtures MLX wrote (Tools/gen_ops_numerics_fixtures.py).
final class QuantizationTests: XCTestCase {
    func testAgainstMLX() throws {
        let cases = try loadFixtureCases("quantization.json")
        var counts: [String: Int] = [:]
        for c in cases {
            let g = try c.params.int("groupSize"), bits = try c.params.int("bits")
            switch c.op {
            case "quantize":
                let (wq, s, b) = quantize(c.inputs[0], groupSize: g, bits: bits)
                assertMatches(wq, c.expected[0], "\(c.name) wq", .bitwise)
                assertMatches(s, c.expected[1], "\(c.name) scales", .bitwise)
                assertMatches(b, c.expected[2], "\(c.name) biases", .bitwise)
            case "dequantize":
                let w = dequantize(c.inputs[0], scales: c.inputs[1], biases: c.inputs[2], groupSize: g, bits: bits)
                assertMatches(w, c.expected[0], c.name, .bitwise)
            case "quantizedMatmul":
                let out = quantizedMatmul(
                    c.inputs[0], c.inputs[1], scales: c.inputs[2], biases: c.inputs[3],
                    transpose: try c.params.bool("transpose"),
                    groupSize: g, bits: bits)
                // The reference is float64 over the unrounded dequantized weights (MLX's own
                // output for qmm_batched_broadcast); compared within 1e-5 of |x| . |w| (see below).
                XCTAssertEqual(out.dtype, c.inputs[0].dtype, c.name)
                let w = dequantize(c.inputs[1], scales: c.inputs[2], biases: c.inputs[3], groupSize: g, bits: bits)
                assertQuantizedProductMatches(
                    out, c.expected[0], x: c.inputs[0], w: try c.params.bool("transpose") ? w.swappedAxes(-1, -2) : w,
                    c.name)
            case "gatherQuantizedMatmul":
                let both = try c.params.optionalString("indices") == "both"
                let out = gatherQuantizedMatmul(
                    c.inputs[0], c.inputs[1], scales: c.inputs[2], biases: c.inputs[3],
                    lhsIndices: both ? c.inputs[4] : nil, rhsIndices: both ? c.inputs[5] : c.inputs[4],
                    transpose: try c.params.bool("transpose"), groupSize: g, bits: bits)
                assertMatches(out, c.expected[0].asType(out.dtype), c.name)
            default:
                XCTFail("unknown op \(c.op)")
            }
            counts[c.op, default: 0] += 1
        }
        XCTAssertGreaterThanOrEqual(counts["quantize"] ?? 0, 50)
        XCTAssertGreaterThanOrEqual(counts["dequantize"] ?? 0, 50)
        XCTAssertGreaterThanOrEqual(counts["quantizedMatmul"] ?? 0, 30)
        XCTAssertGreaterThanOrEqual(counts["gatherQuantizedMatmul"] ?? 0, 5)
    }

    /// A quantized product against its reference: |got - want| <= 1e-5 * sum_k |x_k| |w_k| per
    /// value (the magnitude of its dot product), plus the dtype's table tolerance (the rounding
    /// of half outputs). The kernels sum each group as s (q . x) + b sum(x), not in MLX's order
    /// (s q + b per weight), so values that cancel to near zero differ from MLX by more than a
    /// relative tolerance of the value itself allows; float32 accumulation in any order stays
    /// within K * 6e-8 of the magnitude, 1e-5 for the fixtures' K <= 128.
    func assertQuantizedProductMatches(
        _ got: Tensor, _ want: Tensor, x: Tensor, w: Tensor, _ message: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(got.shape, want.shape, message, file: file, line: line)
        let table = Tolerance.table(got.dtype) ?? Tolerance(rtol: 0, atol: 0)
        let magnitude = matmul(abs(x.asType(.float32)), abs(w.asType(.float32))).toArray(Float.self)
        let g = got.asType(.float32).toArray(Float.self), e = want.asType(.float32).toArray(Float.self)
        XCTAssertEqual(magnitude.count, g.count, message, file: file, line: line)
        var worst = (excess: 0.0, index: -1)
        for i in 0..<min(g.count, e.count, magnitude.count) {
            let allowed = table.atol + table.rtol * Double(Swift.abs(e[i])) + 1e-5 * Double(magnitude[i])
            let excess = Double(Swift.abs(g[i] - e[i])) - allowed
            if !(excess <= 0) && !(excess <= worst.excess) { worst = (excess, i) }
        }
        if worst.index >= 0 {
            XCTFail(
                "\(message): value \(worst.index) is \(g[worst.index]), expected \(e[worst.index]) "
                    + "(magnitude \(magnitude[worst.index]))", file: file, line: line)
        }
    }

    func testRoundTripErrorIsWithinAStep() {
        let w = Tensor((0..<256).map { Float(sin(Double($0) * 0.37)) * 2 }, shape: [2, 128])
        for bits in [2, 3, 4, 5, 6, 8] {
            let (wq, s, b) = quantize(w, groupSize: 32, bits: bits)
            XCTAssertEqual(wq.shape, [2, 128 * bits / 32])
            XCTAssertEqual(s.shape, [2, 4])
            let back = dequantize(wq, scales: s, biases: b, groupSize: 32, bits: bits)
            let step = abs(s).max().item(Float.self)
            XCTAssertLessThanOrEqual(abs(back - w).max().item(Float.self), step + 1e-6, "bits \(bits)")
        }
    }

    func testQuantizedMatmulMatchesDequantizedMatmul() {
        let w = Tensor((0..<(48 * 64)).map { Float(cos(Double($0) * 0.11)) }, shape: [48, 64])
        let x = Tensor((0..<(3 * 64)).map { Float(sin(Double($0) * 0.7)) }, shape: [3, 64])
        let (wq, s, b) = quantize(w, groupSize: 64, bits: 4)
        let wd = dequantize(wq, scales: s, biases: b, groupSize: 64, bits: 4)
        assertMatches(quantizedMatmul(x, wq, scales: s, biases: b), matmul(x, wd.T), "transpose")
        // A 1-D x gives a 1-D result.
        let v = quantizedMatmul(x[0], wq, scales: s, biases: b)
        XCTAssertEqual(v.shape, [48])
        assertMatches(v, matmul(x[0], wd.T), "vector")
        // Non-contiguous x (a transposed view) reads through its strides.
        let xt = Tensor((0..<(64 * 3)).map { Float($0 % 7) - 3 }, shape: [64, 3]).T
        assertMatches(quantizedMatmul(xt, wq, scales: s, biases: b), matmul(xt, wd.T), "strided x")
    }

    /// A 2-D weight under x with batch axes is one matrix every batch shares
    /// (no broadcast in the graph); mapped by vmap, the weights carry the
    /// mapped axis. Both equal the products with the dequantized weights.
    func testSharedWeightsUnderBatchedXAndMappedWeights() {
        let w = Tensor((0..<(48 * 64)).map { Float(cos(Double($0) * 0.11)) }, shape: [48, 64])
        let (wq, s, b) = quantize(w, groupSize: 32, bits: 4)
        let (wq2, s2, b2) = quantize(w * -0.5 + 0.25, groupSize: 32, bits: 4)
        let wd = dequantize(wq, scales: s, biases: b, groupSize: 32, bits: 4)
        let wd2 = dequantize(wq2, scales: s2, biases: b2, groupSize: 32, bits: 4)
        let x = Tensor((0..<(2 * 3 * 64)).map { Float(sin(Double($0) * 0.7)) }, shape: [2, 3, 64])
        let y = quantizedMatmul(x, wq, scales: s, biases: b, groupSize: 32, bits: 4)
        XCTAssertEqual(y.node.inputs.map(\.shape), [[2, 3, 64], [48, 8], [48, 2], [48, 2]])
        assertMatches(y, matmul(x, wd.T), "batched x")
        let mapped = vmap(
            { [quantizedMatmul(x, $0[0], scales: $0[1], biases: $0[2], groupSize: 32, bits: 4)] },
            inAxes: [0, 0, 0])([stacked([wq, wq2]), stacked([s, s2]), stacked([b, b2])])[0]
        XCTAssertEqual(mapped.shape, [2, 2, 3, 48])
        assertMatches(mapped[0], matmul(x, wd.T), "mapped weights 0")
        assertMatches(mapped[1], matmul(x, wd2.T), "mapped weights 1")
    }

    /// `QuantizedMatmulPrecision.high` rounds x to 16 bits in the VNNI decode
    /// kernels: the products stay within that rounding's bound of the
    /// dequantized product (at most max|x| of a block of 8 / (2 · 127 · 257)
    /// per value, times |w|), and differ from `.highest`'s where the CPU has
    /// VNNI; `.highest` is the default and comes back.
    func testHighPrecisionProductsStayWithinTheirRoundingBound() {
        XCTAssertEqual(QuantizedMatmulPrecision.current, .highest)
        let (k, n) = (512, 96)
        let w = Tensor((0..<(n * k)).map { Float(cos(Double($0) * 0.37)) }, shape: [n, k])
        let (wq, s, b) = quantize(w, groupSize: 64, bits: 4)
        let wd = dequantize(wq, scales: s, biases: b, groupSize: 64, bits: 4)
        let xv = (0..<(2 * k)).map { Float(sin(Double($0) * 1.3)) * ($0 % 8 == 0 ? 4 : 1) }
        let x = Tensor(xv, shape: [2, k])
        let highest = quantizedMatmul(x, wq, scales: s, biases: b).toArray(Float.self)
        QuantizedMatmulPrecision.current = .high
        let high = quantizedMatmul(x, wq, scales: s, biases: b).toArray(Float.self)
        QuantizedMatmulPrecision.current = .highest
        let want = matmul(x.asType(.float64), wd.asType(.float64).T).toArray(Double.self)
        let wv = wd.toArray(Float.self)
        for i in 0..<2 {
            for j in 0..<n {
                var bound = 1e-5 * (0..<k).reduce(0.0) { $0 + abs(Double(xv[i * k + $1]) * Double(wv[j * k + $1])) }
                for block in stride(from: 0, to: k, by: 8) {
                    let top = (block..<(block + 8)).map { abs(Double(xv[i * k + $0])) }.max()! / (2 * 127 * 257)
                    for p in block..<(block + 8) { bound += top * abs(Double(wv[j * k + p])) }
                }
                XCTAssertLessThanOrEqual(abs(Double(high[i * n + j]) - want[i * n + j]), bound, "high [\(i), \(j)]")
            }
        }
        if tk_qmv_vnni() != 0 { XCTAssertNotEqual(high, highest, "the precision took effect") }
        XCTAssertEqual(QuantizedMatmulPrecision.current, .highest)
    }

    /// Half scales under float32 x stay half (the kernels widen them as they
    /// read): the products equal those with the scales widened first, bit for
    /// bit, on the decode kernel (few rows), the prefill path (many rows), the
    /// untransposed layout, x with batch axes over a shared weight, and with
    /// weights that carry a batch axis of their own.
    func testHalfScalesUnderFloat32XEqualWidenedScales() {
        for (bits, group) in [(4, 32), (4, 64), (8, 32), (8, 128)] {
            for halfType in [DType.float16, .bfloat16] {
                let w = Tensor((0..<(256 * 256)).map { Float(cos(Double($0) * 0.013)) }, shape: [256, 256])
                let (wq, s32, b32) = quantize(w, groupSize: group, bits: bits)
                let s = s32.asType(halfType), b = b32.asType(halfType)
                let (sw, bw) = (s.asType(.float32), b.asType(.float32))
                for rows in [1, 5, 20] {
                    let x = Tensor((0..<(rows * 256)).map { Float(sin(Double($0) * 0.7)) }, shape: [rows, 256])
                    let got = quantizedMatmul(x, wq, scales: s, biases: b, groupSize: group, bits: bits)
                    let want = quantizedMatmul(x, wq, scales: sw, biases: bw, groupSize: group, bits: bits)
                    XCTAssertEqual(got.dtype, .float32)
                    XCTAssertEqual(
                        got.toArray(Float.self), want.toArray(Float.self), "q\(bits) g\(group) \(halfType) m=\(rows)")
                }
                let xb = Tensor((0..<(2 * 3 * 256)).map { Float(sin(Double($0) * 0.3)) }, shape: [2, 3, 256])
                XCTAssertEqual(
                    quantizedMatmul(xb, wq, scales: s, biases: b, groupSize: group, bits: bits).toArray(Float.self),
                    quantizedMatmul(xb, wq, scales: sw, biases: bw, groupSize: group, bits: bits).toArray(Float.self),
                    "batched x q\(bits) \(halfType)")
                // Untransposed: w [K, N] quantized along N.
                let (wq2, s2, b2) = quantize(w.T, groupSize: group, bits: bits)
                let x2 = Tensor((0..<(2 * 256)).map { Float(cos(Double($0) * 0.5)) }, shape: [2, 256])
                XCTAssertEqual(
                    quantizedMatmul(
                        x2, wq2, scales: s2.asType(halfType), biases: b2.asType(halfType), transpose: false,
                        groupSize: group, bits: bits
                    ).toArray(Float.self),
                    quantizedMatmul(
                        x2, wq2, scales: s2.asType(halfType).asType(.float32),
                        biases: b2.asType(halfType).asType(.float32),
                        transpose: false, groupSize: group, bits: bits
                    ).toArray(Float.self), "untransposed q\(bits) \(halfType)")
                // Weights with a batch axis of their own.
                let ws = stacked([w, w * 0.5], axis: 0)
                let (wq3, s3, b3) = quantize(ws, groupSize: group, bits: bits)
                XCTAssertEqual(
                    quantizedMatmul(
                        xb, wq3, scales: s3.asType(halfType), biases: b3.asType(halfType), groupSize: group, bits: bits
                    )
                    .toArray(Float.self),
                    quantizedMatmul(
                        xb, wq3, scales: s3.asType(halfType).asType(.float32),
                        biases: b3.asType(halfType).asType(.float32),
                        groupSize: group, bits: bits
                    ).toArray(Float.self), "batched weights q\(bits) \(halfType)")
            }
        }
    }

    func testGatherIndexOutOfRangeThrows() {
        let (wq, s, b) = quantize(Tensor.ones([2, 8, 32]), groupSize: 32, bits: 4)
        let out = gatherQuantizedMatmul(
            Tensor.ones([1, 1, 32]), wq, scales: s, biases: b, rhsIndices: Tensor([UInt32(5)]), groupSize: 32, bits: 4)
        XCTAssertThrowsError(try checkedEval([out]))
    }
}
