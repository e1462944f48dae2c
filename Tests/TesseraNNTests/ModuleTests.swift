// Module trees: parameter keys, update, freeze/unfreeze, train mode and valueAndGrad.

import Tessera
import XCTest

@testable import TesseraNN

final class Block: Module {
    @ModuleInfo var attention: MultiHeadAttention
    @ModuleInfo var norm: RMSNorm
    @ParameterInfo var scale: Tensor

    override init() {
        attention = MultiHeadAttention(dimensions: 8, heads: 2, bias: true)
        norm = RMSNorm(dimensions: 8)
        scale = Tensor.ones([8])
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let y = norm(x)
        return x + attention(y, keys: y, values: y) * scale
    }
}

final class Tower: Module {
    @ModuleInfo var layers: [Block]
    @ModuleInfo(key: "lm_head") var head: Linear
    @ModuleInfo var extra: Linear?
    var notAParameter = Tensor.zeros([3])

    override init() {
        layers = [Block(), Block()]
        super.init()
        head = Linear(8, 4, bias: false)
        extra = nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor { head(layers.reduce(x) { $1($0) }) }
}

final class ModuleTests: XCTestCase {
    func testParameterTreeKeys() {
        let keys = Tower().parameters().flattened().map(\.key)
        XCTAssertEqual(keys.count, 2 * 10 + 1)
        XCTAssertEqual(keys.first, "layers.0.attention.key_proj.bias")
        XCTAssertTrue(keys.contains("layers.1.attention.query_proj.weight"))
        XCTAssertTrue(keys.contains("layers.0.norm.weight"))
        XCTAssertTrue(keys.contains("layers.1.scale"))
        XCTAssertTrue(keys.contains("lm_head.weight"))
        XCTAssertFalse(keys.contains { $0.contains("notAParameter") || $0.contains("extra") })
        XCTAssertEqual(keys, keys.sorted { a, b in a < b })
    }

    func testNestedTreeRoundTrip() {
        let p = Tower().parameters()
        guard case .array(let layers)? = p["layers"], layers.count == 2 else {
            return XCTFail("layers is not an array")
        }
        let rebuilt = ModuleParameters(flattened: p.flattened())
        XCTAssertEqual(rebuilt.flattened().map(\.key), p.flattened().map(\.key))
        guard case .array? = rebuilt["layers"] else { return XCTFail("numbered keys should become an array") }
    }

    /// Every write to a parameter or submodule advances `Module.generation`; reads do not.
    func testGenerationAdvancesOnWrites() throws {
        let block = Block()
        var last = Module.generation
        func advanced() -> Bool {
            defer { last = Module.generation }
            return Module.generation != last
        }
        _ = block.parameters()
        _ = block.norm(Tensor.ones([1, 8]))
        XCTAssertFalse(advanced())
        block.scale = Tensor.zeros([8])
        XCTAssertTrue(advanced())
        try block.update(parameters: ["norm.weight": Tensor.ones([8])], strict: false)
        XCTAssertTrue(advanced())
        try block.update(modules: ["norm": RMSNorm(dimensions: 8)])
        XCTAssertTrue(advanced())
    }

    func testUpdateReplacesParameters() throws {
        let t = Tower()
        var flat = t.parameters().flatDictionary
        flat["lm_head.weight"] = Tensor.ones([4, 8])
        try t.update(parameters: flat)
        XCTAssertEqual(t.head.weight.toArray(Float.self), [Float](repeating: 1, count: 32))
    }

    func testStrictUpdateNamesEveryBadKey() {
        let t = Tower()
        var flat = t.parameters().flatDictionary
        flat["layers.0.scale"] = nil
        flat["layers.7.scale"] = Tensor.ones([8])
        flat["lm_head.weight"] = Tensor.ones([4, 9])
        let before = t.layers[1].scale
        XCTAssertThrowsError(try t.update(parameters: flat)) { error in
            guard case let ModuleError.parameterMismatch(missing, unexpected, shapes) = error else {
                return XCTFail("wrong error \(error)")
            }
            XCTAssertEqual(missing, ["layers.0.scale"])
            XCTAssertEqual(unexpected, ["layers.7.scale"])
            XCTAssertEqual(shapes, ["lm_head.weight: expected [4, 8], got [4, 9]"])
            XCTAssertTrue("\(error)".contains("missing keys: layers.0.scale"))
        }
        XCTAssertEqual(t.layers[1].scale.shape, before.shape)
        // Non-strict: a subset is fine, shapes are still checked.
        XCTAssertNoThrow(try t.update(parameters: ["layers.0.scale": Tensor.zeros([8])], strict: false))
        XCTAssertEqual(t.layers[0].scale.toArray(Float.self), [Float](repeating: 0, count: 8))
        XCTAssertThrowsError(try t.update(parameters: ["layers.0.scale": Tensor.zeros([2])], strict: false))
    }

    func testFreezeAndUnfreeze() throws {
        let t = Tower()
        let all = t.parameters().flattened().count
        try t.freeze(keys: ["bias"])
        XCTAssertEqual(t.trainableParameters().flattened().count, all - 8)
        try t.freeze(keys: ["layers.0.scale"])
        XCTAssertFalse(t.trainableParameters().flatDictionary.keys.contains("layers.0.scale"))
        XCTAssertTrue(t.trainableParameters().flatDictionary.keys.contains("layers.1.scale"))
        try t.unfreeze()
        XCTAssertEqual(t.trainableParameters().flattened().count, all)
        try t.layers[1].freeze()
        XCTAssertEqual(t.trainableParameters().flattened().count, all - 10)
        XCTAssertThrowsError(try t.freeze(keys: ["nope"], strict: true)) { error in
            XCTAssertEqual(error as? ModuleError, .unknownKeys(["nope"]))
        }
        let bn = BatchNorm(featureCount: 3)
        XCTAssertEqual(bn.trainableParameters().flattened().map(\.key), ["bias", "weight"])
        try bn.unfreeze()
        XCTAssertEqual(bn.trainableParameters().flattened().map(\.key), ["bias", "weight"])
        XCTAssertEqual(bn.parameters().flattened().map(\.key), ["bias", "running_mean", "running_var", "weight"])
    }

    func testTrainModeReachesSubmodules() {
        let l = TransformerEncoderLayer(dimensions: 8, heads: 2, dropout: 0.5)
        XCTAssertTrue(l.dropout1.training)
        l.train(false)
        XCTAssertFalse(l.dropout1.training || l.attention.queryProjection.training)
        let x = Tensor.ones([2, 3, 8])
        XCTAssertEqual(l.dropout1(x).toArray(Float.self), x.toArray(Float.self))
        l.train()
        let dropped = l.dropout1(Tensor.ones([1000])).toArray(Float.self)
        XCTAssertTrue(dropped.allSatisfy { $0 == 0 || $0 == 2 })
        XCTAssertEqual(Double(dropped.filter { $0 == 0 }.count), 500, accuracy: 80)
    }

    func testValueAndGradReturnsTrainableTree() throws {
        let t = Tower()
        try t.layers[0].freeze()
        let x = Tensor((0..<48).map { Float($0) / 48 }, shape: [2, 3, 8])
        let originals = t.parameters().flatDictionary
        let step = valueAndGrad(model: t) { m, x in square(m(x)).sum() }
        let (loss, grads) = step(t, x)
        XCTAssertEqual(grads.flattened().map(\.key), t.trainableParameters().flattened().map(\.key))
        for (key, g) in grads.flattened() { XCTAssertEqual(g.shape, originals[key]!.shape, key) }
        // The model holds its original parameters again, and the loss matches a plain call.
        for (key, p) in t.parameters().flattened() {
            XCTAssertEqual(p.toArray(Float.self), originals[key]!.toArray(Float.self), key)
        }
        XCTAssertEqual(loss.item(Float.self), square(t(x)).sum().item(Float.self), accuracy: 1e-3)
        // Finite difference on one coordinate of the head.
        let eps: Float = 1e-2
        var w = t.head.weight.toArray(Float.self)
        w[5] += eps
        let plus = Tower.loss(t, x, head: w)
        w[5] -= 2 * eps
        let minus = Tower.loss(t, x, head: w)
        let g = grads.flatDictionary["lm_head.weight"]!.toArray(Float.self)[5]
        XCTAssertEqual(g, (plus - minus) / (2 * eps), accuracy: 2e-2 * Swift.max(1, abs(g)))
    }

    func testUpdateModulesSwapsLayers() throws {
        let s = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
        XCTAssertEqual(
            s.parameters().flattened().map(\.key),
            ["layers.0.bias", "layers.0.weight", "layers.2.bias", "layers.2.weight"])
        try s.update(modules: ["layers.2": Linear(8, 3, bias: false)])
        XCTAssertEqual(s(Tensor.ones([1, 4])).shape, [1, 3])
        let t = Tower()
        try t.update(modules: ["lm_head": Linear(8, 5)])
        XCTAssertEqual(t.head.weight.shape, [5, 8])
        XCTAssertThrowsError(try t.update(modules: ["lm_head": ReLU()]))
        XCTAssertThrowsError(try t.update(modules: ["layers.0": Linear(1, 1)]))
        XCTAssertEqual(t.namedModules().map(\.key).prefix(3), ["", "layers.0", "layers.0.attention"])
    }

    func testEvalAcceptsModulesAndTrees() {
        let l = Linear(3, 2)
        let shifted = l.parameters().mapValues { $0 + 1 }
        try? l.update(parameters: shifted)
        XCTAssertFalse(l.weight.isEvaluated)
        eval(l, shifted)
        XCTAssertTrue(l.weight.isEvaluated)
    }

    func testBatchNormEvalUsesRunningStatistics() {
        let bn = BatchNorm(featureCount: 2)
        let x = Tensor([1, 10, 3, 20, 5, 30] as [Float], shape: [3, 2])
        _ = bn(x)
        XCTAssertEqual(bn.runningMean!.toArray(Float.self)[0], 0.3, accuracy: 1e-6)
        bn.train(false)
        let y = bn(x).toArray(Float.self)
        let rm = bn.runningMean!.toArray(Float.self), rv = bn.runningVar!.toArray(Float.self)
        XCTAssertEqual(y[0], (1 - rm[0]) / (rv[0] + 1e-5).squareRoot(), accuracy: 1e-5)
    }

    func testInitializers() {
        Random.seed(3)
        let w = Init.glorotUniform([64, 32]).toArray(Float.self)
        let limit = Float((6.0 / 96).squareRoot())
        XCTAssertTrue(w.allSatisfy { abs($0) <= limit })
        let n = Init.heNormal([256, 128]).toArray(Float.self)
        let std = (n.map { $0 * $0 }.reduce(0, +) / Float(n.count)).squareRoot()
        XCTAssertEqual(std, 1 / Float(128).squareRoot(), accuracy: 0.01)
        XCTAssertEqual(Init.fans([8, 3, 3, 4]).fanIn, 36)
        XCTAssertEqual(Init.fans([8, 3, 3, 4]).fanOut, 72)
        let l = Linear(16, 4).weight.toArray(Float.self)
        XCTAssertTrue(l.allSatisfy { abs($0) <= 0.25 })
    }
}

extension Tower {
    static func loss(_ t: Tower, _ x: Tensor, head: [Float]) -> Float {
        let saved = t.head.weight
        t.head.weight = Tensor(head, shape: saved.shape)
        defer { t.head.weight = saved }
        return square(t(x)).sum().item(Float.self)
    }
}

final class TransformerStackTests: XCTestCase {
    /// The stacks compose the layers checked against torch; here: keys, shapes
    /// and that the stack equals its layers applied in turn.
    func testTransformerKeysAndComposition() {
        Random.seed(11)
        let t = Transformer(dimensions: 8, heads: 2, encoderLayers: 2, decoderLayers: 1, mlpDimensions: 16)
        let keys = t.parameters().flattened().map(\.key)
        XCTAssertTrue(keys.contains("encoder.layers.1.attention.out_proj.weight"))
        XCTAssertTrue(keys.contains("decoder.layers.0.cross_attention.key_proj.weight"))
        XCTAssertTrue(keys.contains("decoder.ln.bias"))
        let src = Random.normal([2, 5, 8]), tgt = Random.normal([2, 3, 8])
        let mask = MultiHeadAttention.createAdditiveCausalMask(3)
        let y = t(source: src, target: tgt, sourceMask: nil, targetMask: mask, memoryMask: nil)
        XCTAssertEqual(y.shape, [2, 3, 8])
        var memory = src
        for l in t.encoder.layers { memory = l(memory, mask: nil) }
        memory = t.encoder.ln(memory)
        let expected = t.decoder.ln(t.decoder.layers[0](tgt, memory: memory, mask: mask, memoryMask: nil))
        XCTAssertEqual(y.toArray(Float.self), expected.toArray(Float.self))
    }
}

final class TrainingModeTests: XCTestCase {
    /// BatchNorm inside valueAndGrad(model:): running statistics move, they get
    /// no gradient, and the model evaluates afterwards without traced nodes.
    func testBatchNormUnderValueAndGrad() {
        Random.seed(12)
        let model = Sequential(Linear(3, 4), BatchNorm(featureCount: 4), ReLU(), Linear(4, 1))
        let bn = model.layers[1] as! BatchNorm
        let x = Random.normal([16, 3]), y = Random.normal([16, 1])
        let step = valueAndGrad(model: model) { m, x, y in mseLoss(m(x), y) }
        let (loss, grads) = step(model, x, y)
        XCTAssertFalse(grads.flatDictionary.keys.contains { $0.contains("running") })
        XCTAssertTrue(grads.flatDictionary.keys.contains("layers.1.weight"))
        eval(model, grads, loss)
        let mean = bn.runningMean!.toArray(Float.self)
        XCTAssertTrue(mean.contains { $0 != 0 })
        // The running mean is 0.1 of the batch mean of the first layer's output.
        let h = (model.layers[0] as! Linear)(x).mean(axis: 0).toArray(Float.self)
        for i in 0..<4 { XCTAssertEqual(mean[i], 0.1 * h[i], accuracy: 1e-5) }
        model.train(false)
        XCTAssertEqual(model(x).shape, [16, 1])
    }

    func testDropout2dZeroesWholeChannels() {
        Random.seed(13)
        let d = Dropout2d(p: 0.5)
        let y = d(Tensor.ones([2, 4, 4, 64])).toArray(Float.self)
        // Each (sample, channel) is all zeros or all 2s.
        for n in 0..<2 {
            for c in 0..<64 {
                let values = Set((0..<16).map { y[n * 16 * 64 + $0 * 64 + c] })
                XCTAssertTrue(values == [0] || values == [2], "\(values)")
            }
        }
        d.train(false)
        XCTAssertEqual(d(Tensor.ones([1, 2, 2, 3])).toArray(Float.self), [Float](repeating: 1, count: 12))
    }
}

final class ModuleCompileTests: XCTestCase {
    /// A compiled SGD step with the model as state matches the plain step.
    func testCompiledStepUpdatesModuleState() {
        let a = Linear(3, 2), b = Linear(3, 2)
        b.innerState = a.innerState
        let x = Tensor([1, 2, 3, -1, 0, 2] as [Float], shape: [2, 3])
        func step(_ model: Linear) -> Tensor {
            let (loss, grads) = valueAndGrad(model: model) { m, x in (m(x) * m(x)).sum() }(model, x)
            try! model.update(
                parameters: ModuleParameters(
                    flattened: model.parameters().flattened().map {
                        (key: $0.key, value: $0.value - 0.1 * grads.flatDictionary[$0.key]!)
                    }))
            return loss
        }
        let compiled = compile(inputs: [b], outputs: [b]) { _ in [step(b)] }
        for _ in 0..<3 {
            let l1 = step(a).item(Float.self), l2 = compiled([])[0].item(Float.self)
            XCTAssertEqual(l1, l2, accuracy: 1e-4)
        }
        for (p, q) in zip(a.innerState, b.innerState) {
            for (u, v) in zip(p.toArray(Float.self), q.toArray(Float.self)) { XCTAssertEqual(u, v, accuracy: 1e-5) }
        }
    }
}
