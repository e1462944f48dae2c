// Parameter names, shapes and trainable sets match MLX's for the same models.

import Tessera
import TesseraTestSupport
import XCTest

@testable import TesseraNN

/// Parameter keys, shapes and trainable sets as MLX's own modules have them
/// (`Tests/Fixtures/nn/mlx_parameter_names.json`), so MLX checkpoints load with
/// a strict `update(parameters:)`.
final class ParameterNameTests: XCTestCase {
    static func model(_ name: String) -> Module? {
        switch name {
        case "Linear": return Linear(4, 5)
        case "Embedding": return Embedding(7, 3)
        case "Conv1d": return Conv1d(inputChannels: 4, outputChannels: 6, kernelSize: 3, groups: 2)
        case "Conv2d": return Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: [3, 2])
        case "ConvTranspose1d": return ConvTranspose1d(inputChannels: 3, outputChannels: 4, kernelSize: 3)
        case "ConvTranspose2d": return ConvTranspose2d(inputChannels: 2, outputChannels: 3, kernelSize: [2, 3])
        case "LayerNorm": return LayerNorm(dimensions: 6)
        case "RMSNorm": return RMSNorm(dimensions: 6)
        case "GroupNorm": return GroupNorm(groupCount: 3, dimensions: 6)
        case "BatchNorm": return BatchNorm(featureCount: 4)
        case "MultiHeadAttention": return MultiHeadAttention(dimensions: 8, heads: 2, bias: true)
        case "Transformer":
            return Transformer(dimensions: 8, heads: 2, encoderLayers: 2, decoderLayers: 1, mlpDimensions: 16)
        case "Sequential": return Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
        case "QuantizedLinear": return QuantizedLinear(64, 8, groupSize: 32, bits: 4)
        default: return nil
        }
    }

    func testKeysShapesAndTrainableSetsMatchMLX() throws {
        let cases = try loadFixtureCases("nn/mlx_parameter_names.json", layout: .keyed)
        XCTAssertEqual(cases.count, 14)
        for c in cases {
            guard let m = Self.model(c.name) else {
                XCTFail("no model \(c.name)")
                continue
            }
            let expected = (c.dictionary("parameters") as! [String: [Int]])
            let actual = Dictionary(uniqueKeysWithValues: m.parameters().flattened().map { ($0.key, $0.value.shape) })
            XCTAssertEqual(actual, expected, c.name)
            XCTAssertEqual(m.trainableParameters().flattened().map(\.key), c.object["trainable"] as! [String], c.name)
            // A checkpoint with exactly MLX's keys and shapes loads strictly.
            let dtypes = m.parameters().flatDictionary.mapValues(\.dtype)
            let checkpoint = Dictionary(
                uniqueKeysWithValues: expected.map { ($0.key, Tensor.zeros($0.value, dtype: dtypes[$0.key]!)) })
            XCTAssertNoThrow(try m.update(parameters: checkpoint), c.name)
        }
    }

    func testSetDTypeAndParameterCount() {
        let m = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
        XCTAssertEqual(m.parameterCount, 4 * 8 + 8 + 8 * 2 + 2)
        m.setDType(.float16) { !$0.hasSuffix("bias") }
        let p = m.parameters().flatDictionary
        XCTAssertEqual(p["layers.0.weight"]!.dtype, .float16)
        XCTAssertEqual(p["layers.0.bias"]!.dtype, .float32)
        XCTAssertEqual(m(Tensor.ones([1, 4], dtype: .float16)).shape, [1, 2])
    }
}
