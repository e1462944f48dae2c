// The vocabulary arrays a GGUF file's `tokenizer.ggml.*` metadata holds, and
// the tokenizer they make: the arrays are written as the Hugging Face
// tokenizer.json of their family (TokenizerMetadata+Files.swift), which is
// what the tokenizer is built from.

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
    /// Builds a tokenizer from GGUF-style arrays (through the tokenizer.json
    /// they stand for, see `huggingFaceFiles`).
    ///
    /// ```swift
    /// let meta = TokenizerMetadata(model: "gpt2", preTokenizer: "smollm", tokens: tokens,
    ///                              tokenTypes: types, merges: merges, bosTokenID: 1, eosTokenID: 2)
    /// let tokenizer = try Tokenizer(metadata: meta)
    /// ```
    public convenience init(metadata m: TokenizerMetadata) throws(TokenizerError) {
        let (json, config) = try m.huggingFaceFiles()
        try self.init(json: json, config: config, chatTemplate: m.chatTemplate)
    }
}
