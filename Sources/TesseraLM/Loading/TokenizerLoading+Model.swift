// The tokenizer that comes with a model: from a GGUF file's `tokenizer.ggml.*`
// metadata, or from a folder's tokenizer.json.

import Tessera

extension Tokenizer {
    /// The tokenizer stored in a GGUF file's metadata.
    public convenience init(gguf file: GGUFFile) throws {
        let m = file.metadata
        guard let model = m["tokenizer.ggml.model"]?.string else {
            throw TokenizerError.malformed("the GGUF file has no tokenizer.ggml.model")
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.array?.map({ $0.string ?? "" }) else {
            throw TokenizerError.malformed("the GGUF file has no tokenizer.ggml.tokens")
        }
        let metadata = TokenizerMetadata(
            model: model, preTokenizer: m["tokenizer.ggml.pre"]?.string, tokens: tokens,
            tokenTypes: m["tokenizer.ggml.token_type"]?.array?.map { Int32(clamping: $0.int ?? 1) },
            merges: m["tokenizer.ggml.merges"]?.array?.compactMap(\.string),
            scores: m["tokenizer.ggml.scores"]?.array?.map { Float($0.double ?? 0) },
            bosTokenID: m["tokenizer.ggml.bos_token_id"]?.int, eosTokenID: m["tokenizer.ggml.eos_token_id"]?.int,
            unknownTokenID: m["tokenizer.ggml.unknown_token_id"]?.int, addBOSToken: m["tokenizer.ggml.add_bos_token"]?.bool,
            addEOSToken: m["tokenizer.ggml.add_eos_token"]?.bool, addSpacePrefix: m["tokenizer.ggml.add_space_prefix"]?.bool,
            chatTemplate: m["tokenizer.chat_template"]?.string)
        try self.init(metadata: metadata)
    }
}

extension LoadedModel {
    /// The model's tokenizer (GGUF metadata or the folder's tokenizer.json).
    public func tokenizer() throws -> Tokenizer {
        if let gguf { return try Tokenizer(gguf: gguf) }
        if let folder { return try Tokenizer(directory: folder) }
        throw ModelError.modelNotFound("the model has no tokenizer")
    }
}
