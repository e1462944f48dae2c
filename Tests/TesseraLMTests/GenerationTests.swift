// Pipelined greedy decoding (the next step queued before the token is read)
// against the step-by-step path, on a small random model.

import Tessera
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

final class GenerationTests: XCTestCase {
    private func model() throws -> any LanguageModel {
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 300,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 64, "tie_word_embeddings": true}
            """
        return try SyntheticModel.llama(config: config, bits: 4, groupSize: 32)
    }

    /// Greedy tokens and the final caches, pipelined or step by step.
    private func run(_ model: any LanguageModel, prompt: [Int], maxTokens: Int, stop: Set<Int> = [], pipelined: Bool)
        throws -> (tokens: [Int], cache: [KVCache])
    {
        var p = GenerateParameters()
        p.sampling = .greedy
        p.pipelined = pipelined
        p.maxTokens = maxTokens
        p.stopTokens = stop
        var generator = try TokenGenerator(model: model, prompt: prompt, parameters: p)
        var tokens: [Int] = []
        while let t = try generator.next() { tokens.append(t) }
        return (tokens, generator.cache)
    }

    /// Evaluation failing mid-generation (memory past the limit) is a typed
    /// error from `next()`, pipelined or not, never a trap.
    func testOutOfMemoryDuringDecodeThrows() throws {
        let m = try model()
        for pipelined in [true, false] {
            var p = GenerateParameters()
            p.sampling = .greedy
            p.pipelined = pipelined
            p.maxTokens = 8
            var generator = try TokenGenerator(model: m, prompt: [1, 2, 3], parameters: p)
            Memory.clearCache()
            let previous = Memory.setMemoryLimit(Memory.activeBytes)
            defer { _ = Memory.setMemoryLimit(previous) }
            XCTAssertThrowsError(try { while try generator.next() != nil {} }()) { error in
                guard case TesseraError.outOfMemory = error else { return XCTFail("pipelined \(pipelined): \(error)") }
            }
        }
    }

    private func assertSameCaches(_ a: [KVCache], _ b: [KVCache], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.map(\.offset), b.map(\.offset), file: file, line: line)
        for (x, y) in zip(a, b) {
            for (s, t) in zip(x.state, y.state) {
                XCTAssertEqual(s.shape, t.shape, file: file, line: line)
                XCTAssertEqual(s.toArray(Float.self), t.toArray(Float.self), file: file, line: line)
            }
        }
    }

    func testPipelinedGreedyMatchesStepByStep() throws {
        let m = try model()
        let prompt = [5, 17, 42, 7]
        let piped = try run(m, prompt: prompt, maxTokens: 12, pipelined: true)
        let plain = try run(m, prompt: prompt, maxTokens: 12, pipelined: false)
        XCTAssertEqual(piped.tokens.count, 12)
        XCTAssertEqual(piped.tokens, plain.tokens)
        // The last token gets no forward pass: prompt + 11 positions.
        XCTAssertEqual(piped.cache.first?.offset, prompt.count + 11)
        assertSameCaches(piped.cache, plain.cache)
    }

    func testAStopTokenTakesBackTheStepComputedPastIt() throws {
        let m = try model()
        let prompt = [3, 1, 4, 1, 5]
        let free = try run(m, prompt: prompt, maxTokens: 10, pipelined: false).tokens
        let stop = free[3]
        let at = free.firstIndex(of: stop)!
        let piped = try run(m, prompt: prompt, maxTokens: 10, stop: [stop], pipelined: true)
        let plain = try run(m, prompt: prompt, maxTokens: 10, stop: [stop], pipelined: false)
        XCTAssertEqual(piped.tokens, Array(free[...at]))
        XCTAssertEqual(plain.tokens, piped.tokens)
        // The stop token itself is not run through the model.
        XCTAssertEqual(piped.cache.first?.offset, prompt.count + at)
        assertSameCaches(piped.cache, plain.cache)
    }

    func testGenerationStopsAtTheContextLength() throws {
        let m = try model()  // 64 positions
        let prompt = Array(repeating: 9, count: 60)
        let piped = try run(m, prompt: prompt, maxTokens: 10, pipelined: true)
        let plain = try run(m, prompt: prompt, maxTokens: 10, pipelined: false)
        XCTAssertEqual(piped.tokens, plain.tokens)
        XCTAssertEqual(piped.cache.first?.offset, plain.cache.first?.offset)
        XCTAssertLessThan(piped.cache.first!.offset, 64)
    }
}
