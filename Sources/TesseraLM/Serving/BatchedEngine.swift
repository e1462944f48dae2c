// A continuously batching GenerationEngine: one scheduler thread owns the
// model and runs steps; each step takes the next token of every decoding
// sequence and a chunk of the prompts being prefilled, as the rows of one
// batched forward pass (BatchedForward.swift), then samples each sequence's
// next token on the host. Requests wait in a bounded queue and join the
// running batch between steps; a sequence that finishes or whose consumer
// goes away leaves at once, its caches kept by the prefix cache for a later
// request that starts with the same tokens.

import Foundation
import Tessera
import TesseraNN

/// Runs many generation requests on one model at once, batching their decode
/// steps so that each weight is read once per step for all of them.
///
/// ```swift
/// let engine = try BatchedEngine(model: loaded.model)
/// for try await event in try engine.submit(EngineRequest(promptTokens: ids, maxTokens: 64)) { ... }
/// await engine.shutdown()
/// ```
/// A sequence's greedy tokens are the same whatever else runs beside it.
/// `shutdown()` stops the scheduler thread (the engine lives until then).
public final class BatchedEngine: GenerationEngine, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Sequences generating at once; more wait in the queue.
        public var maxConcurrency = 16
        /// Requests waiting while `maxConcurrency` generate; more are refused (`overloaded`).
        public var maxQueue = 64
        /// Positions (prompt + max tokens) a request may use, at most the model's context.
        public var maxContext: Int? = nil
        /// Bytes of key/value cache the running sequences may reserve
        /// (prompt + max tokens each); a request waits until its share is free.
        public var kvCacheBytes = 1 << 31
        /// Bytes of finished sequences' caches kept for reuse (0: no prefix cache).
        public var prefixCacheBytes = 256 << 20
        /// Prompt tokens prefilled per step beside the decoding sequences (1...8192), and
        /// the most one sequence prefills in one pass (as `TokenGenerator`'s
        /// `prefillStepSize`): a chunk of more than 16 tokens runs as a pass of
        /// its own, through the prefill product (the integer GEMM), a shorter
        /// one joins the decoding rows.
        public var prefillTokensPerStep = 512
        /// How the sequences' caches store keys and values (float16 by default).
        public var kvCacheType = KVCacheType.f16
        /// Replay a captured step for row-wise passes (decoding rows and
        /// prompt chunks of at most 16 tokens: DecodePlan's `step(_:)`, no
        /// graph built, the same logits bit for bit) where the model allows;
        /// off: every pass builds its graph.
        public var replayDecode = true

        public init() {}
    }

    public let contextLength: Int
    public let vocabularySize: Int
    public let configuration: Configuration
    private let model: TransformerModel
    /// The captured decode step (scheduler thread only), and the `Module.generation` it was made at.
    private var plan: DecodePlan?
    private var planGeneration: UInt64?
    /// Passes that ran as a replay of the captured step (scheduler thread; published in the snapshot).
    private var replayedSteps = 0
    /// Cache bytes one position takes in every layer (keys and values, of `kvCacheType`).
    private let bytesPerPosition: Int

    /// Guards `state`; the scheduler waits on it when idle.
    private let condition = NSCondition()
    private var state = State()

    private struct State {
        var queue: [Sequence] = []
        var cancelled: Set<UInt64> = []
        var nextID: UInt64 = 0
        var stopping = false
        var stopped = false
        var snapshot = EngineSnapshot()
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// A request on its way through the engine (touched only by the scheduler once queued).
    private final class Sequence {
        let id: UInt64
        let request: EngineRequest
        let continuation: AsyncThrowingStream<EngineEvent, any Error>.Continuation
        let reservedBytes: Int
        var sampler: Sampler
        var cache: [KVCache] = []
        /// Tokens whose keys and values are in `cache`, in order.
        var fed: [Int] = []
        /// Tokens to feed next: the rest of the prompt, then each sampled token.
        var pending: [Int] = []
        var generated: [Int] = []
        var cachedPromptTokens = 0

        init(
            id: UInt64, request: EngineRequest, continuation: AsyncThrowingStream<EngineEvent, any Error>.Continuation,
            reservedBytes: Int
        ) {
            self.id = id
            self.request = request
            self.continuation = continuation
            self.reservedBytes = reservedBytes
            sampler = Sampler(request.sampling)
        }

        var usage: EngineUsage {
            EngineUsage(
                promptTokens: request.promptTokens.count, completionTokens: generated.count,
                cachedPromptTokens: cachedPromptTokens)
        }
    }

    /// Starts the scheduler thread for `model` (a transformer, as every loaded model is).
    public init(model: any LanguageModel, configuration: Configuration = Configuration()) throws {
        guard let transformer = model as? TransformerModel else {
            throw ModelError.invalidConfiguration("the batched engine runs transformer models only")
        }
        guard configuration.maxConcurrency >= 1, configuration.maxQueue >= 0, configuration.kvCacheBytes > 0,
            configuration.prefixCacheBytes >= 0
        else {
            throw ModelError.invalidConfiguration(
                "engine limits must be positive (max concurrency \(configuration.maxConcurrency), queue \(configuration.maxQueue), KV bytes \(configuration.kvCacheBytes))"
            )
        }
        var configuration = configuration
        configuration.prefillTokensPerStep = min(max(1, configuration.prefillTokensPerStep), 8192)
        self.model = transformer
        self.configuration = configuration
        let c = transformer.configuration
        contextLength = min(transformer.contextLength, max(1, configuration.maxContext ?? Int.max))
        vocabularySize = transformer.vocabularySize
        bytesPerPosition = c.layerCount * 2 * c.kvHeadCount * c.headDim * configuration.kvCacheType.dtype.size
        let thread = Thread { [self] in run() }
        thread.name = "tessera-engine"
        thread.stackSize = 16 << 20
        thread.start()
    }

    public func submit(_ request: EngineRequest) throws -> AsyncThrowingStream<EngineEvent, any Error> {
        let prompt = request.promptTokens
        guard !prompt.isEmpty else { throw EngineError.invalidRequest("the prompt is empty") }
        guard request.maxTokens >= 1 else {
            throw EngineError.invalidRequest("max tokens must be at least 1, got \(request.maxTokens)")
        }
        guard request.topLogprobs >= 0 && request.topLogprobs <= vocabularySize else {
            throw EngineError.invalidRequest("top logprobs must be between 0 and \(vocabularySize)")
        }
        if let bad = prompt.first(where: { $0 < 0 || $0 >= vocabularySize }) {
            throw EngineError.invalidRequest("token id \(bad) is outside the vocabulary of \(vocabularySize)")
        }
        let (needed, overflow) = prompt.count.addingReportingOverflow(request.maxTokens)
        guard !overflow, needed <= contextLength else {
            throw EngineError.contextExceeded(requested: overflow ? Int.max : needed, context: contextLength)
        }
        let reserved = Self.roundedPositions(needed) * bytesPerPosition
        guard reserved <= configuration.kvCacheBytes else {
            throw EngineError.invalidRequest(
                "the request needs \(reserved) bytes of key/value cache; the engine's budget is \(configuration.kvCacheBytes)"
            )
        }
        let (stream, continuation) = AsyncThrowingStream<EngineEvent, any Error>.makeStream()
        condition.lock()
        defer { condition.unlock() }
        guard !state.stopping else { throw EngineError.shuttingDown }
        // Room: the free generating slots (a request passes through the queue
        // to reach one) plus `maxQueue` waiting.
        let free = max(0, configuration.maxConcurrency - state.snapshot.activeSequences)
        guard state.queue.count < configuration.maxQueue + free else {
            throw EngineError.overloaded(retryAfterSeconds: 1)
        }
        let id = state.nextID
        state.nextID += 1
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.cancel(id) }
        }
        state.queue.append(Sequence(id: id, request: request, continuation: continuation, reservedBytes: reserved))
        state.snapshot.queuedSequences = state.queue.count
        condition.signal()
        return stream
    }

    public func snapshot() -> EngineSnapshot {
        condition.lock()
        defer { condition.unlock() }
        return state.snapshot
    }

    public func shutdown() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            condition.lock()
            state.stopping = true
            if state.stopped {
                condition.unlock()
                waiter.resume()
                return
            }
            state.exitWaiters.append(waiter)
            condition.signal()
            condition.unlock()
        }
    }

    /// Ends sequence `id` at the next step (its consumer went away).
    private func cancel(_ id: UInt64) {
        condition.lock()
        state.cancelled.insert(id)
        condition.signal()
        condition.unlock()
    }

    /// A growing cache's positions for `n`: whole steps of its buffers.
    private static func roundedPositions(_ n: Int) -> Int { (n + KVCache.step - 1) / KVCache.step * KVCache.step }

    // MARK: The scheduler

    /// Scheduler-thread state.
    private var active: [Sequence] = []
    private lazy var prefixCache = PrefixCache(budget: configuration.prefixCacheBytes)

    private func run() {
        while true {
            condition.lock()
            while active.isEmpty && state.queue.isEmpty && !state.stopping && state.cancelled.isEmpty {
                condition.wait()
            }
            let cancelled = state.cancelled
            state.cancelled.removeAll()
            let stopping = state.stopping
            var dropped: [Sequence] = []
            if stopping {
                dropped = state.queue
                state.queue.removeAll()
            } else if !cancelled.isEmpty {
                dropped = state.queue.filter { cancelled.contains($0.id) }
                state.queue.removeAll { cancelled.contains($0.id) }
            }
            // Admit waiting requests while there is room and cache to reserve.
            var admitted: [Sequence] = []
            var reserved = active.reduce(0) { $0 + $1.reservedBytes }
            while active.count + admitted.count < configuration.maxConcurrency, let next = state.queue.first,
                reserved + next.reservedBytes <= configuration.kvCacheBytes
            {
                state.queue.removeFirst()
                admitted.append(next)
                reserved += next.reservedBytes
            }
            state.snapshot.queuedSequences = state.queue.count
            state.snapshot.activeSequences = active.count + admitted.count
            condition.unlock()

            for sequence in dropped { end(sequence, .cancelled, cache: false) }
            for sequence in active where stopping || cancelled.contains(sequence.id) {
                finish(sequence, .cancelled)
            }
            for sequence in admitted { start(sequence) }
            if stopping {
                for sequence in admitted { finish(sequence, .cancelled) }
                prefixCache.removeAll()
                publish()
                condition.lock()
                state.stopped = true
                let waiters = state.exitWaiters
                state.exitWaiters.removeAll()
                condition.unlock()
                for waiter in waiters { waiter.resume() }
                return
            }
            step()
            publish()
        }
    }

    /// Sets up an admitted sequence's caches, from the prefix cache when an
    /// earlier sequence shares its first tokens (at least one prompt token is
    /// always computed, for the logits of the first new token).
    private func start(_ sequence: Sequence) {
        let prompt = sequence.request.promptTokens
        sequence.cache = model.makeStepCache(configuration.kvCacheType)
        var reused = 0
        if let hit = prefixCache.longestPrefix(prompt) {
            reused = min(hit.length, prompt.count - 1)
            if reused > 0 {
                for (cache, source) in zip(sequence.cache, hit.entry.caches) {
                    let held = source.state
                    _ = cache.update(keys: held[0][0..., 0..., ..<reused], values: held[1][0..., 0..., ..<reused])
                }
            }
        }
        sequence.fed = Array(prompt[..<reused])
        sequence.pending = Array(prompt[reused...])
        sequence.cachedPromptTokens = reused
        active.append(sequence)
        condition.lock()
        state.snapshot.promptTokensTotal += prompt.count
        state.snapshot.prefixCacheHitTokens += reused
        condition.unlock()
    }

    /// One step: every decoding sequence's next token and chunks of the
    /// prompts being prefilled, up to `prefillTokensPerStep` prompt tokens.
    /// A sequence's chunks depend on it alone (its next `prefillTokensPerStep`
    /// prompt tokens), never on the batch: a chunk of more than
    /// `batchedMaxRows` tokens is a pass of its own (its products take the
    /// prefill GEMM, whose rows are computed together), a shorter one joins
    /// the decoding rows in passes of at most `batchedMaxRows` rows (the
    /// products compute those row by row). So a sequence's prefill is the
    /// same computation alone or among others. Then each sequence that got
    /// logits samples.
    private func step() {
        var rowWise: [(Sequence, StepSegment)] = []
        var alone: [(Sequence, StepSegment)] = []
        for sequence in active where sequence.fed.count >= sequence.request.promptTokens.count {
            rowWise.append((sequence, StepSegment(cache: sequence.cache, tokens: sequence.pending, wantsLogits: true)))
        }
        let chunkSize = configuration.prefillTokensPerStep
        var prefillBudget = chunkSize
        for sequence in active where sequence.fed.count < sequence.request.promptTokens.count {
            let chunk = Array(sequence.pending.prefix(chunkSize))
            // Whole chunks only (the first always fits): the rest wait for the next step.
            guard chunk.count <= prefillBudget else { break }
            prefillBudget -= chunk.count
            let segment = StepSegment(
                cache: sequence.cache, tokens: chunk, wantsLogits: chunk.count == sequence.pending.count)
            if chunk.count > TransformerModel.batchedMaxRows {
                alone.append((sequence, segment))
            } else {
                rowWise.append((sequence, segment))
            }
            if prefillBudget == 0 { break }
        }
        var pass: [(Sequence, StepSegment)] = []
        var rows = 0
        for item in rowWise {
            if rows + item.1.tokens.count > TransformerModel.batchedMaxRows {
                run(pass)
                pass.removeAll()
                rows = 0
            }
            pass.append(item)
            rows += item.1.tokens.count
        }
        if !pass.isEmpty { run(pass) }
        for item in alone { run([item]) }
    }

    /// The captured step for the model as it is now (captured again after a
    /// module changes), or nil where replay is off or the model is outside it.
    private func currentPlan() -> DecodePlan? {
        guard configuration.replayDecode else { return nil }
        let generation = Module.generation
        if planGeneration != generation {
            plan = DecodePlan.make(model)
            planGeneration = generation
        }
        return plan
    }

    /// A row-wise pass (decoding rows, short prompt chunks) through the
    /// captured step: its logits (nil when no segment wants them); nil where
    /// the graph must run it.
    private func replayed(_ pass: [(Sequence, StepSegment)]) -> DecodePlan.Replayed? {
        guard let plan = currentPlan(), let result = plan.step(pass.map(\.1)) else { return nil }
        replayedSteps += 1
        return result
    }

    /// One forward pass over `pass`, then sampling for the sequences it gave logits.
    private func run(_ pass: [(Sequence, StepSegment)]) {
        let logits: Tensor?, evaluate: [Tensor]
        if let captured = replayed(pass) {
            (logits, evaluate) = (captured.logits, [])
        } else {
            (logits, evaluate) = model.stepOutputs(pass.map(\.1))
        }
        do {
            try checkedEval(evaluate)
            guard let logits else {
                for (sequence, segment) in pass { advance(sequence, segment) }
                return
            }
            // The rows are read where the step left them (no copy of the batch's logits).
            try logits.withHostFloats { all in
                let v = vocabularySize
                var row = 0
                for (sequence, segment) in pass {
                    advance(sequence, segment)
                    guard segment.wantsLogits else { continue }
                    sample(sequence, logits: UnsafeBufferPointer(rebasing: all[(row * v)..<((row + 1) * v)]))
                    row += 1
                }
            }
        } catch {
            for (sequence, _) in pass where active.contains(where: { $0 === sequence }) { fail(sequence, error) }
        }
    }

    /// The segment's tokens are in the sequence's caches now.
    private func advance(_ sequence: Sequence, _ segment: StepSegment) {
        sequence.fed += segment.tokens
        sequence.pending.removeFirst(segment.tokens.count)
    }

    /// Picks the sequence's next token from `logits` and reports it, or ends the sequence.
    private func sample(_ sequence: Sequence, logits row: UnsafeBufferPointer<Float>) {
        let request = sequence.request
        let filter = request.tokenFilter?(sequence.generated) ?? .any
        // The row as an array only where something reads or changes it past the largest logit.
        var z: [Float] = []
        let token: Int
        if case .any = filter, !request.logprobs, request.topLogprobs == 0, sequence.sampler.picksLargest {
            token = Sampler.argmax(row)  // what `sample` returns for these parameters
        } else {
            z = Array(row)
            switch filter {
            case .any: break
            case .finished:
                finish(sequence, .stop)
                return
            case .allowed(let ids):
                let allowed = ids.filter { $0 >= 0 && $0 < z.count }
                guard !allowed.isEmpty else {
                    fail(sequence, EngineError.invalidRequest("the token constraint allows no token of the vocabulary"))
                    return
                }
                var masked = [Float](repeating: -.infinity, count: z.count)
                for id in allowed { masked[id] = z[id] }
                z = masked
            }
            token = sequence.sampler.sample(z, history: request.promptTokens + sequence.generated)
        }
        if request.stopTokens.contains(token) {
            finish(sequence, .stop)
            return
        }
        var event = EngineToken(id: token)
        if request.logprobs || request.topLogprobs > 0 {
            let top = z.max() ?? 0
            var sum = 0.0
            for value in z where value > -.infinity { sum += exp(Double(value - top)) }
            let logSum = Float(log(sum)) + top
            if request.logprobs { event.logprob = z[token] - logSum }
            if request.topLogprobs > 0 {
                event.top = Sampler.largest(request.topLogprobs, of: z).map { ($0, z[$0] - logSum) }
            }
        }
        sequence.generated.append(token)
        condition.lock()
        state.snapshot.generatedTokensTotal += 1
        condition.unlock()
        if case .terminated = sequence.continuation.yield(.token(event)) {
            finish(sequence, .cancelled)
            return
        }
        if sequence.generated.count >= request.maxTokens || sequence.fed.count + 1 >= contextLength {
            finish(sequence, .length)
            return
        }
        sequence.pending = [token]
    }

    /// Ends an active sequence: its last event, and its caches to the prefix cache.
    private func finish(_ sequence: Sequence, _ reason: EngineFinishReason) {
        end(sequence, reason, cache: true)
    }

    private func end(_ sequence: Sequence, _ reason: EngineFinishReason, cache: Bool) {
        active.removeAll { $0 === sequence }
        sequence.continuation.yield(.finished(reason, sequence.usage))
        sequence.continuation.finish()
        if cache, !sequence.fed.isEmpty, sequence.cache.first?.offset == sequence.fed.count {
            let bytes = sequence.cache.reduce(0) { $0 + $1.storage.reduce(0) { $0 + $1.nbytes } }
            prefixCache.insert(tokens: sequence.fed, caches: sequence.cache, bytes: bytes)
        }
        sequence.cache = []
    }

    /// Ends a sequence whose evaluation failed (its caches are dropped).
    private func fail(_ sequence: Sequence, _ error: any Error) {
        active.removeAll { $0 === sequence }
        let reported = (error as? EngineError) ?? EngineError.evaluation("\(error)")
        sequence.continuation.finish(throwing: reported)
        sequence.cache = []
    }

    /// The counters the scheduler owns, into the snapshot.
    private func publish() {
        let kv = active.reduce(0) { total, sequence in
            total + sequence.cache.reduce(0) { $0 + $1.storage.reduce(0) { $0 + $1.nbytes } }
        }
        condition.lock()
        state.snapshot.activeSequences = active.count
        state.snapshot.kvCacheBytes = kv
        state.snapshot.prefixCacheBytes = prefixCache.bytes
        state.snapshot.replayedDecodeSteps = replayedSteps
        condition.unlock()
    }
}
