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
                    c.inputs[0], c.inputs[1], scales: c.inputs[2], biases: c.inputs[3], transpose: try c.params.bool("transpose"),
                    groupSize: g, bits: bits)
                // The reference is float64 over the unrounded dequantized weights.
                XCTAssertEqual(out.dtype, c.inputs[0].dtype, c.name)
                assertMatches(out, c.expected[0].asType(out.dtype), c.name)
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

    func testGatherIndexOutOfRangeThrows() {
        let (wq, s, b) = quantize(Tensor.ones([2, 8, 32]), groupSize: 32, bits: 4)
        let out = gatherQuantizedMatmul(
            Tensor.ones([1, 1, 32]), wq, scales: s, biases: b, rhsIndices: Tensor([UInt32(5)]), groupSize: 32, bits: 4)
        XCTAssertThrowsError(try checkedEval([out]))
    }
}
