// The batched generation engine: concurrent greedy requests give their solo tokens,
// cancellation, the prefix cache, stop tokens, constraints, seeded sampling, limits and shutdown.

import Foundation
import Synchronization
import Tessera
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

/// What one request gave back.
struct EngineResult: Equatable {
    var tokens: [Int] = []
    /// Each token's log-probability, when asked: equal floats mean equal logits bit for bit, about.
    var logprobs: [Float] = []
    var reason: EngineFinishReason?
    var usage: EngineUsage?
}

/// Collects a stream; stops reading (cancelling it) after `cancelAfter` tokens when given.
func collect(_ stream: AsyncThrowingStream<EngineEvent, any Error>, cancelAfter: Int? = nil) async throws
    -> EngineResult
{
    var result = EngineResult()
    do {
        for try await event in stream {
            if let cancelAfter, result.tokens.count >= cancelAfter { continue }  // what came before the cancellation
            switch event {
            case .token(let t):
                result.tokens.append(t.id)
                if let lp = t.logprob { result.logprobs.append(lp) }
                // Cancelling the consuming task ends the stream (its onTermination), as a disconnect does.
                if let cancelAfter, result.tokens.count >= cancelAfter { withUnsafeCurrentTask { $0?.cancel() } }
            case .finished(let reason, let usage):
                result.reason = reason
                result.usage = usage
            }
        }
    } catch is CancellationError where cancelAfter != nil {}
    return result
}

/// Waits (up to 10 s) until the engine has no sequence left, and returns its snapshot.
func settled(_ engine: BatchedEngine) async throws -> EngineSnapshot {
    for _ in 0..<1000 {
        let s = engine.snapshot()
        if s.activeSequences == 0 && s.queuedSequences == 0 { return s }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
    return engine.snapshot()
}

/// 16 requests at once against each alone: the same greedy tokens, with the
/// same log-probabilities to the bit (the batch changes no logit), whether
/// the decode passes replay the captured step (the default) or build their
/// graphs; then half of them cancelled mid-stream. Shared by the synthetic
/// and SmolLM2 tests.
func checkBatchInvariance(
    model: any LanguageModel, prompts: [[Int]], maxTokens: Int, prefillTokensPerStep: Int? = nil,
    file: StaticString = #filePath, line: UInt = #line
) async throws {
    var configuration = BatchedEngine.Configuration()
    configuration.prefixCacheBytes = 0  // every request computes its whole prompt
    if let prefillTokensPerStep { configuration.prefillTokensPerStep = prefillTokensPerStep }
    let solo = try BatchedEngine(model: model, configuration: configuration)
    var alone: [EngineResult] = []
    for prompt in prompts {
        alone.append(
            try await collect(
                try solo.submit(EngineRequest(promptTokens: prompt, maxTokens: maxTokens, logprobs: true))))
    }
    XCTAssertGreaterThan(solo.snapshot().replayedDecodeSteps, 0, "decode steps replay", file: file, line: line)
    await solo.shutdown()
    XCTAssertTrue(alone.allSatisfy { $0.reason == .length && $0.tokens.count == maxTokens }, file: file, line: line)

    func allAtOnce(_ engine: BatchedEngine) async throws -> [EngineResult] {
        let streams = try prompts.map {
            try engine.submit(EngineRequest(promptTokens: $0, maxTokens: maxTokens, logprobs: true))
        }
        return try await withThrowingTaskGroup(of: (Int, EngineResult).self) { group in
            for (i, stream) in streams.enumerated() { group.addTask { (i, try await collect(stream)) } }
            var results = [EngineResult](repeating: EngineResult(), count: streams.count)
            for try await (i, r) in group { results[i] = r }
            return results
        }
    }
    var graphOnly = configuration
    graphOnly.replayDecode = false
    let graphEngine = try BatchedEngine(model: model, configuration: graphOnly)
    let built = try await allAtOnce(graphEngine)
    XCTAssertEqual(graphEngine.snapshot().replayedDecodeSteps, 0, file: file, line: line)
    await graphEngine.shutdown()
    let engine = try BatchedEngine(model: model, configuration: configuration)
    let together = try await allAtOnce(engine)
    for (label, results) in [("replayed", together), ("graph", built)] {
        for i in prompts.indices {
            XCTAssertEqual(
                results[i].tokens, alone[i].tokens, "request \(i) among \(prompts.count), \(label)", file: file,
                line: line)
            XCTAssertEqual(results[i].logprobs, alone[i].logprobs, "request \(i), \(label)", file: file, line: line)
            XCTAssertEqual(results[i].usage, alone[i].usage, file: file, line: line)
        }
    }

    // Cancel every other request after two tokens: the rest are unaffected.
    let again = try prompts.map { try engine.submit(EngineRequest(promptTokens: $0, maxTokens: maxTokens)) }
    let mixed = try await withThrowingTaskGroup(of: (Int, EngineResult).self) { group in
        for (i, stream) in again.enumerated() {
            group.addTask { (i, try await collect(stream, cancelAfter: i % 2 == 1 ? 2 : nil)) }
        }
        var results = [EngineResult](repeating: EngineResult(), count: again.count)
        for try await (i, r) in group { results[i] = r }
        return results
    }
    for i in prompts.indices {
        if i % 2 == 1 {
            XCTAssertEqual(mixed[i].tokens, Array(alone[i].tokens.prefix(2)), file: file, line: line)
        } else {
            XCTAssertEqual(
                mixed[i].tokens, alone[i].tokens, "request \(i) beside cancelled ones", file: file, line: line)
        }
    }
    let after = try await settled(engine)
    XCTAssertEqual(after.activeSequences, 0, file: file, line: line)
    XCTAssertEqual(after.queuedSequences, 0, file: file, line: line)
    XCTAssertEqual(after.kvCacheBytes, 0, file: file, line: line)
    // The cancelled sequences stopped early (within a step or so of their consumers going away).
    XCTAssertLessThan(after.generatedTokensTotal, 2 * prompts.count * maxTokens, file: file, line: line)
    XCTAssertGreaterThanOrEqual(
        after.generatedTokensTotal, prompts.count * maxTokens + prompts.count / 2 * (maxTokens + 2), file: file,
        line: line)
    await engine.shutdown()
}

final class BatchedEngineTests: XCTestCase {
    /// A small random llama (4-bit, group 32): real quantized products and
    /// attention, fast unoptimised; weights scaled up so greedy tokens vary.
    static func makeModel() throws -> TransformerModel {
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 300,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 128,
             "tie_word_embeddings": true}
            """
        return try SyntheticModel.llama(config: config, bits: 4, groupSize: 32, dtype: .float32, scale: 0.5, seed: 7)
    }

    /// Deterministic prompts of varied lengths.
    static func prompts(_ count: Int, vocabulary: Int = 300) -> [[Int]] {
        (0..<count).map { i in (0..<(3 + (i * 7) % 29)).map { j in (i * 31 + j * 17 + 5) % vocabulary } }
    }

    func testSixteenConcurrentGreedyRequestsGiveTheirSoloTokensAndCancellingHalfLeavesTheRest() async throws {
        try await checkBatchInvariance(model: try Self.makeModel(), prompts: Self.prompts(16), maxTokens: 24)
    }

    /// Prompts cut into chunks of 20 (a chunk over 16 tokens is a pass of its
    /// own, through the prefill product; the rest join the decoding rows),
    /// with only 20 prompt tokens a step, so which step a chunk runs in
    /// depends on the batch: still each request's solo tokens and logprobs.
    func testPromptChunksRunAloneOrRowWiseAndStillGiveTheSoloTokens() async throws {
        let prompts = Self.prompts(16)
        XCTAssertTrue(prompts.contains { $0.count > 20 } && prompts.contains { (17...20).contains($0.count) })
        try await checkBatchInvariance(
            model: try Self.makeModel(), prompts: prompts, maxTokens: 12, prefillTokensPerStep: 20)
    }

    /// The engine's greedy tokens against the plain generation loop's, and
    /// its log-probabilities against a log-softmax of that loop's logits.
    func testGreedyTokensAndLogprobsAgreeWithTokenGenerator() async throws {
        let model = try Self.makeModel()
        let prompt = Self.prompts(3)[2]
        var parameters = GenerateParameters()
        parameters.maxTokens = 8
        parameters.sampling = .greedy
        parameters.pipelined = false
        var generator = try TokenGenerator(model: model, prompt: prompt, parameters: parameters)
        let first = try XCTUnwrap(generator.nextLogits).toArray(Float.self)
        var expected: [Int] = []
        while let t = try generator.next() { expected.append(t) }

        let engine = try BatchedEngine(model: model)
        var tokens: [EngineToken] = []
        for try await event in try engine.submit(
            EngineRequest(promptTokens: prompt, maxTokens: 8, logprobs: true, topLogprobs: 5))
        {
            if case .token(let t) = event { tokens.append(t) }
        }
        await engine.shutdown()
        XCTAssertEqual(tokens.map(\.id), expected)
        let top = first.max() ?? 0
        let logSum = Float(log(first.reduce(0.0) { $0 + exp(Double($1 - top)) })) + top
        let firstToken = try XCTUnwrap(tokens.first)
        XCTAssertEqual(try XCTUnwrap(firstToken.logprob), first[firstToken.id] - logSum, accuracy: 1e-3)
        XCTAssertEqual(firstToken.top.count, 5)
        XCTAssertEqual(firstToken.top.first?.id, firstToken.id)
        let expectedTop = first.indices.sorted { first[$0] > first[$1] }.prefix(5)
        XCTAssertEqual(firstToken.top.map(\.id), Array(expectedTop))
        for (a, b) in zip(firstToken.top, firstToken.top.dropFirst()) {
            XCTAssertGreaterThanOrEqual(a.logprob, b.logprob)
        }
        for (id, lp) in firstToken.top { XCTAssertEqual(lp, first[id] - logSum, accuracy: 1e-3) }
    }

    /// The engine's caches are float16 by default: a request reserves (and
    /// the prefix cache keeps) half the bytes float32 caches take, so a
    /// budget that refuses a float32 request admits the same request.
    func testFloat16CachesHalveTheReservedAndKeptBytes() async throws {
        let model = try Self.makeModel()
        let prompt = Self.prompts(1)[0]
        // 2 layers × keys and values × 2 heads × 16 wide × 256 positions (one buffer step).
        let elements = 2 * 2 * 2 * 16 * 256
        XCTAssertEqual(BatchedEngine.Configuration().kvCacheType, .f16)
        for type in KVCacheType.allCases {
            var configuration = BatchedEngine.Configuration()
            configuration.kvCacheType = type
            configuration.kvCacheBytes = 3 * elements
            let engine = try BatchedEngine(model: model, configuration: configuration)
            if type == .f32 {
                XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 4))) {
                    XCTAssertTrue("\($0)".contains("\(4 * elements) bytes"), "\($0)")
                }
            } else {
                let result = try await collect(try engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 4)))
                XCTAssertEqual(result.tokens.count, 4)
                let after = try await settled(engine)
                XCTAssertEqual(after.prefixCacheBytes, 2 * elements, "float16 caches kept for reuse")
            }
            await engine.shutdown()
        }
    }

    /// A chat re-sent with its reply and a new message reuses the cached
    /// positions (all but the reply's last token, which was never fed back),
    /// and gives the same tokens as without the cache.
    func testPrefixCacheReusesEarlierTurnsWithIdenticalOutput() async throws {
        let model = try Self.makeModel()
        let first = Self.prompts(5)[4]
        let engine = try BatchedEngine(model: model)
        let turn1 = try await collect(try engine.submit(EngineRequest(promptTokens: first, maxTokens: 6)))
        XCTAssertEqual(turn1.usage?.cachedPromptTokens, 0)
        let second = first + turn1.tokens + [11, 12, 13, 14, 15]
        let turn2 = try await collect(try engine.submit(EngineRequest(promptTokens: second, maxTokens: 6)))
        XCTAssertEqual(turn2.usage?.cachedPromptTokens, first.count + turn1.tokens.count - 1)
        XCTAssertEqual(turn2.usage?.promptTokens, second.count)
        let snapshot = try await settled(engine)
        XCTAssertEqual(snapshot.prefixCacheHitTokens, first.count + turn1.tokens.count - 1)
        XCTAssertGreaterThan(snapshot.prefixCacheBytes, 0)
        XCTAssertEqual(snapshot.kvCacheBytes, 0)
        // The same prompt again: all but its last token come from the cache.
        let repeated = try await collect(try engine.submit(EngineRequest(promptTokens: second, maxTokens: 6)))
        XCTAssertEqual(repeated.usage?.cachedPromptTokens, second.count - 1)
        XCTAssertEqual(repeated.tokens, turn2.tokens)
        await engine.shutdown()

        var uncached = BatchedEngine.Configuration()
        uncached.prefixCacheBytes = 0
        let plain = try BatchedEngine(model: model, configuration: uncached)
        let fresh = try await collect(try plain.submit(EngineRequest(promptTokens: second, maxTokens: 6)))
        XCTAssertEqual(fresh.usage?.cachedPromptTokens, 0)
        XCTAssertEqual(fresh.tokens, turn2.tokens)
        let plainSnapshot = try await settled(plain)
        XCTAssertEqual(plainSnapshot.prefixCacheBytes, 0)
        await plain.shutdown()
    }

    func testPrefixCacheEvictsLeastRecentlyUsedWithinItsBudget() {
        let cache = PrefixCache(budget: 100)
        let layers = { [KVCache(), KVCache()] }
        cache.insert(tokens: Array(0..<20), caches: layers(), bytes: 40)
        cache.insert(tokens: Array(100..<120), caches: layers(), bytes: 40)
        XCTAssertEqual(cache.longestPrefix(Array(0..<18) + [7])?.length, 18)  // marks the first one used
        cache.insert(tokens: Array(200..<220), caches: layers(), bytes: 40)  // evicts the second
        XCTAssertEqual(cache.count, 2)
        XCTAssertEqual(cache.bytes, 80)
        XCTAssertNil(cache.longestPrefix(Array(100..<120)))
        XCTAssertEqual(cache.longestPrefix(Array(200..<230))?.length, 20)
        // A longer entry replaces the one it extends; one over the budget is not kept.
        cache.insert(tokens: Array(0..<40), caches: layers(), bytes: 50)
        XCTAssertEqual(cache.longestPrefix(Array(0..<40))?.length, 40)
        XCTAssertEqual(cache.bytes, 90)
        cache.insert(tokens: Array(500..<520), caches: layers(), bytes: 101)
        XCTAssertNil(cache.longestPrefix(Array(500..<520)))
    }

    func testStopTokensConstraintsAndSeededSampling() async throws {
        let model = try Self.makeModel()
        let engine = try BatchedEngine(model: model)
        let prompt = Self.prompts(2)[1]
        let greedy = try await collect(try engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 8)))
        // A stop token ends the sequence before it, unreported.
        let stopAt = try XCTUnwrap(
            (1..<greedy.tokens.count).first { !greedy.tokens[..<$0].contains(greedy.tokens[$0]) })
        let stopped = try await collect(
            try engine.submit(EngineRequest(promptTokens: prompt, maxTokens: 8, stopTokens: [greedy.tokens[stopAt]])))
        XCTAssertEqual(stopped.tokens, Array(greedy.tokens[..<stopAt]))
        XCTAssertEqual(stopped.reason, .stop)
        XCTAssertEqual(stopped.usage?.completionTokens, stopAt)

        // A constraint: only tokens 5 and 9, finished after three.
        let constrained = try await collect(
            try engine.submit(
                EngineRequest(
                    promptTokens: prompt, maxTokens: 8,
                    tokenFilter: { generated in generated.count >= 3 ? .finished : .allowed([5, 9]) })))
        XCTAssertEqual(constrained.tokens.count, 3)
        XCTAssertTrue(constrained.tokens.allSatisfy { [5, 9].contains($0) })
        XCTAssertEqual(constrained.reason, .stop)

        // Seeded sampling: the same tokens alone and beside others.
        var sampling = SamplingParameters()
        sampling.temperature = 1
        sampling.topK = 50
        sampling.seed = 42
        let request = EngineRequest(promptTokens: prompt, maxTokens: 8, sampling: sampling)
        let alone = try await collect(try engine.submit(request))
        let others = try Self.prompts(6).map { try engine.submit(EngineRequest(promptTokens: $0, maxTokens: 8)) }
        let beside = try await collect(try engine.submit(request))
        for stream in others { _ = try await collect(stream) }
        XCTAssertEqual(beside.tokens, alone.tokens)
        await engine.shutdown()
    }

    /// With no queue, a request still reaches a free slot; a second one while it runs is refused.
    func testNoQueueAdmitsUpToTheConcurrency() async throws {
        let model = try Self.makeModel()
        var configuration = BatchedEngine.Configuration()
        configuration.maxConcurrency = 1
        configuration.maxQueue = 0
        let engine = try BatchedEngine(model: model, configuration: configuration)
        let first = try await collect(try engine.submit(EngineRequest(promptTokens: [1, 2], maxTokens: 3)))
        XCTAssertEqual(first.tokens.count, 3)
        _ = try await settled(engine)
        let again = try await collect(try engine.submit(EngineRequest(promptTokens: [1, 2], maxTokens: 3)))
        XCTAssertEqual(again.tokens, first.tokens)
        await engine.shutdown()
    }

    func testLimitsAndShutdown() async throws {
        let model = try Self.makeModel()
        var configuration = BatchedEngine.Configuration()
        configuration.maxConcurrency = 1
        configuration.maxQueue = 1
        configuration.maxContext = 64
        let engine = try BatchedEngine(model: model, configuration: configuration)
        XCTAssertEqual(engine.contextLength, 64)
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: [1, 2, 3], maxTokens: 62))) {
            XCTAssertEqual($0 as? EngineError, .contextExceeded(requested: 65, context: 64))
        }
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: [], maxTokens: 4)))
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: [1, 300], maxTokens: 4)))
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: [1], maxTokens: 0)))
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: [1], maxTokens: Int.max)))

        // One running (held at its first token by its constraint, which runs
        // on the scheduler thread), one queued, the next refused.
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let held = Mutex(true)
        let running = try engine.submit(
            EngineRequest(
                promptTokens: [1, 2, 3], maxTokens: 60,
                tokenFilter: { _ in
                    if held.withLock({ $0 }) {
                        entered.signal()
                        release.wait()
                        held.withLock { $0 = false }
                    }
                    usleep(5000)  // slow enough that shutdown finds it running
                    return .any
                }))
        var iterator = running.makeAsyncIterator()
        await Task.detached { entered.wait() }.value
        let queued = try engine.submit(EngineRequest(promptTokens: [4, 5], maxTokens: 4))
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: [6], maxTokens: 4))) {
            XCTAssertEqual($0 as? EngineError, .overloaded(retryAfterSeconds: 1))
        }
        XCTAssertEqual(engine.snapshot().queuedSequences, 1)
        XCTAssertEqual(engine.snapshot().activeSequences, 1)

        // Shutdown ends both (cancelled) and refuses new requests.
        release.signal()
        await engine.shutdown()
        var lastReason: EngineFinishReason?
        while let event = try await iterator.next() {
            if case .finished(let reason, _) = event { lastReason = reason }
        }
        XCTAssertEqual(lastReason, .cancelled)
        let queuedResult = try await collect(queued)
        XCTAssertEqual(queuedResult.reason, .cancelled)
        XCTAssertEqual(queuedResult.tokens, [])
        XCTAssertThrowsError(try engine.submit(EngineRequest(promptTokens: [1], maxTokens: 4))) {
            XCTAssertEqual($0 as? EngineError, .shuttingDown)
        }
        let final = engine.snapshot()
        XCTAssertEqual(final.activeSequences, 0)
        XCTAssertEqual(final.kvCacheBytes, 0)
    }
}

/// The batched engine on the default model (release: unoptimised kernels are too slow).
final class SmolLM2EngineTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
            if ProcessInfo.processInfo.environment["TESSERA_SLOW_TESTS"] == nil {
                throw XCTSkip("runs in release builds (or set TESSERA_SLOW_TESTS=1)")
            }
        #endif
    }

    func testSixteenConcurrentGreedyRequestsGiveTheirSoloTokens() async throws {
        let loaded = try ModelLoader.load(try SmolLM2ReferenceTests.modelPath())
        let prompts = BatchedEngineTests.prompts(16, vocabulary: 49152)
        try await checkBatchInvariance(model: loaded.model, prompts: prompts, maxTokens: 16)
    }

    /// The engine's greedy tokens against transformers' (../shared/refs).
    func testGreedyTokensMatchTheTransformersReference() async throws {
        let loaded = try ModelLoader.load(try SmolLM2ReferenceTests.modelPath())
        let reference =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: SmolLM2ReferenceTests.referenceURL)) as? [String: Any]
        let prompts = try XCTUnwrap(reference?["prompts"] as? [String: [String: Any]])
        let engine = try BatchedEngine(model: loaded.model)
        var streams: [(String, [Int], AsyncThrowingStream<EngineEvent, any Error>)] = []
        for (name, prompt) in prompts.sorted(by: { $0.key < $1.key }) {
            let ids = try XCTUnwrap(prompt["prompt_ids"] as? [Int])
            let expected = try XCTUnwrap(prompt["greedy_ids_48"] as? [Int])
            streams.append(
                (name, expected, try engine.submit(EngineRequest(promptTokens: ids, maxTokens: expected.count))))
        }
        for (name, expected, stream) in streams {
            let got = try await collect(stream)
            XCTAssertEqual(got.tokens, expected, "prompt \(name)")
        }
        await engine.shutdown()
    }
}
