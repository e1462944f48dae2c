// Building a Tokenizer from plain arrays, as a GGUF file's `tokenizer.ggml.*`
// metadata holds them. The pre-tokenizer name (`tokenizer.ggml.pre`) picks
// the pipeline Hugging Face uses for that model family:
//   gpt2 / default  ByteLevel with the GPT-2 regex
//   smollm          individual digits, then ByteLevel with the GPT-2 regex
//   llama-bpe       Llama 3 regex split, ByteLevel bytes, ignore_merges
//   qwen2           NFC, Qwen2 regex split, ByteLevel bytes
// and model "llama" is SentencePiece-style BPE: "▁" for spaces (prepended
// when add_space_prefix), <0xNN> byte fallback, merges ranked by score.

import Tessera

/// The vocabulary arrays and ids a GGUF file stores under `tokenizer.ggml.*`.
public struct TokenizerMetadata: Sendable {
    /// Token types as GGUF numbers them.
    public enum TokenType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE).
    public var model: String
    /// `tokenizer.ggml.pre`: "gpt2", "smollm", "llama-bpe", "qwen2", ... (nil: "default").
    public var preTokenizer: String?
    /// `tokenizer.ggml.tokens`, indexed by id.
    public var tokens: [String]
    /// `tokenizer.ggml.token_type`, same length as `tokens` (nil: all normal).
    public var tokenTypes: [Int32]?
    /// `tokenizer.ggml.merges` ("a b" strings; byte-level models).
    public var merges: [String]?
    /// `tokenizer.ggml.scores` (SentencePiece models without merges).
    public var scores: [Float]?
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    public var unknownTokenID: Int?
    /// `tokenizer.ggml.add_bos_token` (nil: true for "llama", false otherwise).
    public var addBOSToken: Bool?
    public var addEOSToken: Bool?
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece; nil: true).
    public var addSpacePrefix: Bool?
    /// `tokenizer.chat_template`.
    public var chatTemplate: String?

    public init(
        model: String, preTokenizer: String? = nil, tokens: [String], tokenTypes: [Int32]? = nil,
        merges: [String]? = nil, scores: [Float]? = nil, bosTokenID: Int? = nil, eosTokenID: Int? = nil,
        unknownTokenID: Int? = nil, addBOSToken: Bool? = nil, addEOSToken: Bool? = nil,
        addSpacePrefix: Bool? = nil, chatTemplate: String? = nil
    ) {
        self.model = model
        self.preTokenizer = preTokenizer
        self.tokens = tokens
        self.tokenTypes = tokenTypes
        self.merges = merges
        self.scores = scores
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.unknownTokenID = unknownTokenID
        self.addBOSToken = addBOSToken
        self.addEOSToken = addEOSToken
        self.addSpacePrefix = addSpacePrefix
        self.chatTemplate = chatTemplate
    }
}

extension Tokenizer {
    /// Builds a tokenizer from GGUF-style arrays.
    ///
    /// ```swift
    /// let meta = TokenizerMetadata(model: "gpt2", preTokenizer: "smollm", tokens: tokens,
    ///                              tokenTypes: types, merges: merges, bosTokenID: 1, eosTokenID: 2)
    /// let tokenizer = try Tokenizer(metadata: meta)
    /// ```
    public convenience init(metadata m: TokenizerMetadata) throws(TokenizerError) {
        if let types = m.tokenTypes, types.count != m.tokens.count {
            throw .malformed("\(types.count) token types for \(m.tokens.count) tokens")
        }
        for id in [m.bosTokenID, m.eosTokenID, m.unknownTokenID].compactMap({ $0 }) where !m.tokens.indices.contains(id) {
            throw .malformed("token id \(id) is outside the vocabulary of \(m.tokens.count)")
        }
        guard m.tokens.count <= Int(Int32.max) else { throw .malformed("\(m.tokens.count) tokens is too many") }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(m.tokens.count)
        for (id, t) in m.tokens.enumerated() where vocab[t] == nil { vocab[t] = id }

        // Control tokens are special added tokens; user-defined ones are added
        // tokens that are not special (both are split out before BPE).
        var added: [AddedToken] = []
        for (id, raw) in (m.tokenTypes ?? []).enumerated() {
            switch TokenizerMetadata.TokenType(rawValue: raw) {
            case .control: added.append(AddedToken(content: m.tokens[id], id: id, special: true))
            case .userDefined: added.append(AddedToken(content: m.tokens[id], id: id, special: false))
            default: break
            }
        }

        let normalizer: Normalizer?
        let preTokenizer: PreTokenizer?
        let decoder: TokenDecoder
        let model: BPEModel
        let addBOS: Bool
        switch m.model {
        case "gpt2":
            guard let merges = m.merges else { throw .malformed("gpt2 tokenizer without merges") }
            var pairs: [(String, String)] = []
            pairs.reserveCapacity(merges.count)
            for s in merges {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw .malformed("merge \"\(s)\" is not two tokens") }
                pairs.append((String(parts[0]), String(parts[1])))
            }
            let byteLevel = PreTokenizer.byteLevel(addPrefixSpace: false, useRegex: false)
            let gpt2 = PreTokenizer.byteLevel(addPrefixSpace: false, useRegex: true)
            var ignoreMerges = false
            switch m.preTokenizer ?? "default" {
            case "default", "gpt2", "gpt-2":
                normalizer = nil
                preTokenizer = gpt2
            case "smollm":
                normalizer = nil
                preTokenizer = .sequence([.digits(individual: true), gpt2])
            case "llama-bpe", "llama3":
                normalizer = nil
                preTokenizer = .sequence([.split(.known(.llama3), behavior: .isolated, invert: false), byteLevel])
                ignoreMerges = true
            case "qwen2":
                normalizer = .nfc
                preTokenizer = .sequence([.split(.known(.qwen2), behavior: .isolated, invert: false), byteLevel])
            case let other:
                throw .unsupported("pre-tokenizer \"\(other)\"")
            }
            decoder = .byteLevel
            model = BPEModel(
                vocab: vocab, merges: try BPEModel.merges(pairs, vocab: vocab), unknownID: m.unknownTokenID,
                fuseUnknown: false, byteFallback: false, ignoreMerges: ignoreMerges)
            addBOS = m.addBOSToken ?? false

        case "llama":
            let merges: [UInt64: BPEModel.Merge]
            if let list = m.merges {
                var pairs: [(String, String)] = []
                for s in list {
                    let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                    guard parts.count == 2 else { throw .malformed("merge \"\(s)\" is not two tokens") }
                    pairs.append((String(parts[0]), String(parts[1])))
                }
                merges = try BPEModel.merges(pairs, vocab: vocab)
            } else if let scores = m.scores {
                guard scores.count == m.tokens.count else {
                    throw .malformed("\(scores.count) scores for \(m.tokens.count) tokens")
                }
                merges = BPEModel.merges(scores: scores, tokens: m.tokens, vocab: vocab)
            } else {
                throw .malformed("llama tokenizer without merges or scores")
            }
            let space: [Unicode.Scalar] = ["\u{2581}"]
            if m.addSpacePrefix ?? true {
                normalizer = .sequence([.prepend(space), .replace(.literal([" "]), content: space)])
            } else {
                normalizer = .replace(.literal([" "]), content: space)
            }
            preTokenizer = nil
            decoder = .sequence([
                .replace(.literal(space), content: " "), .byteFallback, .fuse,
                .strip(content: " ", start: (m.addSpacePrefix ?? true) ? 1 : 0, stop: 0),
            ])
            let unknown = m.unknownTokenID ?? vocab["<unk>"]
            if let unknown, !added.contains(where: { $0.id == unknown }) {
                added.append(AddedToken(content: m.tokens[unknown], id: unknown, special: true))
            }
            model = BPEModel(
                vocab: vocab, merges: merges, unknownID: unknown, fuseUnknown: true, byteFallback: true,
                ignoreMerges: false)
            addBOS = m.addBOSToken ?? true

        case let other:
            throw .unsupported("tokenizer model \"\(other)\"")
        }

        var items: [PostProcessor.Item] = [.sequence]
        if addBOS, let bos = m.bosTokenID { items.insert(.special([bos]), at: 0) }
        if m.addEOSToken == true, let eos = m.eosTokenID { items.append(.special([eos])) }
        self.init(
            normalizer: normalizer, preTokenizer: preTokenizer, model: model, decoder: decoder,
            postProcessor: .template(items), addedTokens: added, bosTokenID: m.bosTokenID,
            eosTokenID: m.eosTokenID, chatTemplate: m.chatTemplate)
    }
}
