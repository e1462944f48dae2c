// The seam between an HTTP server and the model: requests of token ids in,
// a stream of token events out. A server (TesseraServer) speaks the wire
// formats and templates; an engine owns the model, its caches and the
// scheduling of sequences (one at a time, or continuously batched).

import Tessera

/// One generation request, already tokenized.
public struct EngineRequest: Sendable {
    public var promptTokens: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Token ids that end the sequence (the model's EOS, end-of-turn ids).
    public var stopTokens: Set<Int>
    /// How many most-likely alternatives to report with each token (0: none;
    /// OpenAI's `top_logprobs`). `logprobs` asks for the chosen token's own.
    public var logprobs: Bool
    public var topLogprobs: Int
    /// Restricts the next token to the ids a constraint allows (structured
    /// output); nil: any token. Called once per step with the tokens so far.
    public var tokenFilter: (@Sendable (_ generated: [Int]) -> TokenConstraint)?

    public init(
        promptTokens: [Int], maxTokens: Int, sampling: SamplingParameters = .greedy, stopTokens: Set<Int> = [],
        logprobs: Bool = false, topLogprobs: Int = 0,
        tokenFilter: (@Sendable (_ generated: [Int]) -> TokenConstraint)? = nil
    ) {
        self.promptTokens = promptTokens
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopTokens = stopTokens
        self.logprobs = logprobs
        self.topLogprobs = topLogprobs
        self.tokenFilter = tokenFilter
    }
}

/// What a constraint allows as the next token.
public enum TokenConstraint: Sendable {
    case any
    /// Only these ids (never empty while the constraint is unfinished).
    case allowed(Set<Int>)
    /// The constrained output is complete: end the sequence (reason `.stop`).
    case finished
}

/// Why a sequence ended.
public enum EngineFinishReason: String, Sendable {
    /// A stop token (not reported as text) or a finished constraint.
    case stop
    /// `maxTokens` reached, or the context is full.
    case length
    /// The consumer went away (client disconnect) or the engine shut down.
    case cancelled
}

/// One generated token, with log-probabilities when asked.
public struct EngineToken: Sendable {
    public var id: Int
    public var logprob: Float?
    /// The `topLogprobs` most likely ids and their log-probabilities, best first.
    public var top: [(id: Int, logprob: Float)]

    public init(id: Int, logprob: Float? = nil, top: [(id: Int, logprob: Float)] = []) {
        self.id = id
        self.logprob = logprob
        self.top = top
    }
}

/// Token counts for `usage`.
public struct EngineUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens whose KV came from the prefix cache (not recomputed).
    public var cachedPromptTokens: Int

    public init(promptTokens: Int, completionTokens: Int, cachedPromptTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedPromptTokens = cachedPromptTokens
    }
}

public enum EngineEvent: Sendable {
    case token(EngineToken)
    /// The last event of every stream (a stop token is not sent as `.token`).
    case finished(EngineFinishReason, EngineUsage)
}

/// Errors an engine reports before or while generating.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    /// The queue is full: retry after the given seconds (HTTP 429).
    case overloaded(retryAfterSeconds: Int)
    /// prompt + max tokens exceed the context (HTTP 400).
    case contextExceeded(requested: Int, context: Int)
    case invalidRequest(String)
    case shuttingDown
    /// Evaluation failed (out of memory, a device error) for this sequence.
    case evaluation(String)

    public var description: String {
        switch self {
        case .overloaded(let s): "the server is busy; retry in \(s) s"
        case .contextExceeded(let r, let c):
            "the prompt and max tokens need \(r) positions, but the model's context is \(c)"
        case .invalidRequest(let m): m
        case .shuttingDown: "the server is shutting down"
        case .evaluation(let m): "generation failed: \(m)"
        }
    }
}

/// Owns a model and runs requests on it. `submit` validates at once (throws
/// `EngineError`); the returned stream yields tokens as they are made and
/// ends with `.finished`. When the consumer stops iterating (its task is
/// cancelled, the stream is dropped), the engine ends that sequence within
/// one decode step and frees its cache.
public protocol GenerationEngine: Sendable {
    var contextLength: Int { get }
    var vocabularySize: Int { get }
    func submit(_ request: EngineRequest) throws -> AsyncThrowingStream<EngineEvent, any Error>
    /// Counters for /metrics.
    func snapshot() -> EngineSnapshot
    /// Stops accepting requests; in-flight sequences end (`.cancelled`) or finish.
    func shutdown() async
}

/// Engine state for metrics and tests (no leaked sequences or bytes).
public struct EngineSnapshot: Sendable, Equatable {
    public var activeSequences: Int
    public var queuedSequences: Int
    public var kvCacheBytes: Int
    public var prefixCacheBytes: Int
    public var prefixCacheHitTokens: Int
    public var promptTokensTotal: Int
    public var generatedTokensTotal: Int
    /// Passes that replayed a captured step instead of building a graph (BatchedEngine).
    public var replayedDecodeSteps: Int

    public init(
        activeSequences: Int = 0, queuedSequences: Int = 0, kvCacheBytes: Int = 0, prefixCacheBytes: Int = 0,
        prefixCacheHitTokens: Int = 0, promptTokensTotal: Int = 0, generatedTokensTotal: Int = 0,
        replayedDecodeSteps: Int = 0
    ) {
        self.replayedDecodeSteps = replayedDecodeSteps
        self.activeSequences = activeSequences
        self.queuedSequences = queuedSequences
        self.kvCacheBytes = kvCacheBytes
        self.prefixCacheBytes = prefixCacheBytes
        self.prefixCacheHitTokens = prefixCacheHitTokens
        self.promptTokensTotal = promptTokensTotal
        self.generatedTokensTotal = generatedTokensTotal
    }
}
