// A conversation that keeps its key/value caches between turns: each turn
// prefills only the tokens the caches do not hold yet (the new message and
// the template's markup around it), not the whole history again.

/// A multi-turn chat over one model, its caches carried from turn to turn.
///
/// ```swift
/// var chat = ChatSession(generator: generator, parameters: parameters)
/// let first = try await chat.respond(to: "Hi!") { event in ... }
/// let second = try await chat.respond(to: "And then?")  // prefills the new message only
/// ```
public struct ChatSession: Sendable {
    public let generator: TextGenerator
    public var parameters: GenerateParameters
    /// The conversation so far, the system message first when there is one.
    public private(set) var messages: [ChatMessage]
    /// The tokens whose keys and values the caches hold, in order.
    public private(set) var cachedTokens: [Int] = []
    /// The caches carried between turns (nil before the first and after a reset).
    private(set) var cache: [KVCache]?
    private let system: ChatMessage?

    public init(generator: TextGenerator, parameters: GenerateParameters, system: String? = nil) {
        self.generator = generator
        self.parameters = parameters
        self.system = system.map { ChatMessage(role: "system", content: $0) }
        messages = self.system.map { [$0] } ?? []
    }

    /// Forgets the conversation (keeping the system message) and the caches.
    public mutating func reset() {
        messages = system.map { [$0] } ?? []
        cache = nil
        cachedTokens = []
    }

    /// The reply to `text`, with `onEvent` called on each event as it comes
    /// (an error it throws stops the reply). The conversation advances only
    /// when the reply completes. When the conversation and room for a reply
    /// (`parameters.maxTokens`, at most a quarter of the context) would
    /// outgrow the model's context, its oldest turns are dropped first (the
    /// system message stays).
    public mutating func respond(to text: String, onEvent: (GenerationEvent) throws -> Void = { _ in }) async throws
        -> ChatReply
    {
        var conversation = messages + [ChatMessage(role: "user", content: text)]
        var tokens = try generator.promptTokens(messages: conversation)
        var dropped = 0
        let first = system == nil ? 0 : 1
        // Room for the reply: maxTokens, but at most a quarter of the context.
        let room = min(parameters.maxTokens, generator.model.contextLength / 4)
        while tokens.count + room > generator.model.contextLength,
            let next = conversation[first...].dropFirst().firstIndex(where: { $0.role == "user" })
        {
            // Drop the oldest turn: its user message and everything up to the next one.
            dropped += next - first
            conversation.removeSubrange(first..<next)
            tokens = try generator.promptTokens(messages: conversation)
        }
        let (cache, reused) = reusableCache(for: tokens)
        var generated: [Int] = []
        var reply = ""
        var stats = GenerationStats()
        let events = generator.generate(prompt: Array(tokens[reused...]), parameters: parameters, cache: cache)
        do {
            for try await event in events {
                switch event {
                case .token(let token): generated.append(token)
                case .text(let piece): reply += piece
                case .done(let s): stats = s
                case .promptCache: break
                }
                try onEvent(event)
            }
        } catch {
            // A stopped generation may still be finishing a step on these
            // caches: the next turn starts from fresh ones.
            self.cache = nil
            cachedTokens = []
            throw error
        }
        messages = conversation + [ChatMessage(role: "assistant", content: reply)]
        self.cache = cache
        // The last token (a stop token, or the one at the length limit) got no forward pass.
        cachedTokens = Array((tokens + generated).prefix(cache.first?.offset ?? 0))
        return ChatReply(text: reply, stats: stats, droppedMessages: dropped)
    }

    /// Caches for `tokens` and how many of its first tokens they already hold:
    /// the kept caches cut back to what they share with `tokens` (at least one
    /// token is left to compute), or fresh ones when they cannot be cut.
    private func reusableCache(for tokens: [Int]) -> (cache: [KVCache], reused: Int) {
        let fresh = { (parameters.makeCache(for: generator.model), 0) }
        guard let cache, let offset = cache.first?.offset else { return fresh() }
        let shared = min(zip(cachedTokens, tokens).prefix { $0 == $1 }.count, tokens.count - 1)
        if shared == offset { return (cache, shared) }
        // The reply re-tokenized inside the template can differ from the
        // tokens generated: cut back to the shared part.
        guard shared > 0, shared < offset, cache.allSatisfy({ $0.canRemoveLast && $0.offset == offset }) else {
            return fresh()
        }
        for c in cache { c.removeLast(offset - shared) }
        return (cache, shared)
    }
}

/// One turn's outcome.
public struct ChatReply: Sendable {
    public var text: String
    public var stats: GenerationStats
    /// Messages of the oldest turns dropped to keep the conversation in the context.
    public var droppedMessages: Int
}
