// Adapters on a language model: which layers mlx-lm's defaults pick, logits
// unchanged at initialisation, only adapter parameters trainable, and an
// adapter folder (adapters.safetensors + adapter_config.json, mlx-lm's key
// names) that loads back onto a fresh model with the same outputs.

import Foundation
import Tessera
import TesseraNN
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

final class AdapterTests: XCTestCase {
    func model(bits: Int? = nil) throws -> TransformerModel {
        try SyntheticModel.llama(
            config: ModuleTreeTests.config(tied: false), bits: bits, dtype: .float32, scale: 0.3, seed: 11)
    }

    let tokens = Tensor((0..<8).map { Int32(($0 * 13 + 3) % 64) }, shape: [1, 8])

    func testDefaultKeysAreTheProjectionsOfTheLastLayers() throws {
        let m = try model()
        let before = m(tokens)
        let replaced = try Adapters.apply(to: m, AdapterConfig(numLayers: 1, parameters: LoRAParameters(rank: 4)))
        let projections = [
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
            "mlp.up_proj", "mlp.down_proj"
        ]
        XCTAssertEqual(replaced, projections.map { "model.layers.1.\($0)" }.sorted())
        let trainable = Set(m.trainableParameters().flatDictionary.keys)
        XCTAssertEqual(
            trainable, Set(projections.flatMap { ["model.layers.1.\($0).lora_a", "model.layers.1.\($0).lora_b"] }))
        XCTAssertNotNil(m.parameters().flatDictionary["model.layers.1.self_attn.q_proj.linear.weight"])
        XCTAssertEqual(abs(m(tokens) - before).max().item(Float.self), 0)
    }

    func testFullFineTuningUnfreezesTheLastBlocks() throws {
        let m = try model()
        try Adapters.apply(to: m, AdapterConfig(fineTuneType: .full, numLayers: 1))
        let trainable = m.trainableParameters().flatDictionary.keys
        XCTAssertEqual(trainable.count, 9)
        XCTAssertTrue(trainable.allSatisfy { $0.hasPrefix("model.layers.1.") })
    }

    func testQLoRAOnA4BitModelGetsGradientsOnlyForTheAdapters() throws {
        let m = try model(bits: 4)
        try Adapters.apply(
            to: m,
            AdapterConfig(
                numLayers: 2, parameters: LoRAParameters(rank: 2), keys: ["self_attn.q_proj", "self_attn.v_proj"]))
        // A nonzero B, so that A gets a gradient too.
        for case let lora as LoRALinear in m.namedModules().map(\.module) {
            lora.loraB = Random.normal(lora.loraB.shape, key: Random.key(9))
        }
        let inputs = tokens[0..., 0..<7], targets = tokens[0..., 1..<8]
        let (_, grads) = valueAndGrad(model: m) { (m: TransformerModel, x: Tensor, y: Tensor) in
            crossEntropy(m(x), y, reduction: .mean)
        }(m, inputs, targets)
        let g = grads.flatDictionary
        XCTAssertEqual(g.count, 8)
        XCTAssertTrue(g.keys.allSatisfy { $0.hasSuffix("lora_a") || $0.hasSuffix("lora_b") })
        XCTAssertTrue(g.values.allSatisfy { abs($0).max().item(Float.self) > 0 })
    }

    func testSaveAndLoadRoundTrip() throws {
        for type in [FineTuneType.lora, .dora] {
            let m = try model()
            let config = AdapterConfig(fineTuneType: type, numLayers: 2, parameters: LoRAParameters(rank: 3, scale: 10))
            try Adapters.apply(to: m, config)
            // Train-like change: every adapter parameter moved.
            let moved = m.trainableParameters().flatDictionary.mapValues {
                $0 + Random.normal($0.shape, scale: 0.05, key: Random.key(4))
            }
            try m.update(parameters: moved, strict: false)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-adapter-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: folder) }
            try Adapters.save(m, config, to: folder)

            let saved = try Safetensors.load(folder + "/adapters.safetensors").tensors
            XCTAssertEqual(Set(saved.keys), Set(moved.keys))
            XCTAssertNotNil(saved["model.layers.0.self_attn.q_proj.lora_a"])
            if type == .dora { XCTAssertNotNil(saved["model.layers.1.mlp.down_proj.m"]) }
            let json = try JSONValue(
                parsing: String(
                    decoding: FileManager.default.contents(atPath: folder + "/adapter_config.json") ?? Data(),
                    as: UTF8.self))
            XCTAssertEqual(json["fine_tune_type"]?.string, type.rawValue)
            XCTAssertEqual(json["num_layers"]?.int, 2)
            XCTAssertEqual(json["lora_parameters"]?["rank"]?.int, 3)
            XCTAssertEqual(json["lora_parameters"]?["scale"]?.double, 10)

            let fresh = try model()
            let read = try Adapters.load(folder, into: fresh)
            XCTAssertEqual(read.fineTuneType, type)
            XCTAssertEqual(read.parameters, config.parameters)
            XCTAssertLessThan(abs(fresh(tokens) - m(tokens)).max().item(Float.self), 1e-5)
            XCTAssertGreaterThan(abs(fresh(tokens) - (try model())(tokens)).max().item(Float.self), 1e-4)
        }
    }

    func testBadAdapterFoldersThrow() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-bad-adapter-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        XCTAssertThrowsError(try Adapters.load(folder, into: try model()))
        for text in [
            "[1]", #"{"fine_tune_type": "qlora"}"#, #"{"num_layers": 2, "lora_parameters": {"rank": -1}}"#, "{"
        ] {
            _ = FileManager.default.createFile(atPath: folder + "/adapter_config.json", contents: Data(text.utf8))
            XCTAssertThrowsError(try Adapters.load(folder, into: try model()), text)
        }
    }
}
