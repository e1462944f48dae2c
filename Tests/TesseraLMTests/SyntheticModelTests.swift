// The random-weight model behind `tessera selftest --bench`: it builds with
// the real model's shapes and generates exactly the requested token count.

import Tessera
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

    func testOtherModelTypesAreRefused() {
        XCTAssertThrowsError(try SyntheticModel.llama(config: #"{"model_type": "mamba"}"#)) { error in
            XCTAssertEqual("\(error)".contains("mamba"), true, "\(error)")
        }
    }
}
