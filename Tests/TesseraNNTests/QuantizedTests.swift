// Quantized layers: QuantizedLinear/Embedding against their dequantized weights; quantize(model).

import Tessera
import XCTest

@testable import TesseraNN

/// Quantized layers against their dequantized weights (main's quantize /
/// dequantize / quantizedMatmul are checked bit for bit against MLX).
final class QuantizedTests: XCTestCase {
    func testQuantizedLinearMatchesDequantizedWeights() {
        Random.seed(5)
        let linear = Linear(64, 8)
        let q = QuantizedLinear(linear, groupSize: 32, bits: 4)
        XCTAssertEqual(q.parameters().flattened().map(\.key), ["bias", "biases", "scales", "weight"])
        XCTAssertEqual(q.weight.dtype, .uint32)
        XCTAssertEqual(q.weight.shape, [8, 8])
        XCTAssertTrue(q.trainableParameters().isEmpty)
        try? q.unfreeze()
        XCTAssertTrue(q.trainableParameters().isEmpty)
        let x = Random.normal([3, 64])
        let w = dequantize(q.weight, scales: q.scales, biases: q.biases, groupSize: 32, bits: 4)
        let expected = matmul(x, w.T) + linear.bias!
        XCTAssertNil(mismatchInTest(q(x), expected, 1e-5))
        // 4-bit weights stay close to the originals.
        XCTAssertNil(mismatchInTest(q(x), linear(x), 0.2))
    }

    func testQuantizeModelSwapsAcceptedLayers() throws {
        Random.seed(6)
        let model = Sequential(Embedding(10, 64), Linear(64, 64), ReLU(), Linear(64, 5), Linear(5, 64))
        let x = Tensor([1, 2, 3] as [Int32], shape: [1, 3])
        let before = model(x)
        try quantize(model: model, groupSize: 64, bits: 8) { path, _ in path != "layers.1" }
        XCTAssertTrue(model.layers[0] is QuantizedEmbedding)
        XCTAssertFalse(model.layers[1] is QuantizedLinear)
        XCTAssertTrue(model.layers[3] is QuantizedLinear)
        XCTAssertFalse(model.layers[4] is QuantizedLinear, "5 inputs are not a multiple of the group size")
        XCTAssertTrue(model.parameters().flatDictionary.keys.contains("layers.3.scales"))
        XCTAssertNil(mismatchInTest(model(x), before, 0.05))
        // A quantized checkpoint loads into the quantized model.
        let params = model.parameters()
        try model.update(parameters: params)
    }

    func testQuantizedEmbeddingLookupAndLinear() {
        Random.seed(7)
        let e = Embedding(6, 32)
        let q = QuantizedEmbedding(e, groupSize: 32, bits: 8)
        let idx = Tensor([5, 0, 2, 2] as [Int32], shape: [2, 2])
        let w = dequantize(q.weight, scales: q.scales, biases: q.biases, groupSize: 32, bits: 8)
        XCTAssertNil(mismatchInTest(q(idx), w.take(idx, axis: 0), 1e-6))
        XCTAssertEqual(q(idx).shape, [2, 2, 32])
        let h = Random.normal([2, 32])
        XCTAssertNil(mismatchInTest(q.asLinear(h), matmul(h, w.T), 1e-5))
    }

    private func mismatchInTest(_ a: Tensor, _ b: Tensor, _ tol: Float) -> String? {
        let x = a.toArray(Float.self), y = b.toArray(Float.self)
        guard a.shape == b.shape else { return "shapes \(a.shape) \(b.shape)" }
        for i in x.indices where abs(x[i] - y[i]) > tol * (1 + abs(y[i])) { return "element \(i): \(x[i]) vs \(y[i])" }
        return nil
    }
}
