// Trains a small MLP on scikit-learn's digits (8x8 images, 10 classes) with
// TesseraNN and TesseraOptimizers, and reports the test accuracy.
//
//     swift run -c release train-digits [path/to/digits.npz] [--epochs N]
//
// The data file is written by Tools/extract_digits.py (committed as
// Tests/Fixtures/digits.npz).

import Foundation
import Tessera
import TesseraNN
import TesseraOptimizers

final class MLP: Module, UnaryLayer {
    @ModuleInfo var l1: Linear
    @ModuleInfo var l2: Linear
    @ModuleInfo var dropout: Dropout

    init(hidden: Int) {
        l1 = Linear(64, hidden)
        l2 = Linear(hidden, 10)
        dropout = Dropout(p: 0.1)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { l2(dropout(gelu(l1(x)))) }
}

var arguments = Array(CommandLine.arguments.dropFirst())
var epochs = 20
if let i = arguments.firstIndex(of: "--epochs"), i + 1 < arguments.count, let n = Int(arguments[i + 1]) {
    epochs = n
    arguments.removeSubrange(i...(i + 1))
}
let path = arguments.first ?? "Tests/Fixtures/digits.npz"

do {
    let data = try NPZ.load(path)
    guard let trainX = data["train_x"], let trainY = data["train_y"], let testX = data["test_x"],
        let testY = data["test_y"]
    else {
        print("\(path) lacks train_x/train_y/test_x/test_y")
        exit(1)
    }
    let (xs, ys) = (trainX.asType(.float32) / 16, trainY)
    let count = xs.dim(0), batch = 64
    Random.seed(0)
    let model = MLP(hidden: 128)
    let steps = epochs * ((count + batch - 1) / batch)
    let opt = AdamW(
        learningRate: Schedules.withWarmup(Schedules.cosineDecay(3e-3, decaySteps: steps), warmupSteps: 50, peak: 3e-3))
    let step = valueAndGrad(model: model) { m, x, y in crossEntropy(m(x), y, labelSmoothing: 0.05, reduction: .mean) }
    let start = Date()
    for epoch in 1...epochs {
        let order = Random.permutation(count)
        var total: Float = 0
        for b in stride(from: 0, to: count, by: batch) {
            let idx = order[b..<min(b + batch, count)]
            let (loss, grads) = step(model, xs.take(idx, axis: 0), ys.take(idx, axis: 0))
            opt.update(model: model, gradients: grads)
            eval(model, opt, loss)
            total += loss.item(Float.self)
        }
        model.train(false)
        let predicted = model(testX.asType(.float32) / 16).argMax(axis: -1).asType(testY.dtype)
        let accuracy = (predicted .== testY).asType(.float32).mean().item(Float.self)
        model.train(true)
        let batches = Float((count + batch - 1) / batch)
        print(
            String(
                format: "epoch %2d  loss %.4f  test accuracy %.2f%%  %.1f s", epoch, total / batches, accuracy * 100,
                Date().timeIntervalSince(start)))
    }
} catch {
    print("error: \(error)")
    exit(1)
}
