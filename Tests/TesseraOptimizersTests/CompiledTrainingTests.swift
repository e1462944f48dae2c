// A whole training step compiled with its state (model parameters, optimizer
// step, learning rate and moments, the global random key) against the same
// step run eagerly: the same losses and parameters over several steps.

import Tessera
import XCTest

@testable import TesseraNN
@testable import TesseraOptimizers

private final class SmallMLP: Module, UnaryLayer {
    @ModuleInfo var l1: Linear
    @ModuleInfo var l2: Linear

    override init() {
        l1 = Linear(8, 16)
        l2 = Linear(16, 3)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { l2(gelu(l1(x))) }
}

final class CompiledTrainingTests: XCTestCase {
    /// Five steps of `optimizer` on a small MLP with input noise drawn from the
    /// global key, eagerly or as one compiled function; the losses, the final
    /// parameters and the next global draw.
    private func train(
        compiled: Bool, _ makeOptimizer: () -> Optimizer
    ) -> (losses: [Float], parameters: [Tensor], step: Int, nextDraw: [Float]) {
        Random.seed(3)
        let model = SmallMLP()
        let optimizer = makeOptimizer()
        let x = Random.normal([32, 8], key: Random.key(11))
        let y = Tensor((0..<32).map { Int32($0 % 3) })
        let lossAndGrad = valueAndGrad(model: model) { m, x, y in crossEntropy(m(x), y, reduction: .mean) }
        let step = { (args: [Tensor]) -> [Tensor] in
            let noisy = args[0] + 0.1 * Random.normal(args[0].shape)  // a keyless draw
            let (loss, grads) = lossAndGrad(model, noisy, args[1])
            optimizer.update(model: model, gradients: grads)
            return [loss]
        }
        let state: [any Updatable] = [model, optimizer, Random.state]
        let run = compiled ? compile(inputs: state, outputs: state, step) : step
        var losses: [Float] = []
        for _ in 0..<5 {
            let loss = run([x, y])[0]
            eval([loss] + model.innerState + optimizer.tensors)
            losses.append(loss.item(Float.self))
        }
        return (losses, model.innerState, optimizer.step, Random.uniform([4]).toArray(Float.self))
    }

    private func assertCompiledEqualsEager(_ name: String, _ makeOptimizer: () -> Optimizer) {
        let eager = train(compiled: false, makeOptimizer)
        let traces = Compile.traceCount
        let compiled = train(compiled: true, makeOptimizer)
        // The first call creates the optimizer's moments, the second traces
        // with them as inputs; the other three replay.
        XCTAssertEqual(Compile.traceCount - traces, 2, name)
        XCTAssertEqual(compiled.step, 5, name)
        XCTAssertEqual(eager.step, 5, name)
        for (a, b) in zip(eager.losses, compiled.losses) {
            XCTAssertEqual(
                a, b, accuracy: 1e-5 * max(1, abs(a)), "\(name) losses \(eager.losses) vs \(compiled.losses)")
        }
        XCTAssertGreaterThan(eager.losses[0] - eager.losses[4], 0, "\(name): training lowers the loss")
        XCTAssertEqual(eager.parameters.count, compiled.parameters.count)
        for (a, b) in zip(eager.parameters, compiled.parameters) {
            let d = abs(a - b).max().item(Float.self)
            XCTAssertLessThan(d, 1e-5, "\(name): parameters differ by \(d)")
        }
        // The compiled step advanced the global key exactly as the eager one did.
        XCTAssertEqual(eager.nextDraw, compiled.nextDraw, name)
    }

    func testCompiledAdamStepEqualsEager() {
        assertCompiledEqualsEager("Adam") { Adam(learningRate: 1e-2) }
    }

    func testCompiledStepWithBiasCorrectionAndScheduleEqualsEager() {
        // The step and the scheduled rate change every call: both must be inputs of the trace.
        assertCompiledEqualsEager("AdamW") {
            AdamW(learningRate: Schedules.exponentialDecay(2e-2, decayRate: 0.7), biasCorrection: true)
        }
        assertCompiledEqualsEager("SGD") { SGD(learningRate: 5e-2, momentum: 0.9, nesterov: true) }
        assertCompiledEqualsEager("Lion") { Lion(learningRate: 1e-3, weightDecay: 0.1) }
        // Relative step sizes and the second-moment decay are functions of the step.
        assertCompiledEqualsEager("Adafactor") { Adafactor(beta1: 0.9, weightDecay: 0.01) }
    }

    func testCompiledDrawsAdvanceTheGlobalKeyAsEager() {
        Random.seed(42)
        let eager = (0..<3).map { _ in Random.normal([6]).toArray(Float.self) }
        let after = Random.bits([2]).toArray(UInt32.self)

        Random.seed(42)
        let draw = compile(inputs: [Random.state], outputs: [Random.state]) { (x: Tensor) in Random.normal([6]) + x }
        let compiled = (0..<3).map { _ in draw(Tensor(Float(0))).toArray(Float.self) }
        XCTAssertEqual(compiled, eager, "same numbers as the eager draws, not the traced key three times")
        XCTAssertEqual(Random.bits([2]).toArray(UInt32.self), after, "the sequence continues where eager leaves it")

        // Without the state, the draw is a constant of the trace (documented).
        Random.seed(42)
        let frozen = compile { (x: Tensor) in Random.normal([6]) + x }
        XCTAssertEqual(frozen(Tensor(Float(0))).toArray(Float.self), frozen(Tensor(Float(0))).toArray(Float.self))
    }
}
