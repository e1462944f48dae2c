// Language models are TesseraNN module trees: Hugging Face parameter names,
// gradients of a next-token loss for every parameter (checked against
// central finite differences), freezing, and updates that the stacked
// inference products see.

import Foundation
import Tessera
import TesseraNN
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

final class ModuleTreeTests: XCTestCase {
    static func config(tied: Bool) -> String {
        """
        {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 64,
         "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 128, "tie_word_embeddings": \(tied)}
        """
    }

    static func layerNames(_ i: Int, quantized: Bool) -> [String] {
        let projections = [
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
            "mlp.up_proj", "mlp.down_proj"
        ]
        let suffixes = quantized ? [".weight", ".scales", ".biases"] : [".weight"]
        return ["input_layernorm.weight", "post_attention_layernorm.weight"].map { "model.layers.\(i).\($0)" }
            + projections.flatMap { p in suffixes.map { "model.layers.\(i).\(p)\($0)" } }
    }

    func testParameterNamesAreTheHuggingFaceNames() throws {
        let dense = try SyntheticModel.llama(config: Self.config(tied: false), bits: nil, dtype: .float32)
        let expected =
            ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
            + Self.layerNames(0, quantized: false) + Self.layerNames(1, quantized: false)
        XCTAssertEqual(Set(dense.parameters().flatDictionary.keys), Set(expected))
        XCTAssertEqual(dense.parameters().flatDictionary["model.layers.1.self_attn.k_proj.weight"]?.shape, [16, 32])

        // mlx-community's names for a quantized, tied model; quantized layers are frozen.
        let quantized = try SyntheticModel.llama(config: Self.config(tied: true), bits: 4, groupSize: 32)
        let quantizedNames =
            ["model.embed_tokens.weight", "model.embed_tokens.scales", "model.embed_tokens.biases", "model.norm.weight"]
            + Self.layerNames(0, quantized: true) + Self.layerNames(1, quantized: true)
        XCTAssertEqual(Set(quantized.parameters().flatDictionary.keys), Set(quantizedNames))
        let norms: [String] =
            ["model.norm.weight"]
            + (0..<2).flatMap { (i: Int) -> [String] in
                ["input_layernorm.weight", "post_attention_layernorm.weight"].map { "model.layers.\(i).\($0)" }
            }
        XCTAssertEqual(Set(quantized.trainableParameters().flatDictionary.keys), Set(norms))
    }

    /// valueAndGrad(model:) of a next-token cross-entropy: a gradient for
    /// every parameter, each equal to a central difference of the loss along
    /// a random direction (float32, h = 1e-3: within 1% + 5e-4; the
    /// differences converge to the gradients as h shrinks until rounding
    /// takes over, and weights of std 0.3 keep every gradient far from 0).
    func testGradientsOfEveryParameterMatchFiniteDifferences() throws {
        let model = try SyntheticModel.llama(
            config: Self.config(tied: false), bits: nil, dtype: .float32, scale: 0.3, seed: 7)
        try checkGradientsAgainstFiniteDifferences(model)
    }

    /// A 4-bit model (QLoRA's base): the quantized layers are frozen, the
    /// norms get gradients through the quantized products.
    func testGradientsThroughQuantizedLayersMatchFiniteDifferences() throws {
        let model = try SyntheticModel.llama(
            config: Self.config(tied: true), bits: 4, dtype: .float32, scale: 0.3, seed: 8)
        XCTAssertEqual(model.trainableParameters().flattened().count, 5)
        try checkGradientsAgainstFiniteDifferences(model)
    }

    func checkGradientsAgainstFiniteDifferences(
        _ model: TransformerModel, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let ids = (0..<9).map { Int32(($0 * 37 + 5) % 64) }
        let inputs = Tensor(Array(ids.dropLast()), shape: [1, 8]),
            targets = Tensor(Array(ids.dropFirst()), shape: [1, 8])
        func loss(_ m: TransformerModel, _ x: Tensor, _ y: Tensor) -> Tensor { crossEntropy(m(x), y, reduction: .mean) }
        let (value, grads) = valueAndGrad(model: model, loss)(model, inputs, targets)
        let gradients = grads.flatDictionary
        let trainable = model.trainableParameters().flatDictionary
        XCTAssertEqual(Set(gradients.keys), Set(trainable.keys), file: file, line: line)
        XCTAssertEqual(
            value.item(Float.self), loss(model, inputs, targets).item(Float.self), accuracy: 1e-5, file: file,
            line: line)

        let h: Float = 1e-3
        for (n, (key, p)) in trainable.sorted(by: { $0.key < $1.key }).enumerated() {
            guard let g = gradients[key] else { continue }
            XCTAssertEqual(g.shape, p.shape, key, file: file, line: line)
            let direction = Random.normal(p.shape, key: Random.key(UInt64(100 + n)))
            let analytic = (g * direction).sum().item(Float.self)
            func lossMoved(by t: Float) throws -> Float {
                let moved = p + t * direction
                eval(moved)
                try model.update(parameters: [key: moved], strict: false)
                return loss(model, inputs, targets).item(Float.self)
            }
            let numeric = (try lossMoved(by: h) - lossMoved(by: -h)) / (2 * h)
            try model.update(parameters: [key: p], strict: false)
            XCTAssertGreaterThan(
                abs(analytic), 1e-4, "\(key): a gradient that vanishes checks nothing", file: file, line: line)
            XCTAssertEqual(numeric, analytic, accuracy: 0.01 * abs(analytic) + 5e-4, key, file: file, line: line)
        }
    }

    /// `parameters()` saved as safetensors (the q/k/v and gate/up weights are
    /// views of their stacked tensors) load strictly into another model, which
    /// then computes the same logits.
    func testParametersRoundTripThroughSafetensors() throws {
        let source = try SyntheticModel.llama(config: Self.config(tied: true), bits: 4, seed: 3)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-lm-\(UUID().uuidString).safetensors"
        ).path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.save(source.parameters().flatDictionary, to: path)
        let target = try SyntheticModel.llama(config: Self.config(tied: true), bits: 4, seed: 4)
        try target.update(parameters: Safetensors.load(path).tensors)
        let tokens = Tensor([3, 1, 4, 1, 5] as [Int32], shape: [1, 5])
        XCTAssertEqual(target(tokens).toArray(Float.self), source(tokens).toArray(Float.self))
    }

    /// `quantize(model:)` swaps the layers for their quantized forms under the
    /// same names (mlx-community's .scales/.biases), and the model computes
    /// what a model loaded from those tensors computes.
    func testQuantizeModelGivesTheQuantizedCheckpointsModel() throws {
        let model = try SyntheticModel.llama(config: Self.config(tied: false), bits: nil, dtype: .float32, seed: 5)
        try quantize(model: model, groupSize: 32, bits: 4)
        let names =
            ["model.embed_tokens", "lm_head"]
            + Self.layerNames(0, quantized: false).filter { $0.contains("proj") }
            .map { String($0.dropLast(".weight".count)) }
        for name in names {
            for suffix in [".weight", ".scales", ".biases"] {
                XCTAssertNotNil(model.parameters().flatDictionary[name + suffix], name + suffix)
            }
        }
        let loaded = try SyntheticModel.llama(config: Self.config(tied: false), bits: 4, seed: 6)
        try loaded.update(parameters: model.parameters())
        let tokens = Tensor([2, 7, 1, 8] as [Int32], shape: [1, 4])
        XCTAssertEqual(
            model(tokens, cache: model.makeCache()).toArray(Float.self),
            loaded(tokens, cache: loaded.makeCache()).toArray(Float.self))
    }

    /// A layer swapped by `update(modules:)` for a subclass (as adapters are)
    /// runs as that subclass even when it holds the same weight tensor.
    func testSwappedLayersLeaveTheStackedProduct() throws {
        final class Doubled: Linear {
            override func callAsFunction(_ x: Tensor) -> Tensor { super.callAsFunction(x) * 2 }
        }
        let model = try SyntheticModel.llama(
            config: Self.config(tied: true), bits: nil, dtype: .float32, scale: 0.3, seed: 9)
        let reference = try SyntheticModel.llama(config: Self.config(tied: true), bits: nil, dtype: .float32, seed: 10)
        try reference.update(parameters: model.parameters())
        let tokens = Tensor([4, 8, 15, 16] as [Int32], shape: [1, 4])
        let before = model(tokens, cache: model.makeCache()).toArray(Float.self)
        // One of a stacked group, and a layer of its own.
        for layer in ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"] {
            guard let w = model.parameters().flatDictionary[layer + ".weight"] else { return XCTFail("no \(layer)") }
            try model.update(modules: [layer: Doubled(weight: w)])
            try reference.update(parameters: [layer + ".weight": w * 2], strict: false)
        }
        let swapped = model(tokens, cache: model.makeCache()).toArray(Float.self)
        XCTAssertNotEqual(swapped, before)
        for (x, y) in zip(swapped, reference(tokens, cache: reference.makeCache()).toArray(Float.self)) {
            XCTAssertEqual(x, y, accuracy: 1e-5 + 1e-5 * abs(y))
        }
    }

    /// Frozen parameters get no gradient.
    func testFrozenParametersAreLeftOut() throws {
        let model = try SyntheticModel.llama(config: Self.config(tied: false), bits: nil, dtype: .float32)
        try model.freeze()
        try model.unfreeze(keys: ["lm_head.weight", "model.layers.1.mlp.down_proj.weight"], strict: true)
        let tokens = Tensor([1, 2, 3, 4] as [Int32], shape: [1, 4])
        let targets = Tensor([2, 3, 4, 5] as [Int32], shape: [1, 4])
        let step = valueAndGrad(model: model) { (m: TransformerModel, x: Tensor, y: Tensor) in
            crossEntropy(m(x), y, reduction: .mean)
        }
        let (_, grads) = step(model, tokens, targets)
        XCTAssertEqual(Set(grads.flatDictionary.keys), ["lm_head.weight", "model.layers.1.mlp.down_proj.weight"])
    }

    /// Decoding after `update(parameters:)` uses the new weights: the stacked
    /// q/k/v and gate/up products are rebuilt, so a model given another's
    /// parameters decodes exactly as that model (4-bit and float16).
    func testUpdatedParametersReachTheStackedProducts() throws {
        for bits in [4, nil] as [Int?] {
            let a = try SyntheticModel.llama(config: Self.config(tied: true), bits: bits, seed: 1)
            let b = try SyntheticModel.llama(config: Self.config(tied: true), bits: bits, seed: 2)
            let tokens = Tensor([5, 9, 11] as [Int32], shape: [1, 3])
            func decode(_ m: TransformerModel) -> [Float] {
                let cache = m.makeCache()
                let first = m(tokens, cache: cache)
                let next = m(Tensor([7] as [Int32], shape: [1, 1]), cache: cache)
                return first.toArray(Float.self) + next.toArray(Float.self)
            }
            let before = decode(a)
            XCTAssertNotEqual(before, decode(b))
            try a.update(parameters: b.parameters())
            XCTAssertEqual(decode(a), decode(b), "bits \(String(describing: bits))")
            // Without a cache: the logits of the prompt step.
            for (x, y) in zip(a(tokens).toArray(Float.self), decode(b).prefix(3 * 64)) {
                XCTAssertEqual(x, y, accuracy: 1e-5 + 1e-5 * abs(y))
            }
        }
    }
}
