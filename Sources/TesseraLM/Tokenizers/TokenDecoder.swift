// Decoders: token strings -> text, as Hugging Face tokenizers' decoders do
// (each step maps a list of strings to a list of strings; the result is
// joined). ByteLevel for GPT-2-style vocabularies; Replace, ByteFallback,
// Fuse, Strip and Metaspace for SentencePiece-style ones.

import Tessera

indirect enum TokenDecoder: Sendable {
    case sequence([TokenDecoder])
    case byteLevel
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme)
    case replace(TextPattern, content: String)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)

    func decode(_ tokens: [String]) -> String {
        decodeChain(tokens).joined()
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(tokens) { $1.decodeChain($0) }

        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                let mark = bytes.count
                var mapped = true
                for s in token.unicodeScalars {
                    guard let b = ByteLevel.scalarToByte[s.value] else { mapped = false; break }
                    bytes.append(b)
                }
                // A token outside the byte alphabet (an added token) is its own UTF-8.
                if !mapped {
                    bytes.removeSubrange(mark...)
                    bytes.append(contentsOf: token.utf8)
                }
            }
            return [String(decoding: bytes, as: UTF8.self)]

        case .metaspace(let replacement, let scheme):
            return tokens.enumerated().map { i, token in
                var view = String.UnicodeScalarView()
                for s in token.unicodeScalars {
                    if s == replacement {
                        // The first token loses every replacement scalar, as HF does.
                        if !(i == 0 && scheme != .never) { view.append(" ") }
                    } else {
                        view.append(s)
                    }
                }
                return String(view)
            }

        case .replace(let pattern, let content):
            return tokens.map { token in
                let s = Array(token.unicodeScalars)
                var view = String.UnicodeScalarView()
                var last = 0
                for m in pattern.matches(s) {
                    view.append(contentsOf: s[last..<m.lowerBound])
                    view.append(contentsOf: content.unicodeScalars)
                    last = m.upperBound
                }
                view.append(contentsOf: s[last...])
                return String(view)
            }

        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(s)
                } else {
                    // Invalid bytes: one U+FFFD per byte, as HF does.
                    out.append(contentsOf: repeatElement("\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for token in tokens {
                if let b = Self.byteToken(token) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(token)
                }
            }
            flush()
            return out

        case .fuse:
            return [tokens.joined()]

        case .strip(let content, let start, let stop):
            return tokens.map { token in
                let s = Array(token.unicodeScalars)
                var lo = 0
                while lo < min(start, s.count), s[lo] == content { lo += 1 }
                var hi = s.count
                while s.count - hi < stop, hi > lo, s[hi - 1] == content { hi -= 1 }
                var view = String.UnicodeScalarView()
                view.append(contentsOf: s[lo..<hi])
                return String(view)
            }
        }
    }

    /// The byte of a `<0xNN>` token.
    static func byteToken(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"),
            u[2] == UInt8(ascii: "x"), u[5] == UInt8(ascii: ">")
        else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }
}
