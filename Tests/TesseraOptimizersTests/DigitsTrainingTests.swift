// End to end: an MLP trained on the digits set reaches 95% accuracy.

import Foundation
import Tessera
import TesseraTestSupport
import XCTest

@testable import TesseraNN
@testable import TesseraOptimizers

/// The README's MLP, trained on scikit-learn's digits (Tools/extract_digits.py).
final class DigitsMLP: Module, UnaryLayer {
    @ModuleInfo var l1: Linear
    @ModuleInfo var l2: Linear

    override init() {
        l1 = Linear(64, 64)
        l2 = Linear(64, 10)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { l2(gelu(l1(x))) }
}

final class DigitsTrainingTests: XCTestCase {
    func testMLPReaches95PercentOnDigits() throws {
        let data = try NPZ.load(fixturesDirectory.appendingPathComponent("digits.npz").path)
        let trainX = data["train_x"]!.asType(.float32) / 16, trainY = data["train_y"]!
        let testX = data["test_x"]!.asType(.float32) / 16, testY = data["test_y"]!
        XCTAssertEqual(trainX.shape, [1500, 64])

        Random.seed(1)
        let model = DigitsMLP()
        let opt = Adam(learningRate: 1e-2)
        let step = valueAndGrad(model: model) { m, x, y in crossEntropy(m(x), y, reduction: .mean) }
        let start = Date()
        let batch = 100
        var lastLoss: Float = .infinity
        for epoch in 0..<12 {
            // A fixed per-epoch permutation (deterministic).
            let order = Tensor((0..<1500).map { Int32(($0 * 7919 + epoch * 104_729) % 1500) })
            let xs = trainX.take(order, axis: 0), ys = trainY.take(order, axis: 0)
            for b in stride(from: 0, to: 1500, by: batch) {
                let (loss, grads) = step(model, xs[b..<(b + batch)], ys[b..<(b + batch)])
                opt.update(model: model, gradients: grads)
                eval(model, opt, loss)
                lastLoss = loss.item(Float.self)
            }
        }
        let predictions = model(testX).argMax(axis: -1).asType(.int32)
        let accuracy = (predictions .== testY).asType(.float32).mean().item(Float.self)
        let seconds = Date().timeIntervalSince(start)
        print(
            "digits: test accuracy \(accuracy), final training loss \(lastLoss), \(String(format: "%.1f", seconds)) s")
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
    }
}
