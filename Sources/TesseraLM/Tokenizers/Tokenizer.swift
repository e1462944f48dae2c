// Tokenizer: text <-> token ids for byte-level BPE (GPT-2, Llama 3, Qwen2,
// SmolLM) and SentencePiece-style BPE with byte fallback (Llama 2, Mistral),
// with the same results as Hugging Face `tokenizers`.
//
// Pipeline (as in HF): split out added tokens on the raw text -> normalize
// each remaining piece -> split out normalized added tokens -> pre-tokenize
// into words -> BPE each word -> post-process (add BOS...) when asked.
// Loading: TokenizerLoading.swift (tokenizer.json) and TokenizerMetadata.swift
// (plain arrays, as GGUF stores them).

import Tessera

/// A text tokenizer. Immutable and safe to share across tasks.
///
/// ```swift
/// let tokenizer = try Tokenizer(directory: "/models/SmolLM2")
/// let ids = tokenizer.encode("Hello world")        // [19556, 905]
/// tokenizer.decode(ids)                            // "Hello world"
/// ```
public final class Tokenizer: Sendable {
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: BPEModel
    let decoder: TokenDecoder?
    let postProcessor: PostProcessor?
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    /// The same without special tokens, for `splitSpecialTokens: false`.
    let rawMatcherNoSpecial: AddedTokenMatcher
    let normalizedMatcherNoSpecial: AddedTokenMatcher

    /// Every added token (special and not), in id order.
    public let addedTokens: [AddedToken]
    private let addedByID: [Int: AddedToken]
    private let addedByContent: [String: Int]

    /// The beginning-of-sequence token, if the tokenizer names one.
    public let bosTokenID: Int?
    /// The end-of-sequence token, if the tokenizer names one.
    public let eosTokenID: Int?
    /// The unknown token, if any.
    public let unknownTokenID: Int?
    /// The Jinja chat template shipped with the tokenizer, if any.
    public let chatTemplate: String?

    init(
        normalizer: Normalizer?, preTokenizer: PreTokenizer?, model: BPEModel, decoder: TokenDecoder?,
        postProcessor: PostProcessor?, addedTokens: [AddedToken], bosTokenID: Int?, eosTokenID: Int?,
        chatTemplate: String?
    ) {
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.decoder = decoder
        self.postProcessor = postProcessor
        let sorted = addedTokens.sorted { $0.id < $1.id }
        self.addedTokens = sorted
        var byID: [Int: AddedToken] = [:], byContent: [String: Int] = [:]
        for t in sorted {
            byID[t.id] = t
            byContent[t.content] = t.id
        }
        addedByID = byID
        addedByContent = byContent
        let normalizedPattern = { (t: AddedToken) -> String in
            guard let normalizer else { return t.content }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: normalizer.apply(Array(t.content.unicodeScalars)))
            return String(view)
        }
        rawMatcher = AddedTokenMatcher(sorted.filter { !$0.normalized }) { $0.content }
        normalizedMatcher = AddedTokenMatcher(sorted.filter { $0.normalized }, pattern: normalizedPattern)
        rawMatcherNoSpecial = AddedTokenMatcher(sorted.filter { !$0.normalized && !$0.special }) { $0.content }
        normalizedMatcherNoSpecial = AddedTokenMatcher(
            sorted.filter { $0.normalized && !$0.special }, pattern: normalizedPattern)
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.unknownTokenID = model.unknownID
        self.chatTemplate = chatTemplate
    }

    /// The number of ids: the largest id plus one.
    public var vocabularySize: Int {
        max(model.idToToken.keys.max() ?? -1, addedTokens.last?.id ?? -1) + 1
    }

    /// The id of a token string (added tokens first, then the model's vocabulary).
    public func tokenID(_ token: String) -> Int? {
        addedByContent[token] ?? model.vocab[token]
    }

    /// The token string of an id, or nil when no token has it.
    public func token(_ id: Int) -> String? {
        addedByID[id]?.content ?? model.idToToken[id]
    }

    /// Whether `id` is a special (control) token.
    public func isSpecial(_ id: Int) -> Bool {
        addedByID[id]?.special ?? false
    }

    /// Whether `encode(_:addSpecialTokens: true)` starts with the BOS token.
    public var addsBOSToken: Bool {
        guard let bosTokenID else { return false }
        return postProcessor?.apply([]).first == bosTokenID
    }

    /// Encodes text to token ids. Added and special tokens written in the
    /// text (`<|im_start|>`) become their ids, unless `splitSpecialTokens`
    /// is false (HF's `encode_special_tokens`): then special tokens are
    /// encoded as plain text, so untrusted text cannot inject control tokens.
    /// `addSpecialTokens` applies the tokenizer's post-processor (for
    /// example a BOS token for Llama).
    ///
    /// - Complexity: O(n log n) in the length of the longest word; words are cached.
    public func encode(_ text: String, addSpecialTokens: Bool = true, splitSpecialTokens: Bool = true) -> [Int] {
        let rawMatcher = splitSpecialTokens ? self.rawMatcher : rawMatcherNoSpecial
        let normalizedMatcher = splitSpecialTokens ? self.normalizedMatcher : normalizedMatcherNoSpecial
        var ids: [Int] = []
        for segment in rawMatcher.split(text) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let raw, let start):
                var scalars = Array(raw.unicodeScalars)
                if let normalizer { scalars = normalizer.apply(scalars) }
                var view = String.UnicodeScalarView()
                view.append(contentsOf: scalars)
                for inner in normalizedMatcher.split(String(view)) {
                    switch inner {
                    case .token(let id):
                        ids.append(id)
                    case .text(let piece, let innerStart):
                        let first = Piece(piece, isFirst: start == 0 && innerStart == 0)
                        let words = preTokenizer?.apply([first]) ?? [first]
                        for word in words { model.tokenize(word.scalars, into: &ids) }
                    }
                }
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.apply(ids) }
        return ids
    }

    /// Decodes ids to text. Unknown ids are skipped; `skipSpecialTokens`
    /// drops special tokens such as `<|im_end|>`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let t = token(id) else { continue }
            if skipSpecialTokens, addedByID[id]?.special == true { continue }
            tokens.append(t)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens)
    }

    /// A detokenizer that turns ids into text as they arrive, never cutting a
    /// character in half.
    public func streamingDetokenizer(skipSpecialTokens: Bool = false) -> StreamingDetokenizer {
        StreamingDetokenizer(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}
