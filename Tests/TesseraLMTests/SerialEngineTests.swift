// SerialEngine on a small random model: its greedy tokens are TokenGenerator's,
// logprobs are the log-softmax of the logits, a token filter confines the
// tokens, the queue is bounded, a dropped stream ends its sequence, and
// shutdown ends everything.

import Foundation
import Tessera
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

final class SerialEngineTests: XCTestCase {
    private func model() throws -> any LanguageModel {
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 300,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 128, "tie_word_embeddings": true}
            """
        return try SyntheticModel.llama(config: config, bits: 4, groupSize: 32, scale: 0.2)
    }

    private func collect(_ stream: AsyncThrowingStream<EngineEvent, any Error>) async throws
        -> (tokens: [EngineToken], reason: EngineFinishReason?, usage: EngineUsage?)
    {
        var tokens: [EngineToken] = []
        for try await event in stream {
            switch event {
            case .token(let t): tokens.append(t)
            case .finished(let reason, let usage): return (tokens, reason, usage)
            }
        }
        return (tokens, nil, nil)
    }

    private let prompt = [1, 17, 42, 99, 7]

    func testGreedyTokensAreTokenGeneratorsWithAndWithoutLogprobs() async throws {
        let m = try model()
        var p = GenerateParameters()
        p.sampling = .greedy
        p.maxTokens = 12
        var generator = try TokenGenerator(model: m, prompt: prompt, parameters: p)
        let first = try XCTUnwrap(generator.nextLogits).toArray(Float.self)
        var expected: [Int] = []
        while let t = try generator.next() { expected.append(t) }

        let engine = SerialEngine(model: m, maxQueue: 4)
        let plain = try await collect(engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 12)))
        XCTAssertEqual(plain.tokens.map(\.id), expected)
        XCTAssertEqual(plain.reason, .length)
        XCTAssertEqual(plain.usage, EngineUsage(promptTokens: 5, completionTokens: 12, cachedPromptTokens: 0))

        let scored = try await collect(
            engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 12, logprobs: true, topLogprobs: 3)))
        XCTAssertEqual(scored.tokens.map(\.id), expected)
        // The first token's log-probability: log-softmax of the prompt's last logits, in double here.
        let top = first.max()!
        let logSum = log(first.reduce(0.0) { $0 + exp(Double($1 - top)) }) + Double(top)
        let firstToken = try XCTUnwrap(scored.tokens.first)
        XCTAssertEqual(Double(try XCTUnwrap(firstToken.logprob)), Double(first[expected[0]]) - logSum, accuracy: 1e-4)
        for token in scored.tokens {
            XCTAssertEqual(token.top.count, 3)
            // Greedy: the chosen token is the most likely one; the rest follow in order.
            XCTAssertEqual(token.top.first?.id, token.id)
            XCTAssertEqual(token.top.first?.logprob, token.logprob)
            XCTAssertTrue(zip(token.top, token.top.dropFirst()).allSatisfy { $0.logprob >= $1.logprob })
            XCTAssertLessThanOrEqual(token.top.reduce(0.0) { $0 + exp(Double($1.logprob)) }, 1.0 + 1e-5)
        }
        await engine.shutdown()
    }

    func testATokenFilterConfinesTheTokensAndFinishes() async throws {
        let engine = SerialEngine(model: try model(), maxQueue: 4)
        let allowed: Set<Int> = [5, 77, 123]
        var sampling = SamplingParameters()
        sampling.temperature = 1
        sampling.seed = 7
        let request = EngineRequest(
            promptTokens: prompt, maxTokens: 20, sampling: sampling,
            tokenFilter: { generated in generated.count < 6 ? .allowed(allowed) : .finished })
        let result = try await collect(engine.submit(request))
        XCTAssertEqual(result.tokens.count, 6)
        XCTAssertTrue(result.tokens.allSatisfy { allowed.contains($0.id) }, "\(result.tokens.map(\.id))")
        XCTAssertEqual(result.reason, .stop)
        await engine.shutdown()
    }

    func testStopTokensEndTheSequenceUnreported() async throws {
        let m = try model()
        let engine = SerialEngine(model: m, maxQueue: 4)
        let free = try await collect(engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 8)))
        let stop = try XCTUnwrap(free.tokens.dropFirst(2).first?.id)
        let stopped = try await collect(
            engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 8, stopTokens: [stop])))
        let cut = try XCTUnwrap(free.tokens.firstIndex { $0.id == stop })
        XCTAssertEqual(stopped.tokens.map(\.id), Array(free.tokens.prefix(cut).map(\.id)))
        XCTAssertEqual(stopped.reason, .stop)
        await engine.shutdown()
    }

    func testBadRequestsAreTypedErrors() throws {
        let engine = SerialEngine(model: try model(), maxQueue: 4, maxContext: 64)
        XCTAssertEqual(engine.contextLength, 64)
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: [], maxTokens: 4))) {
            XCTAssertEqual($0 as? EngineError, .invalidRequest("the prompt is empty"))
        }
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: [300], maxTokens: 4))) {
            guard case .invalidRequest = $0 as? EngineError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 60))) {
            XCTAssertEqual($0 as? EngineError, .contextExceeded(requested: 65, context: 64))
        }
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: prompt, maxTokens: Int.max))) {
            guard case .contextExceeded = $0 as? EngineError else { return XCTFail("\($0)") }
        }
    }

    func testAFullQueueIsOverloadedAndADroppedStreamEndsItsSequence() async throws {
        let engine = SerialEngine(model: try model(), maxQueue: 0)
        let long = EngineRequest(promptTokens: prompt, maxTokens: 120)
        var first: AsyncThrowingStream<EngineEvent, any Error>? = try engine.submit(long)
        XCTAssertThrowsError(try engine.submit(long)) {
            guard case .overloaded(let seconds) = $0 as? EngineError else { return XCTFail("\($0)") }
            XCTAssertGreaterThanOrEqual(seconds, 1)
        }
        // Read two tokens, then drop the stream: the engine stops that sequence.
        var iterator = first!.makeAsyncIterator()
        _ = try await iterator.next()
        _ = try await iterator.next()
        first = nil
        _ = consume iterator
        var snapshot = engine.snapshot()
        for _ in 0..<2000 where snapshot.activeSequences > 0 {
            try await Task.sleep(for: .milliseconds(5))
            snapshot = engine.snapshot()
        }
        XCTAssertEqual(snapshot.activeSequences, 0)
        XCTAssertEqual(snapshot.kvCacheBytes, 0)
        XCTAssertLessThan(snapshot.generatedTokensTotal, 120)
        // The engine takes requests again.
        let next = try await collect(engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 3)))
        XCTAssertEqual(next.tokens.count, 3)
        await engine.shutdown()
    }

    func testShutdownCancelsQueuedAndRefusesNew() async throws {
        let engine = SerialEngine(model: try model(), maxQueue: 4)
        let streams = try (0..<3).map { _ in try engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 100)) }
        await engine.shutdown()
        for stream in streams {
            let result = try await collect(stream)
            XCTAssertTrue(
                result.reason == .cancelled || result.reason == .length, "\(String(describing: result.reason))")
        }
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 2))) {
            XCTAssertEqual($0 as? EngineError, .shuttingDown)
        }
        XCTAssertEqual(engine.snapshot().activeSequences, 0)
        XCTAssertEqual(engine.snapshot().queuedSequences, 0)
    }
}
