// The model as the server sees it: a name, a tokenizer and chat template, and
// an engine. Runs one sequence and turns its token events into text deltas,
// with stop strings, timing metrics and usage.

#if canImport(Glibc)
    import Glibc
#endif
import Synchronization
import Tessera
import TesseraLM

/// Why a choice's text ended, in the server's terms.
enum FinishReason: Sendable, Equatable {
    case stop(String?)  // a stop token, a finished constraint, or this stop string
    case length
    case cancelled
}

/// A model served over HTTP.
public final class ServedModel: Sendable {
    public let name: String
    public let engine: any GenerationEngine
    public let tokenizer: Tokenizer
    /// Token ids that end a reply (the tokenizer's end of sequence).
    public let stopTokens: Set<Int>
    public let created: Int
    /// How this model writes tool calls (from its chat template's markers, else its model type).
    public let toolCallFormat: ToolCallFormat?
    /// The vocabulary as a byte trie for constrained decoding, built by the first request that needs it.
    private let vocabularyCache = Mutex<TokenVocabulary?>(nil)

    public init(
        name: String, engine: any GenerationEngine, tokenizer: Tokenizer, extraStopTokens: Set<Int> = [],
        modelType: String? = nil
    ) {
        self.name = name
        self.engine = engine
        self.tokenizer = tokenizer
        var stops = extraStopTokens
        if let eos = tokenizer.eosTokenID { stops.insert(eos) }
        stopTokens = stops
        created = Int(wallClock())
        toolCallFormat = ToolCallFormat.detect(chatTemplate: tokenizer.chatTemplate, modelType: modelType)
    }

    /// The prompt tokens of a conversation (role/content message objects),
    /// through the chat template as `tessera generate` and `chat` render it.
    /// `tools`: OpenAI function tools for the template (nil: none).
    func chatTokens(_ messages: [JSONValue], tools: [JSONValue]? = nil) throws(APIError) -> [Int] {
        guard tokenizer.chatTemplate != nil else {
            let text = messages.compactMap { $0["content"]?.string }.joined(separator: "\n")
            return tokenizer.encode(text, splitSpecialTokens: false)
        }
        do {
            let rendered = try tokenizer.applyChatTemplate(
                messages: ToolCall.messagesForTemplate(messages), tools: tools, addGenerationPrompt: true)
            return tokenizer.encode(rendered, addSpecialTokens: false)
        } catch {
            throw APIError.invalid("the chat template could not render these messages: \(error)", param: "messages")
        }
    }

    /// The tokenizer's vocabulary trie (built once, on first use).
    var vocabulary: TokenVocabulary {
        vocabularyCache.withLock { cached in
            if let cached { return cached }
            let built = TokenVocabulary(tokenizer: tokenizer)
            cached = built
            return built
        }
    }

    /// The constraint enforcing `format` on one sequence (nil for text);
    /// a schema it cannot enforce is a 400 naming why.
    func constraint(for format: ResponseFormat, maxTokens: Int) throws(APIError) -> JSONConstraint? {
        if format == .text { return nil }
        do {
            return try JSONConstraint(
                format: format, vocabulary: vocabulary, endTokens: stopTokens, maxTokens: maxTokens)
        } catch {
            throw APIError.invalid(error.description, param: "response_format")
        }
    }

    /// A plain prompt's tokens (with the tokenizer's BOS), as `tessera generate --no-chat-template`.
    func promptTokens(_ text: String) -> [Int] {
        tokenizer.encode(text, addSpecialTokens: true)
    }

    /// The text of one token, for logprobs.
    func tokenText(_ id: Int) -> String {
        tokenizer.decode([id])
    }

    /// Checks that `name` is this model (404 otherwise).
    func check(model requested: String) throws(APIError) {
        guard requested == name else {
            throw APIError(
                .notFound, "the model '\(requested)' does not exist; this server serves '\(name)'", param: "model")
        }
    }
}

/// One sequence's text as it is made.
struct TextDelta {
    var text: String
    /// The tokens consumed since the previous delta (for logprobs).
    var tokens: [EngineToken]
}

/// How a sequence ended.
struct SequenceEnd {
    var reason: FinishReason
    var usage: EngineUsage
}

extension ServedModel {
    /// Submits `request` (throws the engine's refusal at once).
    func start(_ request: EngineRequest) throws(APIError) -> AsyncThrowingStream<EngineEvent, any Error> {
        do {
            return try engine.submit(request)
        } catch let error as EngineError {
            throw APIError(error)
        } catch {
            throw APIError.from(error)
        }
    }

    /// Consumes one engine stream, calling `onDelta` with text as it becomes
    /// safe to send (never part of a stop string). Returning early (a stop
    /// string, or `onDelta` throwing because the client left) drops the
    /// stream, which cancels the sequence in the engine; so does a client
    /// that left (ClientConnection.gone), checked at every token.
    /// `keepSpecialTokens`: decode special tokens as text (tool-call markers such as `[TOOL_CALLS]`).
    func drive(
        _ stream: AsyncThrowingStream<EngineEvent, any Error>, stops: [String], metrics: ServerMetrics, started: Double,
        keepSpecialTokens: Bool = false, onDelta: (TextDelta) async throws -> Void
    ) async throws -> SequenceEnd {
        var matcher = StopStringMatcher(stops: stops)
        var detokenizer = tokenizer.streamingDetokenizer(skipSpecialTokens: !keepSpecialTokens)
        var pendingTokens: [EngineToken] = []
        var generated = 0
        var last = started
        for try await event in stream {
            switch event {
            case .token(let token):
                if let gone = ClientConnection.gone, gone() {
                    // The client of a non-streamed request left: end the sequence now.
                    metrics.recordCancelledStream()
                    return SequenceEnd(
                        reason: .cancelled,
                        usage: EngineUsage(promptTokens: 0, completionTokens: generated, cachedPromptTokens: 0))
                }
                let t = wallClock()
                if generated == 0 {
                    metrics.observeTimeToFirstToken(t - started)
                } else {
                    metrics.observeInterToken(t - last)
                }
                last = t
                generated += 1
                pendingTokens.append(token)
                let text = matcher.append(detokenizer.append(token.id))
                if let stop = matcher.matched {
                    if !text.isEmpty || !pendingTokens.isEmpty {
                        try await onDelta(TextDelta(text: text, tokens: pendingTokens))
                    }
                    return SequenceEnd(
                        reason: .stop(stop),
                        usage: EngineUsage(promptTokens: 0, completionTokens: generated, cachedPromptTokens: 0))
                }
                if !text.isEmpty {
                    try await onDelta(TextDelta(text: text, tokens: pendingTokens))
                    pendingTokens = []
                }
            case .finished(let reason, let usage):
                let rest = matcher.append(detokenizer.finish()) + matcher.finish()
                if !rest.isEmpty || !pendingTokens.isEmpty {
                    try await onDelta(TextDelta(text: rest, tokens: pendingTokens))
                }
                let finish: FinishReason =
                    if let stop = matcher.matched {
                        .stop(stop)
                    } else {
                        switch reason {
                        case .stop: .stop(nil)
                        case .length: .length
                        case .cancelled: .cancelled
                        }
                    }
                return SequenceEnd(reason: finish, usage: usage)
            }
        }
        return SequenceEnd(
            reason: .cancelled, usage: EngineUsage(promptTokens: 0, completionTokens: generated, cachedPromptTokens: 0))
    }
}

/// Seconds since the epoch.
func wallClock() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_REALTIME, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// A random id suffix: 24 hex digits.
func randomID() -> String {
    var g = SystemRandomNumberGenerator()
    return (0..<3).map { _ in String(UInt32.random(in: 0...UInt32.max, using: &g), radix: 16) }.joined()
}
