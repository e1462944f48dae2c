// Optimizers, schedules and clipGradNorm against MLX (committed fixtures); state
// save/load continues training; bad state is a typed error.

import Foundation
import Tessera
import TesseraNN
import TesseraTestSupport
import XCTest

@testable import TesseraOptimizers

/// Two steps of each optimizer, the schedules and clipGradNorm against MLX
/// (Tools/gen_nn_fixtures.py). float32: rtol 1e-5, atol 1e-6.
final class OptimizerFixtureTests: XCTestCase {
    private func root() throws -> [String: Any] {
        let data = try Data(contentsOf: fixturesDirectory.appendingPathComponent("nn/optimizers.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    static func makeOptimizer(_ name: String, _ kind: String, _ cfg: FixtureCase) -> Optimizer {
        let lr: LearningRate
        if cfg.string("schedule") == "cosine" {
            lr = Schedules.cosineDecay(Float(cfg.double("init")!), decaySteps: cfg.int("steps")!)
        } else {
            lr = .constant(Float(cfg.double("learning_rate") ?? 0))
        }
        let betas = (cfg.object["betas"] as? [Double]).map { (Float($0[0]), Float($0[1])) }
        let f = { (k: String, d: Double) in Float(cfg.double(k) ?? d) }
        switch kind {
        case "sgd":
            return SGD(
                learningRate: lr, momentum: f("momentum", 0), weightDecay: f("weight_decay", 0),
                dampening: f("dampening", 0), nesterov: cfg.bool("nesterov") ?? false)
        case "adam":
            return Adam(
                learningRate: lr, betas: betas ?? (0.9, 0.999), biasCorrection: cfg.bool("bias_correction") ?? false)
        case "adamw":
            return AdamW(
                learningRate: lr, weightDecay: f("weight_decay", 0.01),
                biasCorrection: cfg.bool("bias_correction") ?? false)
        case "adamax": return Adamax(learningRate: lr)
        case "rmsprop": return RMSprop(learningRate: lr, alpha: f("alpha", 0.99))
        case "adagrad": return Adagrad(learningRate: lr)
        case "adadelta": return AdaDelta(learningRate: lr, rho: f("rho", 0.9))
        case "lion": return Lion(learningRate: lr, weightDecay: f("weight_decay", 0))
        case "adafactor":
            return Adafactor(
                learningRate: cfg.has("learning_rate") ? lr : nil, beta1: cfg.double("beta_1").map(Float.init),
                weightDecay: f("weight_decay", 0), relativeStep: cfg.bool("relative_step") ?? true)
        default: fatalError("unknown optimizer \(name)")
        }
    }

    private func assertClose(
        _ actual: ModuleParameters, _ expected: [String: Tensor], _ what: String, rtol: Double = 1e-5,
        atol: Double = 1e-6
    ) {
        let a = actual.flatDictionary
        XCTAssertEqual(Set(a.keys), Set(expected.keys), what)
        for (k, e) in expected {
            guard let t = a[k] else { continue }
            if let m = mismatch(t, e, rtol: rtol, atol: atol) { XCTFail("\(what) \(k): \(m)") }
        }
    }

    func testTwoStepsOfEachOptimizerAgainstMLX() throws {
        let cases = (try root()["cases"] as! [[String: Any]]).map(FixtureCase.init)
        XCTAssertEqual(cases.count, 15)
        for c in cases {
            let opt = Self.makeOptimizer(c.name, c.string("optimizer")!, FixtureCase(c.dictionary("config")!))
            let p0 = ModuleParameters(flattened: try c.tensors("params"))
            let p1 = opt.applyGradients(ModuleParameters(flattened: try c.tensors("grads1")), parameters: p0)
            assertClose(p1, try c.tensors("after1"), "\(c.name) step 1")
            let p2 = opt.applyGradients(ModuleParameters(flattened: try c.tensors("grads2")), parameters: p1)
            assertClose(p2, try c.tensors("after2"), "\(c.name) step 2")
            XCTAssertEqual(opt.step, 2)
        }
    }

    /// Saving after one step and loading into a fresh optimizer gives MLX's second step.
    func testStateSaveLoadContinuesTraining() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-opt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases = (try root()["cases"] as! [[String: Any]]).map(FixtureCase.init)
        for c in cases {
            let cfg = FixtureCase(c.dictionary("config")!)
            let first = Self.makeOptimizer(c.name, c.string("optimizer")!, cfg)
            let p1 = first.applyGradients(
                ModuleParameters(flattened: try c.tensors("grads1")),
                parameters: ModuleParameters(flattened: try c.tensors("params")))
            let path = dir.appendingPathComponent("\(c.name).safetensors").path
            try first.saveState(to: path)
            let second = Self.makeOptimizer(c.name, c.string("optimizer")!, cfg)
            try second.loadState(from: path)
            XCTAssertEqual(second.step, 1)
            let p2 = second.applyGradients(ModuleParameters(flattened: try c.tensors("grads2")), parameters: p1)
            assertClose(p2, try c.tensors("after2"), "\(c.name) after reload")
        }
    }

    func testSchedulesAgainstMLX() throws {
        let cases = (try root()["schedules"] as! [[String: Any]]).map(FixtureCase.init)
        XCTAssertEqual(cases.count, 5)
        for c in cases {
            let cfg = FixtureCase(c.dictionary("config")!)
            let f = { (k: String) in Float(cfg.double(k)!) }
            let schedule: LearningRate
            switch c.name {
            case "linear": schedule = Schedules.linear(from: f("init"), to: f("end"), steps: cfg.int("steps")!)
            case "cosine": schedule = Schedules.cosineDecay(f("init"), decaySteps: cfg.int("steps")!, end: f("end"))
            case "exponential": schedule = Schedules.exponentialDecay(f("init"), decayRate: f("decay_rate"))
            case "step":
                schedule = Schedules.stepDecay(f("init"), decayRate: f("decay_rate"), stepSize: cfg.int("step_size")!)
            case "joined":
                schedule = Schedules.withWarmup(
                    Schedules.cosineDecay(f("peak"), decaySteps: cfg.int("steps")!), warmupSteps: cfg.int("warmup")!,
                    peak: f("peak"))
            default:
                XCTFail("unknown schedule \(c.name)")
                continue
            }
            let expected = c.object["values"] as! [Double]
            for (step, e) in expected.enumerated() {
                let v = Double(schedule.value(at: step))
                XCTAssertEqual(v, e, accuracy: 1e-6 + 1e-5 * Swift.abs(e), "\(c.name) at step \(step)")
            }
        }
    }

    func testClipGradNormAgainstMLX() throws {
        let cases = (try root()["clip"] as! [[String: Any]]).map(FixtureCase.init)
        for c in cases {
            let (clipped, norm) = clipGradNorm(
                ModuleParameters(flattened: try c.tensors("grads")), maxNorm: Float(c.double("max_norm")!))
            assertClose(clipped, try c.tensors("clipped"), c.name)
            XCTAssertEqual(Double(norm.item(Float.self)), c.double("norm")!, accuracy: 1e-5 * c.double("norm")!)
        }
    }

    func testUnreadableOrMismatchedStateThrows() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-opt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = Linear(3, 2)
        let adam = Adam(learningRate: 0.1)
        let step = valueAndGrad(model: model) { m, x in m(x).sum() }
        adam.update(model: model, gradients: step(model, Tensor.ones([1, 3])).1)
        let good = dir.appendingPathComponent("adam.safetensors").path
        try adam.saveState(to: good)

        // Not a safetensors file.
        let garbage = dir.appendingPathComponent("garbage.safetensors").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: garbage))
        XCTAssertThrowsError(try Adam(learningRate: 0.1).loadState(from: garbage)) {
            XCTAssertTrue($0 is IOError, "\($0)")
        }
        XCTAssertThrowsError(try Adam(learningRate: 0.1).loadState(from: dir.appendingPathComponent("missing").path))
        // Another optimizer's state.
        XCTAssertThrowsError(try SGD(learningRate: 0.1).loadState(from: good)) { error in
            guard case OptimizerError.invalidState(_, let reason)? = error as? OptimizerError else {
                return XCTFail("\(error)")
            }
            XCTAssertTrue(reason.contains("Adam"), reason)
        }
        // A model whose parameters do not match.
        XCTAssertThrowsError(try Adam(learningRate: 0.1).loadState(from: good, for: Linear(4, 2)))
        XCTAssertThrowsError(try Adam(learningRate: 0.1).loadState(from: good, for: Embedding(3, 2)))
        XCTAssertNoThrow(try Adam(learningRate: 0.1).loadState(from: good, for: model))
        // No step.
        let noStep = dir.appendingPathComponent("nostep.safetensors").path
        try Safetensors.save(["weight.m": Tensor.zeros([2, 3])], to: noStep)
        let fresh = Adam(learningRate: 0.1)
        XCTAssertThrowsError(try fresh.loadState(from: noStep))
        XCTAssertEqual(fresh.step, 0)
        XCTAssertTrue(fresh.state.isEmpty)
    }

    func testUpdateSkipsFrozenParametersAndEvalTakesOptimizers() throws {
        let model = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
        try model.freeze(keys: ["layers.0.weight"])
        let frozen = model.parameters().flatDictionary["layers.0.weight"]!.toArray(Float.self)
        let opt = SGD(learningRate: 0.5, momentum: 0.9)
        let step = valueAndGrad(model: model) { m, x, y in mseLoss(m(x), y) }
        let (_, grads) = step(model, Tensor.ones([5, 3]), Tensor.zeros([5, 2]))
        XCTAssertFalse(grads.flatDictionary.keys.contains("layers.0.weight"))
        opt.update(model: model, gradients: grads)
        eval(model, opt)
        XCTAssertTrue(opt.tensors.allSatisfy(\.isEvaluated))
        XCTAssertEqual(opt.tensors.count, 3)
        XCTAssertEqual(model.parameters().flatDictionary["layers.0.weight"]!.toArray(Float.self), frozen)
    }
}
