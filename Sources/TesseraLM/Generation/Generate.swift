// The generation loop: chunked prefill of the prompt, then one token at a
// time through the key/value caches, each step sampled on the host.

#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import Tessera

/// Limits and choices for one generation.
public struct GenerateParameters: Sendable {
    public var maxTokens = 256
    public var sampling = SamplingParameters()
    /// Prompt tokens per forward pass during prefill.
    public var prefillStepSize = 512
    /// Keep at most this many positions in each cache (rotating cache).
    public var maxKVSize: Int?
    /// Store keys and values quantized (nil: full precision).
    public var kvQuantization: KVQuantization?
    /// With `kvQuantization`: keep the caches in full precision until they
    /// hold more than this many positions (mlx-lm's `quantized_kv_start`), so
    /// short conversations keep full quality. 0: quantized from the start.
    public var quantizedKVStart = 0
    /// Token ids that end generation (the model's end-of-sequence ids).
    public var stopTokens: Set<Int> = []
    /// Queue each decode step before reading the previous token, when the
    /// sampling needs no host (greedy without penalties or biases) and the
    /// caches can take a step back; false: strictly step by step. nil:
    /// pipelined where building a step does not take a core from computing
    /// the previous one (a GPU stream, or a core the CPU kernels leave free).
    public var pipelined: Bool? = nil
    /// Replay a captured decode step (`DecodePlan`: fixed buffers and a list
    /// of kernel calls, no graph) where the model, its caches and the device
    /// allow; its logits are the graph path's bit for bit. false: every step
    /// through the graph. Pipelined decoding (`pipelined: true`) keeps the graph.
    public var replayDecode = true
    /// How fresh growing full-precision caches store keys and values: `.f16`
    /// (the default, as llama.cpp's: half the bytes a long context reads per
    /// step; attention widens them to float32 in registers) or `.f32`. Not
    /// used by rotating (`maxKVSize`) or quantized (`kvQuantization`) storage.
    public var kvCacheType = KVCacheType.f16
    /// Whether `kvCacheType` is `.f16`.
    public var halfPrecisionKV: Bool {
        get { kvCacheType == .f16 }
        set { kvCacheType = newValue ? .f16 : .f32 }
    }

    /// Whether `pipelined: nil` pipelines: on a GPU stream, or with a core
    /// the CPU kernels leave free. On 2 cores both busy with a step's
    /// kernels, building the next step beside them only slowed decoding
    /// (docs/PERFORMANCE.md).
    public static var pipeliningPays: Bool {
        if case .gpu = Stream.current.device { return true }
        return ProcessInfo.processInfo.activeProcessorCount > _CPUKernels.threadCount
    }

    public init() {}

    /// The quantization fresh caches start with: none while `quantizedKVStart` is ahead.
    public var initialKVQuantization: KVQuantization? { quantizedKVStart > 0 ? nil : kvQuantization }

    /// Fresh caches for `model` as these parameters ask: `maxKVSize`, the
    /// initial quantization, and `kvCacheType` for the growing ones.
    public func makeCache(for model: any LanguageModel) -> [KVCache] {
        let caches = model.makeCache(maxSize: maxKVSize, quantization: initialKVQuantization)
        if kvCacheType == .f16 { for c in caches where c.maxSize == nil { c.halfPrecision = true } }
        return caches
    }

    /// Switches `cache` to quantized storage once it holds more than `quantizedKVStart` positions.
    func quantizeIfDue(_ cache: [KVCache]) {
        guard let q = kvQuantization, let offset = cache.first?.offset, offset > quantizedKVStart else { return }
        for c in cache where c.quantization == nil { c.startQuantizing(q) }
    }
}

/// Timing and counts of a finished generation.
public struct GenerationStats: Sendable {
    public init() {}
    public var promptTokens = 0
    public var generatedTokens = 0
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0
    public var peakMemory = 0
    /// Decode steps that ran as a replay of the captured step (`GenerateParameters.replayDecode`), not through the graph.
    public var replayedSteps = 0
    public var promptTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    public var tokensPerSecond: Double { decodeSeconds > 0 ? Double(generatedTokens) / decodeSeconds : 0 }
}

/// Produces tokens one by one; drives the model and its caches.
public struct TokenGenerator: Sendable {
    let model: any LanguageModel
    let parameters: GenerateParameters
    let cache: [KVCache]
    var sampler: Sampler
    var history: [Int]
    var pendingLogits: Tensor?
    /// Pipelined greedy decoding: the next token, picked on the graph and in flight.
    var pendingToken: Tensor?
    /// The captured decode step, where the model allows one.
    let plan: DecodePlan?
    public private(set) var stats = GenerationStats()
    private var produced = 0

    /// Runs the prompt through the model (prefill) so `next()` can generate.
    /// With `cache` (e.g. from `PromptCache.load`), `prompt` continues what it holds.
    public init(
        model: any LanguageModel, prompt: [Int], parameters: GenerateParameters, cache existing: [KVCache]? = nil
    )
        throws
    {
        guard !prompt.isEmpty else { throw ModelError.invalidConfiguration("the prompt is empty") }
        let cached = existing?.first?.offset ?? 0
        guard cached + prompt.count < model.contextLength else {
            throw ModelError.promptTooLong(tokens: cached + prompt.count, context: model.contextLength)
        }
        let fresh = parameters.makeCache(for: model)
        if let existing, existing.count != fresh.count {
            throw ModelError.invalidConfiguration("\(existing.count) caches for a model of \(fresh.count) layers")
        }
        if let bad = prompt.first(where: { $0 < 0 || $0 >= model.vocabularySize }) {
            throw ModelError.invalidConfiguration(
                "token id \(bad) is outside the vocabulary of \(model.vocabularySize)")
        }
        self.model = model
        self.parameters = parameters
        cache = existing ?? fresh
        sampler = Sampler(parameters.sampling)
        history = prompt
        plan = parameters.replayDecode ? DecodePlan.make(model) : nil
        Memory.resetPeak()
        let start = now()
        var last: Tensor?
        var at = 0
        while at < prompt.count {
            let chunk = Array(prompt[at..<Swift.min(prompt.count, at + Swift.max(1, parameters.prefillStepSize))])
            let logits = model.lastLogits(Tensor(chunk.map { Int32($0) }, shape: [1, chunk.count]), cache: cache)
            at += chunk.count
            // Evaluate each chunk with the caches, so the next chunk starts from
            // computed state (their storage: `state` would add a view per tensor).
            try checkedEval([logits] + cache.flatMap(\.storage))
            last = logits[0, -1]
            parameters.quantizeIfDue(cache)
        }
        if let last { try checkedEval([last]) }
        pendingLogits = last
        stats.promptTokens = prompt.count
        stats.prefillSeconds = now() - start
    }

    /// The logits the next token will be drawn from (the last prompt position at first).
    public var nextLogits: Tensor? { pendingLogits }

    /// The next token, or nil when done (stop token or `maxTokens`). Throws
    /// what evaluation throws (out of memory past the limit, a device error).
    public mutating func next() throws -> Int? {
        guard produced < parameters.maxTokens, let logits = pendingLogits else { return nil }
        // Here no step waits to be taken back (removeLast needs full precision).
        parameters.quantizeIfDue(cache)
        let start = now()
        defer {
            stats.generatedTokens = produced
            stats.decodeSeconds += now() - start
            stats.peakMemory = Memory.peakBytes
        }
        let position = cache.first.map(\.offset) ?? history.count
        // Whether a forward pass follows this token, unless it is a stop token.
        let continues = produced + 1 < parameters.maxTokens && position + 1 < model.contextLength
        if canPipeline {
            // Greedy picks on the graph: the next step is built and queued
            // before this token is read, so building it overlaps computing
            // this one (as mlx-lm does); a stop token then takes that step back.
            let chosen = pendingToken ?? logits.argMax(axis: -1)
            if continues {
                let row = model(chosen.reshaped([1, 1]), cache: cache)[0, -1]
                let picked = row.argMax(axis: -1)
                asyncEval([chosen, picked, row] + cache.flatMap(\.storage))
                pendingLogits = row
                pendingToken = picked
            } else {
                pendingLogits = nil
                pendingToken = nil
            }
            try checkedEval([chosen])
            let token = chosen.item(Int.self)
            produced += 1
            history.append(token)
            if parameters.stopTokens.contains(token) {
                if continues {
                    try checkedEval(cache.flatMap(\.storage))
                    for c in cache { c.removeLast(1) }
                }
                pendingLogits = nil
                pendingToken = nil
            }
            return token
        }
        try checkedEval([logits])
        let token = sampler.sample(logits.toArray(Float.self), history: history)
        produced += 1
        history.append(token)
        if parameters.stopTokens.contains(token) || !continues {
            pendingLogits = nil
        } else if let row = plan?.step(token: token, cache: cache) {
            pendingLogits = row
            stats.replayedSteps += 1
        } else {
            let out = model(Tensor([Int32(token)], shape: [1, 1]), cache: cache)
            let row = out[0, -1]
            try checkedEval([row] + cache.flatMap(\.storage))
            pendingLogits = row
        }
        return token
    }

    /// Greedy sampling with nothing that needs the host (penalties, biases),
    /// and caches that can take back a step (growing, full precision).
    private var canPipeline: Bool {
        let p = parameters.sampling
        // Unasked, a replayed step (little host work to overlap) is preferred to pipelining.
        return (parameters.pipelined ?? (GenerateParameters.pipeliningPays && plan == nil)) && p.temperature <= 0
            && p.repetitionPenalty == 1 && p.presencePenalty == 0
            && p.frequencyPenalty == 0 && p.logitBias.isEmpty && cache.allSatisfy(\.canRemoveLast)
    }
}

/// Seconds on the monotonic ContinuousClock since the first call (for differences only).
func now() -> Double {
    (ContinuousClock.now - clockOrigin).seconds
}

private let clockOrigin = ContinuousClock.now

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
