// The simplest engine: one model, a bounded queue, and one sequence at a time
// on a dedicated thread through TokenGenerator. The server takes any
// GenerationEngine; this one is its default until a batched engine replaces it.

#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import Synchronization
import Tessera

/// Runs requests one after another on its own thread, the rest waiting in a
/// queue of at most `maxQueue` (more: `EngineError.overloaded`).
public final class SerialEngine: GenerationEngine, @unchecked Sendable {
    public let model: any LanguageModel
    public let contextLength: Int
    public var vocabularySize: Int { model.vocabularySize }
    public let maxQueue: Int
    /// Prompt tokens per forward pass during prefill.
    public let prefillStepSize: Int
    /// How each sequence's caches store keys and values.
    public let kvCacheType: KVCacheType

    /// One submitted sequence: its request, its stream's continuation, and
    /// whether its consumer went away.
    final class Job: @unchecked Sendable {
        let request: EngineRequest
        let continuation: AsyncThrowingStream<EngineEvent, any Error>.Continuation
        let cancelled = Atomic<Bool>(false)
        init(request: EngineRequest, continuation: AsyncThrowingStream<EngineEvent, any Error>.Continuation) {
            self.request = request
            self.continuation = continuation
        }
        var isCancelled: Bool { cancelled.load(ordering: .acquiring) }
    }

    private struct State {
        var queue: [Job] = []
        var active: Job?
        var activeKVBytes = 0
        var shuttingDown = false
        var workerDone = false
        var promptTokensTotal = 0
        var generatedTokensTotal = 0
        /// Seconds the recent sequences took, for Retry-After.
        var recentSeconds = 1.0
    }

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var state = State()

    /// - Parameters:
    ///   - maxContext: at most this many positions per sequence (nil: the model's context).
    ///   - kvCacheType: how each sequence's caches store keys and values (float16 by default).
    public init(
        model: any LanguageModel, maxQueue: Int = 64, maxContext: Int? = nil, prefillStepSize: Int = 512,
        kvCacheType: KVCacheType = .f16
    ) {
        self.model = model
        self.kvCacheType = kvCacheType
        self.maxQueue = max(0, maxQueue)
        self.prefillStepSize = max(1, prefillStepSize)
        contextLength = min(model.contextLength, max(1, maxContext ?? model.contextLength))
        let thread = Thread { self.work() }
        thread.name = "tessera-serial-engine"
        thread.start()
    }

    private func locked<T>(_ body: (inout State) -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body(&state)
    }

    public func submit(_ request: EngineRequest) throws -> AsyncThrowingStream<EngineEvent, any Error> {
        guard !request.promptTokens.isEmpty else { throw EngineError.invalidRequest("the prompt is empty") }
        guard request.maxTokens >= 1 else {
            throw EngineError.invalidRequest("max tokens must be at least 1, got \(request.maxTokens)")
        }
        if let bad = request.promptTokens.first(where: { $0 < 0 || $0 >= model.vocabularySize }) {
            throw EngineError.invalidRequest("token id \(bad) is outside the vocabulary of \(model.vocabularySize)")
        }
        guard request.topLogprobs >= 0 && request.topLogprobs <= 20 else {
            throw EngineError.invalidRequest("top logprobs must be in 0...20, got \(request.topLogprobs)")
        }
        let (needed, overflow) = request.promptTokens.count.addingReportingOverflow(request.maxTokens)
        guard !overflow, needed <= contextLength else {
            throw EngineError.contextExceeded(requested: overflow ? Int.max : needed, context: contextLength)
        }
        let (stream, continuation) = AsyncThrowingStream<EngineEvent, any Error>.makeStream()
        let job = Job(request: request, continuation: continuation)
        condition.lock()
        if state.shuttingDown {
            condition.unlock()
            throw EngineError.shuttingDown
        }
        if state.queue.count >= maxQueue && state.active != nil || state.queue.count > maxQueue {
            let wait = Int((state.recentSeconds * Double(state.queue.count + 1)).rounded(.up))
            condition.unlock()
            throw EngineError.overloaded(retryAfterSeconds: max(1, min(wait, 600)))
        }
        state.queue.append(job)
        condition.signal()
        condition.unlock()
        continuation.onTermination = { [weak self] termination in
            guard case .cancelled = termination else { return }
            job.cancelled.store(true, ordering: .releasing)
            // A job still waiting leaves the queue at once.
            self?.locked { s in s.queue.removeAll { $0 === job } }
        }
        return stream
    }

    public func snapshot() -> EngineSnapshot {
        locked { s in
            EngineSnapshot(
                activeSequences: s.active == nil ? 0 : 1, queuedSequences: s.queue.count,
                kvCacheBytes: s.activeKVBytes, promptTokensTotal: s.promptTokensTotal,
                generatedTokensTotal: s.generatedTokensTotal)
        }
    }

    public func shutdown() async {
        let (queued, active) = locked { s -> ([Job], Job?) in
            s.shuttingDown = true
            let queued = s.queue
            s.queue = []
            condition.signal()
            return (queued, s.active)
        }
        for job in queued {
            job.continuation.yield(
                .finished(
                    .cancelled,
                    EngineUsage(
                        promptTokens: job.request.promptTokens.count, completionTokens: 0, cachedPromptTokens: 0)))
            job.continuation.finish()
        }
        active?.cancelled.store(true, ordering: .releasing)
        // The worker ends the active sequence within one step, then exits.
        while !locked({ $0.workerDone }) { try? await Task.sleep(for: .milliseconds(5)) }
    }

    // MARK: The worker thread

    private func work() {
        while true {
            condition.lock()
            while state.queue.isEmpty && !state.shuttingDown { condition.wait() }
            if state.shuttingDown {
                state.workerDone = true
                condition.unlock()
                return
            }
            let job = state.queue.removeFirst()
            state.active = job
            condition.unlock()
            let start = now()
            run(job)
            let seconds = now() - start
            locked { s in
                s.active = nil
                s.activeKVBytes = 0
                s.recentSeconds = 0.7 * s.recentSeconds + 0.3 * seconds
            }
        }
    }

    private func run(_ job: Job) {
        let request = job.request
        var usage = EngineUsage(promptTokens: request.promptTokens.count, completionTokens: 0, cachedPromptTokens: 0)
        // The engine is idle before the consumer hears the end, so a snapshot
        // taken after a stream ends never counts its sequence.
        func release() {
            locked { s in
                s.active = nil
                s.activeKVBytes = 0
            }
        }
        func finish(_ reason: EngineFinishReason) {
            release()
            job.continuation.yield(.finished(reason, usage))
            job.continuation.finish()
        }
        func fail(_ error: EngineError) {
            release()
            job.continuation.finish(throwing: error)
        }
        if job.isCancelled { return finish(.cancelled) }
        var parameters = GenerateParameters()
        parameters.maxTokens = request.maxTokens
        parameters.sampling = request.sampling
        parameters.stopTokens = request.stopTokens
        parameters.prefillStepSize = prefillStepSize
        parameters.kvCacheType = kvCacheType
        do {
            var generator = try TokenGenerator(model: model, prompt: request.promptTokens, parameters: parameters)
            locked { s in
                s.promptTokensTotal += request.promptTokens.count
                s.activeKVBytes = generator.cache.reduce(0) { $0 + $1.storage.reduce(0) { $0 + $1.nbytes } }
            }
            let plain = request.tokenFilter == nil && !request.logprobs && request.topLogprobs == 0
            var step =
                plain ? nil : ConstrainedStep(generator: generator, request: request, contextLength: contextLength)
            while true {
                if job.isCancelled { return finish(.cancelled) }
                let token: EngineToken
                if step != nil {
                    guard let next = try step!.next() else { return finish(step!.finishReason) }
                    token = next
                } else {
                    guard let id = try generator.next() else { return finish(.length) }
                    token = EngineToken(id: id)
                }
                if request.stopTokens.contains(token.id) { return finish(.stop) }
                usage.completionTokens += 1
                locked { s in
                    s.generatedTokensTotal += 1
                    let cache = step?.cache ?? generator.cache
                    s.activeKVBytes = cache.reduce(0) { $0 + $1.storage.reduce(0) { $0 + $1.nbytes } }
                }
                job.continuation.yield(.token(token))
                if usage.completionTokens >= request.maxTokens
                    || request.promptTokens.count + usage.completionTokens >= contextLength
                {
                    return finish(.length)
                }
            }
        } catch let error as EngineError {
            fail(error)
        } catch let ModelError.promptTooLong(tokens, context) {
            fail(EngineError.contextExceeded(requested: tokens, context: context))
        } catch {
            fail(EngineError.evaluation("\(error)"))
        }
    }
}

/// Decoding step by step on the host when a request needs the logits: a
/// token filter masks them before sampling, and logprobs are their log-softmax.
struct ConstrainedStep {
    let model: any LanguageModel
    let cache: [KVCache]
    let request: EngineRequest
    let contextLength: Int
    var sampler: Sampler
    var history: [Int]
    var logits: Tensor?
    var generated: [Int] = []
    private(set) var finishReason = EngineFinishReason.length

    init(generator: TokenGenerator, request: EngineRequest, contextLength: Int) {
        model = generator.model
        cache = generator.cache
        self.request = request
        self.contextLength = contextLength
        sampler = generator.sampler
        history = generator.history
        logits = generator.pendingLogits
    }

    /// The next token with its log-probabilities, or nil when the sequence
    /// ends (`finishReason` says why).
    mutating func next() throws -> EngineToken? {
        guard generated.count < request.maxTokens, let logits else { return nil }
        try checkedEval([logits])
        var z = logits.toArray(Float.self)
        if let filter = request.tokenFilter {
            switch filter(generated) {
            case .any: break
            case .finished:
                finishReason = .stop
                return nil
            case .allowed(let ids):
                let valid = ids.filter { $0 >= 0 && $0 < z.count }
                guard !valid.isEmpty else {
                    throw EngineError.evaluation("the output constraint allows no token of the vocabulary")
                }
                var masked = [Float](repeating: -.infinity, count: z.count)
                for id in valid { masked[id] = z[id] }
                z = masked
            }
        }
        let id = sampler.sample(z, history: history)
        var token = EngineToken(id: id)
        if request.logprobs || request.topLogprobs > 0 {
            let logSoftmax = Self.logSoftmax(z)
            token.logprob = logSoftmax[id]
            if request.topLogprobs > 0 {
                token.top = Sampler.largest(min(request.topLogprobs, z.count), of: logSoftmax).map {
                    ($0, logSoftmax[$0])
                }
            }
        }
        generated.append(id)
        history.append(id)
        let position = cache.first.map(\.offset) ?? history.count
        if request.stopTokens.contains(id) || generated.count >= request.maxTokens || position + 1 >= contextLength {
            self.logits = nil
        } else {
            let row = model(Tensor([Int32(id)], shape: [1, 1]), cache: cache)[0, -1]
            try checkedEval([row] + cache.flatMap(\.storage))
            self.logits = row
        }
        return token
    }

    /// log(softmax(z)), in double for the sum; -inf where z is -inf.
    static func logSoftmax(_ z: [Float]) -> [Float] {
        guard let top = z.max(), top.isFinite else { return z }
        var sum = 0.0
        for v in z { sum += exp(Double(v - top)) }
        let logSum = Float(log(sum))
        return z.map { $0 - top - logSum }
    }
}
