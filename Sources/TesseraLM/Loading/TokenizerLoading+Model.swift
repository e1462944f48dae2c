// The tokenizer that comes with a model: from a GGUF file's `tokenizer.ggml.*`
// metadata, or from a folder's tokenizer.json.

import Tessera

extension Tokenizer {
    /// The tokenizer stored in a GGUF file's metadata.
    public convenience init(gguf file: GGUFFile) throws {
        try self.init(metadata: TokenizerMetadata(gguf: file))
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
