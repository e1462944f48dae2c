// Added tokens (special or not) are cut out of the text before
// normalization and BPE, leftmost-longest, as Hugging Face tokenizers'
// AddedVocabulary does: tokens marked `normalized: false` are matched on the
// raw text, the others on the normalized text; `lstrip`/`rstrip` swallow
// the whitespace beside a match, `single_word` needs word boundaries.

import Tessera

/// One added token from tokenizer.json's `added_tokens` (or a GGUF control
/// or user-defined token).
public struct AddedToken: Sendable, Equatable {
    public var content: String
    public var id: Int
    public var special: Bool
    public var lstrip = false
    public var rstrip = false
    public var normalized = false
    public var singleWord = false

    public init(
        content: String, id: Int, special: Bool, lstrip: Bool = false, rstrip: Bool = false,
        normalized: Bool = false, singleWord: Bool = false
    ) {
        self.content = content
        self.id = id
        self.special = special
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized
        self.singleWord = singleWord
    }
}

enum Segment {
    case token(Int)
    /// Text between tokens; `start` is its UTF-8 offset in the string split.
    case text(String, start: Int)
}

/// Finds added tokens in text, leftmost-longest over UTF-8 bytes.
struct AddedTokenMatcher: Sendable {
    private struct Pattern: Sendable {
        var bytes: [UInt8]
        var token: AddedToken
    }
    /// Patterns by first byte, longest first.
    private var byFirstByte: [[Pattern]] = Array(repeating: [], count: 256)
    private(set) var isEmpty = true

    init(_ tokens: [AddedToken], pattern: (AddedToken) -> String) {
        for t in tokens {
            let bytes = Array(pattern(t).utf8)
            guard let first = bytes.first else { continue }
            byFirstByte[Int(first)].append(Pattern(bytes: bytes, token: t))
            isEmpty = false
        }
        for i in 0..<256 { byFirstByte[i].sort { $0.bytes.count > $1.bytes.count } }
    }

    func split(_ text: String) -> [Segment] {
        guard !isEmpty else { return [.text(text, start: 0)] }
        let u = Array(text.utf8)
        var out: [Segment] = []
        var emitted = 0
        var i = 0
        while i < u.count {
            guard let p = longestMatch(u, at: i) else { i += 1; continue }
            var start = i, stop = i + p.bytes.count
            if p.token.singleWord {
                let before = start == 0 || !Self.isWordScalar(lastScalar(u[..<start]))
                let after = stop == u.count || !Self.isWordScalar(firstScalar(u[stop...]))
                if !(before && after) { i += 1; continue }
            }
            if p.token.lstrip {
                while start > emitted, let s = lastScalar(u[emitted..<start]), s.properties.isWhitespace {
                    start -= String(s).utf8.count
                }
            }
            if p.token.rstrip {
                while stop < u.count, let s = firstScalar(u[stop...]), s.properties.isWhitespace {
                    stop += String(s).utf8.count
                }
            }
            if emitted < start {
                out.append(.text(String(decoding: u[emitted..<start], as: UTF8.self), start: emitted))
            }
            out.append(.token(p.token.id))
            emitted = stop
            i = stop
        }
        if emitted < u.count {
            out.append(.text(String(decoding: u[emitted...], as: UTF8.self), start: emitted))
        }
        return out
    }

    private func longestMatch(_ u: [UInt8], at i: Int) -> Pattern? {
        for p in byFirstByte[Int(u[i])] where i + p.bytes.count <= u.count {
            if u[i..<i + p.bytes.count].elementsEqual(p.bytes) { return p }
        }
        return nil
    }

    private func lastScalar(_ s: ArraySlice<UInt8>) -> Unicode.Scalar? {
        guard !s.isEmpty else { return nil }
        var start = s.endIndex - 1
        while start > s.startIndex, s[start] & 0xC0 == 0x80 { start -= 1 }
        return String(decoding: s[start...], as: UTF8.self).unicodeScalars.first
    }

    private func firstScalar(_ s: ArraySlice<UInt8>) -> Unicode.Scalar? {
        String(decoding: s.prefix(4), as: UTF8.self).unicodeScalars.first
    }

    /// Regex `\w`: letters, marks, digits, connector punctuation.
    private static func isWordScalar(_ s: Unicode.Scalar?) -> Bool {
        guard let s else { return false }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
            return true
        default:
            return s.properties.isAlphabetic
        }
    }
}
