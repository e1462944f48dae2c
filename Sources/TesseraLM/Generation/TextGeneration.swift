// Text in, text out: prompt formatting with the chat template, and
// generation as an AsyncThrowingStream of events (text pieces, token ids,
// final statistics), stopping at end-of-sequence tokens or stop strings.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera

/// What `generate` reports as it goes.
public enum GenerationEvent: Sendable {
    /// New text (never a partial UTF-8 character).
    case text(String)
    case token(Int)
    /// What happened with the prompt cache file (first, when one was given).
    case promptCache(PromptCacheUse)
    /// The end, with counts and speeds.
    case done(GenerationStats)
}

public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A model with its tokenizer, ready to generate text.
public struct TextGenerator: Sendable {
    public let model: any LanguageModel
    public let tokenizer: Tokenizer

    public init(model: any LanguageModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    public init(loaded: LoadedModel) throws {
        self.init(model: loaded.model, tokenizer: try loaded.tokenizer())
    }

    /// The prompt tokens for a conversation, through the chat template when the
    /// tokenizer has one (special tokens in message text stay text).
    public func promptTokens(messages: [ChatMessage]) throws -> [Int] {
        guard tokenizer.chatTemplate != nil else {
            return tokenizer.encode(messages.map(\.content).joined(separator: "\n"), splitSpecialTokens: false)
        }
        let rendered = try tokenizer.applyChatTemplate(
            messages: messages.map {
                .object(JSONObject([("role", .string($0.role)), ("content", .string($0.content))]))
            },
            addGenerationPrompt: true)
        return tokenizer.encode(rendered, addSpecialTokens: false)
    }

    /// Generates from `prompt` tokens, streaming events. With `promptCache`, the
    /// prompt's keys and values are reused from that file when it holds the
    /// prompt's first tokens, and saved to it otherwise. With `cache`, `prompt`
    /// continues the tokens those caches hold, and they advance as it goes.
    public func generate(
        prompt: [Int], parameters: GenerateParameters, stopStrings: [String] = [], promptCache: PromptCacheFile? = nil,
        cache: [KVCache]? = nil
    ) -> AsyncThrowingStream<GenerationEvent, Error> {
        var withEOS = parameters
        if let eos = tokenizer.eosTokenID { withEOS.stopTokens.insert(eos) }
        let parameters = withEOS, tokenizer = self.tokenizer, model = self.model
        return AsyncThrowingStream { continuation in
            let task = Task.detached {
                do {
                    var generator: TokenGenerator
                    // Prompt tokens computed before the generator's own (a prompt cache's first part).
                    var extraPrefill = (tokens: 0, seconds: 0.0)
                    if let promptCache {
                        let use: PromptCacheUse
                        (generator, use, extraPrefill.seconds) = try PromptCache.generator(
                            model: model, prompt: prompt, parameters: parameters, file: promptCache)
                        if case .saved(let n) = use { extraPrefill.tokens = n }
                        continuation.yield(.promptCache(use))
                    } else {
                        generator = try TokenGenerator(
                            model: model, prompt: prompt, parameters: parameters, cache: cache)
                    }
                    var detokenizer = tokenizer.streamingDetokenizer(skipSpecialTokens: true)
                    var text = ""
                    var emitted = 0
                    loop: while let token = try generator.next() {
                        try Task.checkCancellation()
                        continuation.yield(.token(token))
                        if parameters.stopTokens.contains(token) { break }
                        text += detokenizer.append(token)
                        // Hold back text that could be the start of a stop string.
                        for stop in stopStrings where !stop.isEmpty {
                            if let at = characterOffset(of: stop, in: text) {
                                let piece = String(text.dropFirst(emitted).prefix(Swift.max(0, at - emitted)))
                                if !piece.isEmpty { continuation.yield(.text(piece)) }
                                emitted = text.count
                                break loop
                            }
                        }
                        let holdBack =
                            stopStrings.map { stop in
                                (1..<Swift.max(stop.count, 1)).reversed().first {
                                    text.hasSuffix(String(stop.prefix($0)))
                                } ?? 0
                            }.max() ?? 0
                        let safeEnd = Swift.max(emitted, text.count - holdBack)
                        if safeEnd > emitted {
                            let start = text.index(text.startIndex, offsetBy: emitted)
                            continuation.yield(
                                .text(String(text[start..<text.index(text.startIndex, offsetBy: safeEnd)])))
                            emitted = safeEnd
                        }
                    }
                    let rest = text.count > emitted ? String(text.dropFirst(emitted)) + detokenizer.finish() : ""
                    if !rest.isEmpty { continuation.yield(.text(rest)) }
                    var stats = generator.stats
                    stats.promptTokens += extraPrefill.tokens
                    stats.prefillSeconds += extraPrefill.seconds
                    continuation.yield(.done(stats))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// The character offset of the first occurrence of `needle` in `text`.
func characterOffset(of needle: String, in text: String) -> Int? {
    let hay = Array(text), n = Array(needle)
    guard !n.isEmpty, hay.count >= n.count else { return nil }
    for start in 0...(hay.count - n.count) where hay[start] == n[0] && Array(hay[start..<(start + n.count)]) == n {
        return start
    }
    return nil
}
