// `quantizedKVStart`: caches stay full precision until they hold more than
// that many positions, then switch to quantized storage (mlx-lm's
// quantized_kv_start), so short generations keep full quality.

import Tessera
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

final class QuantizedKVStartTests: XCTestCase {
    /// A small random model whose head size (32) takes a group size of 32.
    private func model() throws -> any LanguageModel {
        let config = """
            {"model_type": "llama", "hidden_size": 128, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 300,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 128, "tie_word_embeddings": true}
            """
        return try SyntheticModel.llama(config: config, bits: 4, groupSize: 32)
    }

    private func run(_ model: any LanguageModel, bits: Int?, start: Int, pipelined: Bool = false)
        throws -> (tokens: [Int], afterPrefill: KVQuantization?, cache: [KVCache])
    {
        var p = GenerateParameters()
        p.sampling = .greedy
        p.pipelined = pipelined
        p.maxTokens = 12
        p.kvQuantization = try bits.map { try KVQuantization(bits: $0, groupSize: 32) }
        p.quantizedKVStart = start
        var generator = try TokenGenerator(model: model, prompt: [5, 17, 42, 7, 3, 9], parameters: p)
        let afterPrefill = generator.cache.first?.quantization
        var tokens: [Int] = []
        while let t = try generator.next() { tokens.append(t) }
        return (tokens, afterPrefill, generator.cache)
    }

    func testBelowTheStartTheCacheStaysFullPrecision() throws {
        let m = try model()
        let full = try run(m, bits: nil, start: 0)
        let late = try run(m, bits: 4, start: 1000)
        XCTAssertEqual(late.tokens, full.tokens)
        XCTAssertNil(late.cache.first?.quantization)
    }

    func testPastTheStartTheCacheSwitchesToQuantized() throws {
        let m = try model()
        let q = try KVQuantization(bits: 4, groupSize: 32)
        let full = try run(m, bits: nil, start: 0)
        let switched = try run(m, bits: 4, start: 8)
        XCTAssertNil(switched.afterPrefill)
        for cache in switched.cache {
            XCTAssertEqual(cache.quantization, q)
            XCTAssertEqual(cache.state.count, 6)  // keys, values: weights, scales, biases
            XCTAssertEqual(cache.offset, 6 + 11)
        }
        // Tokens sampled before the switch are the full-precision ones.
        XCTAssertEqual(Array(switched.tokens.prefix(3)), Array(full.tokens.prefix(3)))
        // From the start: quantized after the prefill already.
        XCTAssertEqual(try run(m, bits: 4, start: 0).afterPrefill, q)
        XCTAssertEqual(try run(m, bits: 4, start: 3).afterPrefill, q)
    }

    func testPipelinedDecodingSwitchesAtTheSameStep() throws {
        let m = try model()
        let piped = try run(m, bits: 8, start: 8, pipelined: true)
        let plain = try run(m, bits: 8, start: 8, pipelined: false)
        XCTAssertEqual(piped.tokens, plain.tokens)
        XCTAssertEqual(piped.cache.first?.quantization, plain.cache.first?.quantization)
    }
}
