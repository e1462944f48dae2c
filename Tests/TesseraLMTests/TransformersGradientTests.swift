// valueAndGrad(model:) of a next-token cross-entropy on each architecture's
// tiny fixture model against transformers' gradients (Tools/gen_lm_grad_fixtures.py:
// per parameter the sum, the L2 norm and the dot product with sin(0.37 i + 0.1)).

import Foundation
import Tessera
import TesseraNN
import XCTest

@testable import TesseraLM

final class TransformersGradientTests: XCTestCase {
    static let rtol = 1e-4, atol = 1e-4

    struct Statistics {
        let sum, norm, projection: Double

        init(_ g: Tensor) {
            let values = g.asType(.float32).toArray(Float.self).map(Double.init)
            sum = values.reduce(0, +)
            norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
            projection = values.enumerated().reduce(0) {
                $0 + $1.element * Foundation.sin(0.37 * Double($1.offset) + 0.1)
            }
        }

        init(_ json: [String: Any]) {
            sum = json["sum"] as? Double ?? .nan
            norm = json["norm"] as? Double ?? .nan
            projection = json["projection"] as? Double ?? .nan
        }
    }

    func check(_ name: String) throws {
        let json =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: ArchitectureTests.fixture("gradients.json"))))
            as? [String: Any]
        guard let reference = (json?["models"] as? [String: Any])?[name] as? [String: Any],
            let tokens = reference["tokens"] as? [Int], let expectedLoss = reference["loss"] as? Double,
            let expected = reference["parameters"] as? [String: [String: Any]]
        else { return XCTFail("gradients.json has no entry for \(name)") }
        guard let model = try ModelLoader.load(ArchitectureTests.fixture(name)).model as? TransformerModel else {
            return XCTFail("\(name) is not a TransformerModel")
        }
        let ids = tokens.map { Int32($0) }
        let inputs = Tensor(Array(ids.dropLast()), shape: [1, ids.count - 1])
        let targets = Tensor(Array(ids.dropFirst()), shape: [1, ids.count - 1])
        let step = valueAndGrad(model: model) { (m: TransformerModel, x: Tensor, y: Tensor) in
            crossEntropy(m(x), y, reduction: .mean)
        }
        let (loss, grads) = step(model, inputs, targets)
        XCTAssertEqual(Double(loss.item(Float.self)), expectedLoss, accuracy: 1e-5 * expectedLoss, "\(name) loss")
        let gradients = grads.flatDictionary
        XCTAssertEqual(Set(gradients.keys), Set(expected.keys), name)
        for (key, want) in expected.sorted(by: { $0.key < $1.key }) {
            guard let g = gradients[key] else { continue }
            let got = Statistics(g), reference = Statistics(want)
            for (what, a, b) in [
                ("sum", got.sum, reference.sum), ("norm", got.norm, reference.norm),
                ("projection", got.projection, reference.projection)
            ] {
                XCTAssertEqual(
                    a, b, accuracy: Self.rtol * abs(b) + Self.atol * reference.norm, "\(name) \(key) \(what)")
            }
        }
    }

    func testLlama() throws { try check("llama") }
    func testMistral() throws { try check("mistral") }
    func testQwen2() throws { try check("qwen2") }
    func testQwen3() throws { try check("qwen3") }
    func testPhi3() throws { try check("phi3") }
    func testGemma2() throws { try check("gemma2") }
    func testGemma3() throws { try check("gemma3_text") }
}
