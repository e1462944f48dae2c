// Activations and losses against torch (committed fixtures); activation layers equal their functions.

import Tessera
import TesseraTestSupport
import XCTest

@testable import TesseraNN

/// Activations and losses against torch: values and input gradients.
/// float32: rtol 1e-5, atol 1e-6 (1e-5 for gradients).
final class ActivationAndLossTests: XCTestCase {
    static var functions: [String: (Tensor) -> Tensor] {
        [
            "relu": relu, "relu6": relu6, "leakyRelu": { leakyRelu($0) }, "elu": { elu($0) }, "gelu": gelu,
            "geluApproximate": geluApproximate, "silu": silu, "mish": mish, "softplus": softplus, "tanh": tanh,
            "sigmoid": sigmoid, "glu": { glu($0) }, "logSigmoid": logSigmoid, "selu": selu, "hardSwish": hardSwish,
            "softsign": softsign
        ]
    }

    func testActivationsAgainstTorch() throws {
        let cases = try loadFixtureCases("nn/activations.json", layout: .keyed)
        XCTAssertEqual(cases.count, 16)
        for c in cases {
            guard let f = Self.functions[c.name] else {
                XCTFail("no function \(c.name)")
                continue
            }
            let x = try c.tensor("input"), ct = try c.tensor("cotangent")
            if let m = mismatch(f(x), try c.tensor("output"), rtol: 1e-5, atol: 1e-6) { XCTFail("\(c.name): \(m)") }
            let g = grad { (x: Tensor) in (f(x) * ct).sum() }(x)
            if let m = mismatch(g, try c.tensor("input_grad"), rtol: 1e-5, atol: 1e-5) {
                XCTFail("\(c.name) grad: \(m)")
            }
        }
    }

    func testActivationLayersMatchFunctions() {
        let x = Tensor([-2, -0.5, 0, 0.5, 2] as [Float])
        let pairs: [(Module & UnaryLayer, (Tensor) -> Tensor)] = [
            (ReLU(), relu), (GELU(), gelu), (GELU(approximation: .tanh), geluApproximate), (SiLU(), silu),
            (Mish(), mish), (Softplus(), softplus), (Tanh(), tanh), (Sigmoid(), sigmoid),
            (LeakyReLU(negativeSlope: 0.2), { leakyRelu($0, negativeSlope: 0.2) }),
            (ELU(alpha: 0.5), { elu($0, alpha: 0.5) })
        ]
        for (layer, f) in pairs {
            XCTAssertEqual(layer(x).toArray(Float.self), f(x).toArray(Float.self), "\(type(of: layer))")
            XCTAssertTrue(layer.parameters().isEmpty)
        }
        XCTAssertEqual(GLU()(Tensor([1, 2, 3, 4] as [Float])).shape, [2])
    }

    func testLossesAgainstTorch() throws {
        let cases = try loadFixtureCases("nn/losses.json", layout: .keyed)
        XCTAssertEqual(cases.count, 43)
        for c in cases {
            let cfg = FixtureCase(c.dictionary("config")!)
            let inputs = try (c.object["inputs"] as! [Any]).map {
                try FixtureCase(["name": c.name, "x": $0]).tensor("x")
            }
            let reduction: LossReduction = ["none": .none, "mean": .mean, "sum": .sum][cfg.string("reduction")!]!
            let classWeights = cfg.has("class_weights") ? try cfg.tensor("class_weights") : nil
            let loss: ([Tensor]) -> Tensor
            switch cfg.string("loss")! {
            case "crossEntropy":
                loss = {
                    crossEntropy(
                        $0[0], $0[1], classWeights: classWeights, axis: cfg.int("axis") ?? -1,
                        labelSmoothing: Float(cfg.double("label_smoothing") ?? 0), ignoreIndex: cfg.int("ignore_index"),
                        reduction: reduction)
                }
            case "binaryCrossEntropy":
                loss = { binaryCrossEntropy($0[0], $0[1], withLogits: cfg.bool("with_logits")!, reduction: reduction) }
            case "mse": loss = { mseLoss($0[0], $0[1], reduction: reduction) }
            case "l1": loss = { l1Loss($0[0], $0[1], reduction: reduction) }
            case "smoothL1":
                loss = { smoothL1Loss($0[0], $0[1], beta: Float(cfg.double("beta")!), reduction: reduction) }
            case "huber": loss = { huberLoss($0[0], $0[1], delta: Float(cfg.double("delta")!), reduction: reduction) }
            case "nll": loss = { nllLoss($0[0], $0[1], reduction: reduction) }
            case "klDiv": loss = { klDivLoss($0[0], $0[1], reduction: reduction) }
            case "cosineSimilarity": loss = { cosineSimilarityLoss($0[0], $0[1], reduction: reduction) }
            default:
                XCTFail("unknown loss \(c.name)")
                continue
            }
            if let m = mismatch(loss(inputs), try c.tensor("output"), rtol: 1e-5, atol: 1e-6) {
                XCTFail("\(c.name): \(m)")
            }
            let ct = try c.tensor("cotangent")
            let expectedGrads = c.dictionary("input_grads")!
            let indices = expectedGrads.keys.compactMap(Int.init).sorted()
            let grads = grad({ (loss($0) * ct).sum() }, argumentNumbers: indices)(inputs)
            for (k, i) in indices.enumerated() {
                let e = try FixtureCase(["name": c.name, "g": expectedGrads[String(i)]!]).tensor("g")
                if let m = mismatch(grads[k], e, rtol: 1e-5, atol: 1e-5) { XCTFail("\(c.name) grad \(i): \(m)") }
            }
        }
    }
}
