// Normalizers (text -> text before pre-tokenization) and post-processors
// (ids -> ids with special tokens added), as Hugging Face tokenizers
// defines them for the models this library loads.

import Tessera

indirect enum Normalizer: Sendable {
    case sequence([Normalizer])
    /// Unicode canonical composition (Qwen2).
    case nfc
    /// Prepends a string to non-empty text (Llama 2: "▁").
    case prepend([Unicode.Scalar])
    /// Replaces every match with `content` (Llama 2: " " -> "▁").
    case replace(TextPattern, content: [Unicode.Scalar])
    case lowercase
    case strip(left: Bool, right: Bool)

    func apply(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(s) { $1.apply($0) }
        case .nfc:
            var view = String.UnicodeScalarView()
            view.append(contentsOf: s)
            // The standard library's public (underscored) NFC: FoundationEssentials
            // has no precomposedStringWithCanonicalMapping.
            let utf8 = String(view)._nfcCodeUnits
            return Array(String(decoding: utf8, as: UTF8.self).unicodeScalars)
        case .prepend(let p):
            return s.isEmpty ? s : p + s
        case .replace(let pattern, let content):
            var out: [Unicode.Scalar] = []
            var last = 0
            for m in pattern.matches(s) {
                out.append(contentsOf: s[last..<m.lowerBound])
                out.append(contentsOf: content)
                last = m.upperBound
            }
            out.append(contentsOf: s[last...])
            return out
        case .lowercase:
            var view = String.UnicodeScalarView()
            view.append(contentsOf: s)
            return Array(String(view).lowercased().unicodeScalars)
        case .strip(let left, let right):
            var lo = 0, hi = s.count
            if left { while lo < hi, s[lo].properties.isWhitespace { lo += 1 } }
            if right { while hi > lo, s[hi - 1].properties.isWhitespace { hi -= 1 } }
            return Array(s[lo..<hi])
        }
    }
}

/// Adds special tokens around an encoded sequence (only `single` sequences:
/// this library encodes one text at a time).
indirect enum PostProcessor: Sendable {
    enum Item: Sendable, Equatable {
        case sequence
        case special([Int])
    }
    case template([Item])
    case sequence([PostProcessor])
    /// Offsets only: ids pass through.
    case passThrough

    func apply(_ ids: [Int]) -> [Int] {
        switch self {
        case .template(let items):
            var out: [Int] = []
            for item in items {
                switch item {
                case .sequence: out.append(contentsOf: ids)
                case .special(let s): out.append(contentsOf: s)
                }
            }
            return out
        case .sequence(let steps):
            return steps.reduce(ids) { $1.apply($0) }
        case .passThrough:
            return ids
        }
    }
}
