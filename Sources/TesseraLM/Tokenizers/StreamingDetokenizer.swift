// Streaming detokenization: text for each new token as generation runs.
//
// A token may end inside a UTF-8 sequence (byte-level BPE splits emoji and
// CJK across tokens; SentencePiece falls back to <0xNN> bytes), so text is
// held back while the decoded tail is U+FFFD. Each step decodes the pending
// tokens together with already emitted context and emits only what that
// adds, so decoders that treat the first token specially (Metaspace drops
// its leading space) still produce the same text as one decode() of the
// whole sequence. The context is the last emitted token, extended back to
// the start of its character when it is a <0xNN> byte token: ByteFallback
// replaces a whole byte run by U+FFFDs when any of it is invalid.

import Tessera

/// Turns token ids into text incrementally.
///
/// ```swift
/// var stream = tokenizer.streamingDetokenizer()
/// for id in generated { print(stream.append(id), terminator: "") }
/// print(stream.finish())
/// ```
public struct StreamingDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private var context: [Int] = []
    private var pending: [Int] = []
    /// A sequence longer than this many held tokens is invalid UTF-8 that
    /// will never complete; it is released with its replacement characters.
    private static let maxHeld = 4

    init(tokenizer: Tokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one token and returns the text it completes (possibly empty).
    public mutating func append(_ id: Int) -> String {
        pending.append(id)
        let full = tokenizer.decode(context + pending, skipSpecialTokens: skipSpecialTokens)
        if full.unicodeScalars.last == "\u{FFFD}", pending.count < Self.maxHeld { return "" }
        return emit(full)
    }

    /// Adds several tokens and returns the text they complete.
    public mutating func append(contentsOf ids: some Sequence<Int>) -> String {
        ids.map { append($0) }.joined()
    }

    /// Returns whatever is still held (incomplete bytes as U+FFFD) and resets.
    public mutating func finish() -> String {
        defer { context = []; pending = [] }
        guard !pending.isEmpty else { return "" }
        return emit(tokenizer.decode(context + pending, skipSpecialTokens: skipSpecialTokens))
    }

    private mutating func emit(_ full: String) -> String {
        let prefix = tokenizer.decode(context, skipSpecialTokens: skipSpecialTokens)
        let all = context + pending
        var start = all.count - 1
        while start > 0, let t = tokenizer.token(all[start]), let b = TokenDecoder.byteToken(t), b & 0xC0 == 0x80 {
            start -= 1
        }
        context = Array(all[start...])
        pending = []
        let fullScalars = full.unicodeScalars
        let prefixCount = prefix.unicodeScalars.count
        guard fullScalars.starts(with: prefix.unicodeScalars) else {
            // Not expected from the decoders here; fall back to what is new by count.
            var view = String.UnicodeScalarView()
            view.append(contentsOf: fullScalars.dropFirst(min(prefixCount, fullScalars.count)))
            return String(view)
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: fullScalars.dropFirst(prefixCount))
        return String(view)
    }
}
