// The bytes one token adds to the text when it appears in the middle of a
// sequence: what constrained decoding matches against a grammar. Byte-level
// BPE pieces map back through the GPT-2 byte alphabet (a piece may be part of
// a UTF-8 character), SentencePiece pieces turn ▁ into a space and <0xNN>
// into its byte. Decoder steps that only act at the start of a text (Strip,
// Metaspace's first-token rule) do not apply mid-sequence.

import Tessera

extension Tokenizer {
    /// The bytes token `id` contributes after other text, or nil for special
    /// tokens and ids with no token. Non-special added tokens are their UTF-8.
    public func tokenBytes(_ id: Int) -> [UInt8]? {
        if let added = addedTokens.first(where: { $0.id == id }) {
            return added.special ? nil : Array(added.content.utf8)
        }
        guard let piece = token(id) else { return nil }
        guard let decoder else { return Array(piece.utf8) }
        return decoder.middleBytes(Array(piece.utf8))
    }

    /// `tokenBytes` of every id below `vocabularySize` (nil where it has none),
    /// looked up once: a vocabulary of 49k pieces in one pass.
    public func allTokenBytes() -> [[UInt8]?] {
        var special = Set<Int>()
        var addedBytes: [Int: [UInt8]] = [:]
        for t in addedTokens {
            if t.special { special.insert(t.id) } else { addedBytes[t.id] = Array(t.content.utf8) }
        }
        return (0..<vocabularySize).map { id -> [UInt8]? in
            if special.contains(id) { return nil }
            if let b = addedBytes[id] { return b }
            guard let piece = token(id) else { return nil }
            guard let decoder else { return Array(piece.utf8) }
            return decoder.middleBytes(Array(piece.utf8))
        }
    }
}

extension TokenDecoder {
    /// One piece through the decoder chain as it reads mid-sequence, on bytes
    /// (intermediate strings as their UTF-8; ByteFallback may leave a lone byte).
    func middleBytes(_ bytes: [UInt8]) -> [UInt8] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(bytes) { $1.middleBytes($0) }
        case .byteLevel:
            guard let text = String(validating: bytes, as: UTF8.self) else { return bytes }
            var out: [UInt8] = []
            for s in text.unicodeScalars {
                if let b = ByteLevel.scalarToByte[s.value] {
                    out.append(b)
                } else {
                    // Outside the byte alphabet (an added token): its own UTF-8.
                    return bytes
                }
            }
            return out
        case .metaspace(let replacement, _):
            guard let text = String(validating: bytes, as: UTF8.self) else { return bytes }
            var view = String.UnicodeScalarView()
            for s in text.unicodeScalars { view.append(s == replacement ? " " : s) }
            return Array(String(view).utf8)
        case .replace:
            guard let text = String(validating: bytes, as: UTF8.self) else { return bytes }
            return Array(decode([text]).utf8)
        case .byteFallback:
            if let text = String(validating: bytes, as: UTF8.self), let b = Self.byteToken(text) { return [b] }
            return bytes
        case .fuse, .strip:
            return bytes
        }
    }
}
