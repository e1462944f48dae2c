// Errors from building a tokenizer out of files or metadata. Encoding and
// decoding never throw: every string encodes and every id decodes (unknown
// ids are skipped, as Hugging Face tokenizers does).

import Tessera

/// Why a tokenizer could not be built.
public enum TokenizerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is not valid JSON.
    case invalidJSON(file: String, JSONParseError)
    /// A file could not be read.
    case unreadable(path: String, reason: String)
    /// A required field is missing or has the wrong type.
    case malformed(String)
    /// A component (model, pre-tokenizer, normalizer, decoder...) this
    /// library does not implement.
    case unsupported(String)

    public var description: String {
        switch self {
        case .invalidJSON(let file, let e): "tokenizer: \(file) is not valid JSON: \(e)"
        case .unreadable(let path, let reason): "tokenizer: cannot read \(path): \(reason)"
        case .malformed(let what): "tokenizer: malformed: \(what)"
        case .unsupported(let what): "tokenizer: unsupported: \(what)"
        }
    }
}
