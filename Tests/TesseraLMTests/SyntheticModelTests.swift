// The random-weight model behind `tessera selftest --bench` (TesseraLMSelfTest):
// it builds with the real model's shapes and generates exactly the requested
// token count; and the public constructor it builds on (config.json text and
// tensors in memory), which gives the model its tensors make and refuses what
// does not fit with a typed error.

import Tessera
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

final class SyntheticModelTests: XCTestCase {
    func testSmolLM2ConfigHasTheDefaultModelsShapes() throws {
        let json = try JSONValue(parsing: SyntheticModel.smolLM2Config())
        let c = try ModelRegistry.architecture("llama").configuration(ConfigReader(json: json))
        XCTAssertEqual(
            [c.hiddenSize, c.layerCount, c.intermediateSize, c.headCount, c.kvHeadCount, c.headDim, c.vocabularySize],
            [576, 30, 1536, 9, 3, 64, 49152])
        XCTAssertTrue(c.tiedEmbeddings)
    }

    func testRandomModelGeneratesTheRequestedTokens() throws {
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 300,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 256, "tie_word_embeddings": true}
            """
        let model = try SyntheticModel.llama(config: config, bits: 4, groupSize: 32)
        XCTAssertEqual(model.vocabularySize, 300)
        let stats = try SyntheticModel.measureSpeed(model, promptTokens: 5, generate: 3)
        XCTAssertEqual(stats.promptTokens, 5)
        XCTAssertEqual(stats.generatedTokens, 3)
        XCTAssertGreaterThan(stats.tokensPerSecond, 0)
    }

    static let tinyConfig = """
        {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 64,
         "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 128, "tie_word_embeddings": true
        """

    /// A model's own tensors through `TransformerModel(config:tensors:)` give
    /// a model with the same logits, bit for bit (dense float32, and 4-bit
    /// with the config's `quantization` entry), and the closure sees the
    /// configuration the text describes.
    func testPublicConstructorRebuildsAModelFromItsTensors() throws {
        let tokens = Tensor([Int32(3), 17, 42, 5, 60], shape: [1, 5])
        for bits in [nil, 4] as [Int?] {
            let source = try SyntheticModel.llama(
                config: Self.tinyConfig + "}", bits: bits, groupSize: 32, dtype: .float32, seed: 11)
            let tensors = source.parameters().flatDictionary
            let config =
                Self.tinyConfig + (bits == nil ? "}" : #", "quantization": {"group_size": 32, "bits": 4}}"#)
            var seen: TransformerConfiguration?
            let rebuilt = try TransformerModel(config: config) { c in
                seen = c
                return tensors
            }
            XCTAssertEqual(seen?.hiddenSize, 32)
            XCTAssertEqual(seen?.layerCount, 2)
            XCTAssertEqual(seen?.kvHeadCount, 2)
            let want = source(tokens).toArray(Float.self), got = rebuilt(tokens).toArray(Float.self)
            XCTAssertEqual(got.count, 5 * 64)
            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "bits \(String(describing: bits))")
        }
    }

    /// Text that is not JSON, a config with no known model type, a missing
    /// tensor and a tensor of the wrong shape: each a typed ModelError.
    func testPublicConstructorRefusesWhatDoesNotFit() throws {
        let tensors = try SyntheticModel.llama(config: Self.tinyConfig + "}", bits: nil, dtype: .float32)
            .parameters().flatDictionary
        func error(_ config: String, _ change: (inout [String: Tensor]) -> Void = { _ in }) -> ModelError? {
            var t = tensors
            change(&t)
            do {
                _ = try TransformerModel(config: config) { _ in t }
                return nil
            } catch { return error as? ModelError }
        }
        guard case .invalidConfiguration = error("{\"model_type\": ") else {
            return XCTFail("not JSON: \(String(describing: error("{\"model_type\": ")))")
        }
        XCTAssertEqual(error(#"{"model_type": "mamba"}"#), .unknownModelType("mamba"))
        XCTAssertEqual(
            error(Self.tinyConfig + "}") { $0["model.norm.weight"] = nil }, .missingTensor("model.norm.weight"))
        XCTAssertEqual(
            error(Self.tinyConfig + "}") { $0["model.norm.weight"] = Tensor.ones([31]) },
            .tensorShape(name: "model.norm.weight", expected: [32], got: [31]))
    }

    func testOtherModelTypesAreRefused() {
        XCTAssertThrowsError(try SyntheticModel.llama(config: #"{"model_type": "mamba"}"#)) { error in
            XCTAssertEqual("\(error)".contains("mamba"), true, "\(error)")
        }
    }
}
