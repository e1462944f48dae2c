// The pre-tokenizer regexes of GPT-2, Llama 3 and Qwen2, matched by hand.
//
// Hugging Face tokenizers runs these with Oniguruma; here each alternative is
// a small scan over Unicode scalars that reproduces the regex's leftmost-first
// alternation and backtracking (noted per alternative). \p{L} and \p{N} are
// Unicode general categories L* and N*; \s is White_Space (Oniguruma's \s:
// U+0009-000D, U+0085, Zs, Zl, Zp). Linear time in the input; Tests cover
// long runs. Unknown patterns run on a linear-time Pike VM (RegexSplitter).

import Tessera

/// Character classes the patterns need, one byte per scalar.
struct ScalarClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let space: UInt8 = 4
    static let newline: UInt8 = 8  // \r or \n (also `space`)

    private static let ascii: [UInt8] = (0..<128).map { i -> UInt8 in
        let s = Unicode.Scalar(UInt8(i))
        switch s {
        case "a"..."z", "A"..."Z": return letter
        case "0"..."9": return number
        case "\r", "\n": return space | newline
        case "\t", "\u{0B}", "\u{0C}", " ": return space
        default: return 0
        }
    }

    @inline(__always)
    static func of(_ s: Unicode.Scalar) -> UInt8 {
        if s.value < 128 { return ascii[Int(s.value)] }
        if s.properties.isWhitespace { return space }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return 0
        }
    }
}

/// A known pre-tokenizer regex, matched without a regex engine.
enum KnownPattern: Sendable, Equatable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `(?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// As llama3 with `\p{N}` (single digits) instead of `\p{N}{1,3}`.
    case qwen2

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    init?(source: String) {
        switch source {
        case Self.gpt2Source: self = .gpt2
        case Self.llama3Source: self = .llama3
        case Self.qwen2Source: self = .qwen2
        default: return nil
        }
    }

    /// The matches, as scalar index ranges, left to right, non-overlapping.
    func matches(_ s: [Unicode.Scalar], _ c: [UInt8]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var i = 0
        let n = s.count
        while i < n {
            let end: Int?
            switch self {
            case .gpt2: end = matchGPT2(s, c, i)
            case .llama3: end = matchLlama3(s, c, i, maxDigits: 3)
            case .qwen2: end = matchLlama3(s, c, i, maxDigits: 1)
            }
            if let end {
                result.append(i..<end)
                i = end
            } else {
                i += 1
            }
        }
        return result
    }

    // MARK: alternatives

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally ASCII case-insensitive.
    private func contraction(_ s: [Unicode.Scalar], _ i: Int, caseInsensitive: Bool) -> Int? {
        guard s[i] == "'", i + 1 < s.count else { return nil }
        func lower(_ k: Int) -> Unicode.Scalar? {
            guard k < s.count else { return nil }
            let v = s[k]
            if caseInsensitive, ("A"..."Z").contains(v) { return Unicode.Scalar(v.value + 32) }
            return v
        }
        switch lower(i + 1) {
        case "s", "t", "m", "d": return i + 2
        case "r" where lower(i + 2) == "e": return i + 3
        case "v" where lower(i + 2) == "e": return i + 3
        case "l" where lower(i + 2) == "l": return i + 3
        default: return nil
        }
    }

    @inline(__always)
    private func run(_ c: [UInt8], from i: Int, while test: (UInt8) -> Bool) -> Int {
        var j = i
        while j < c.count, test(c[j]) { j += 1 }
        return j
    }

    private static func isLetter(_ k: UInt8) -> Bool { k & ScalarClass.letter != 0 }
    private static func isNumber(_ k: UInt8) -> Bool { k & ScalarClass.number != 0 }
    private static func isSpace(_ k: UInt8) -> Bool { k & ScalarClass.space != 0 }
    private static func isNewline(_ k: UInt8) -> Bool { k & ScalarClass.newline != 0 }
    private static func isOther(_ k: UInt8) -> Bool {
        k & (ScalarClass.letter | ScalarClass.number | ScalarClass.space) == 0
    }

    /// `\s+(?!\S)|\s+`: a whitespace run, less its last scalar when a
    /// non-space follows (the lookahead backtracks one), but at least one.
    private func trailingSpace(_ c: [UInt8], _ i: Int) -> Int? {
        guard Self.isSpace(c[i]) else { return nil }
        let j = run(c, from: i, while: Self.isSpace)
        if j == c.count || j - i == 1 { return j }
        return j - 1
    }

    private func matchGPT2(_ s: [Unicode.Scalar], _ c: [UInt8], _ i: Int) -> Int? {
        if let e = contraction(s, i, caseInsensitive: false) { return e }
        // ` ?X+` for X in L, N, other: the optional space is taken when X follows.
        let start = (s[i] == " " && i + 1 < s.count) ? i + 1 : i
        for test in [Self.isLetter, Self.isNumber, Self.isOther] {
            if test(c[start]) { return run(c, from: start, while: test) }
            if start != i, test(c[i]) { return run(c, from: i, while: test) }
        }
        return trailingSpace(c, i)
    }

    private func matchLlama3(_ s: [Unicode.Scalar], _ c: [UInt8], _ i: Int, maxDigits: Int) -> Int? {
        if let e = contraction(s, i, caseInsensitive: true) { return e }
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if Self.isLetter(c[i]) { return run(c, from: i, while: Self.isLetter) }
        if !Self.isNewline(c[i]), !Self.isNumber(c[i]), i + 1 < c.count, Self.isLetter(c[i + 1]) {
            return run(c, from: i + 1, while: Self.isLetter)
        }
        // `\p{N}{1,N}`
        if Self.isNumber(c[i]) {
            var j = i
            while j < c.count, j - i < maxDigits, Self.isNumber(c[j]) { j += 1 }
            return j
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let start = (s[i] == " " && i + 1 < s.count && Self.isOther(c[i + 1])) ? i + 1 : i
        if Self.isOther(c[start]) {
            let j = run(c, from: start, while: Self.isOther)
            return run(c, from: j, while: Self.isNewline)
        }
        // `\s*[\r\n]+`: the whitespace run up to its last newline.
        if Self.isSpace(c[i]) {
            let j = run(c, from: i, while: Self.isSpace)
            var k = j
            while k > i, !Self.isNewline(c[k - 1]) { k -= 1 }
            if k > i { return k }
        }
        return trailingSpace(c, i)
    }
}

/// A pre-tokenizer regex this library does not know by heart, parsed by
/// SplitRegexParser and run by a Pike VM (SplitRegexVM): linear in the text,
/// so a hostile tokenizer.json cannot make encoding backtrack without bound.
struct RegexSplitter: Sendable {
    let source: String
    private let program: RegexProgram

    init(source: String) throws(TokenizerError) {
        self.source = source
        do {
            program = try RegexProgram(try SplitRegexParser.parse(source))
        } catch {
            throw .unsupported("pre-tokenizer regex \(source): \(error.message)")
        }
    }

    /// Thread steps allowed per scalar of text and instruction of the pattern, over all
    /// the searches of one text: real split patterns use a few; a hostile one stops here.
    static let stepsPerScalarAndInstruction = 8

    /// The non-empty leftmost-first matches, left to right, as scalar offsets. Encoding
    /// cannot throw, so a pattern that spends its budget (quadratic rescans) leaves the
    /// rest of the text as one piece rather than hang.
    func matches(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        let run = RegexRun(program: program, text: s)
        var budget = Self.stepsPerScalarAndInstruction * program.code.count * (s.count + 1)
        var out: [Range<Int>] = []
        var from = 0
        while from <= s.count {
            guard let m = run.search(from: from, budget: &budget) else {
                if budget < 0, from < s.count { out.append(from..<s.count) }
                break
            }
            if !m.isEmpty { out.append(m) }
            from = m.isEmpty ? m.upperBound + 1 : m.upperBound
        }
        return out
    }
}
