// Parses the pre-tokenizer regexes of tokenizer.json (Oniguruma syntax, as
// Hugging Face tokenizers runs them) into a small tree that SplitRegexVM runs
// in linear time. The subset is the regular one: literals and escapes,
// classes with ranges and \p{..} properties, . \s \d \w and their negations,
// groups ((?: ) (?i: ) (?> ) and capturing, all treated as grouping), | and
// greedy, lazy or possessive ? * + {n,m}, anchors ^ $ \A \z \Z \b \B, and
// lookaheads whose body has a bounded length (such as GPT-2's `\s+(?!\S)`).
// Backreferences, lookbehinds and unbounded lookaheads are refused: they are
// what lets a backtracking engine run without bound.

/// One scalar test: a set of scalars, ranges and Unicode properties, maybe negated.
struct ScalarSet: Sendable {
    enum Item: Sendable {
        case scalar(Unicode.Scalar)
        case range(UInt32, UInt32)
        case property(ScalarProperty, negated: Bool)
        case set(ScalarSet)
    }
    var items: [Item] = []
    var negated = false
    var caseless = false

    func contains(_ s: Unicode.Scalar) -> Bool {
        if caseless {
            for v in ScalarSet.caseVariants(s) where containsExactly(v) { return !negated }
            return negated
        }
        return containsExactly(s) != negated
    }

    private func containsExactly(_ s: Unicode.Scalar) -> Bool {
        for item in items {
            switch item {
            case .scalar(let c): if c == s { return true }
            case .range(let lo, let hi): if lo <= s.value && s.value <= hi { return true }
            case .property(let p, let negated): if p.contains(s) != negated { return true }
            case .set(let inner): if inner.contains(s) { return true }
            }
        }
        return false
    }

    /// The scalar and its one-scalar lower- and uppercase forms.
    static func caseVariants(_ s: Unicode.Scalar) -> [Unicode.Scalar] {
        var out = [s]
        for mapped in [s.properties.lowercaseMapping, s.properties.uppercaseMapping] {
            let scalars = mapped.unicodeScalars
            if scalars.count == 1, let c = scalars.first, c != s { out.append(c) }
        }
        return out
    }
}

/// The Unicode properties the split patterns use (\p{..}, \s, \d, \w).
enum ScalarProperty: Sendable {
    case letter, uppercase, lowercase, titlecase, modifierLetter, otherLetter
    case mark, number, decimal, punctuation, symbol, separator, other
    case space, word, any
    /// A script, as the blocks that hold it (the stdlib has no Script property).
    case blocks([ClosedRange<UInt32>])

    init?(name: String) {
        switch String(String.UnicodeScalarView(name.unicodeScalars.filter { $0 != "_" && $0 != " " })).lowercased() {
        case "l", "letter": self = .letter
        case "lu", "uppercaseletter": self = .uppercase
        case "ll", "lowercaseletter": self = .lowercase
        case "lt", "titlecaseletter": self = .titlecase
        case "lm", "modifierletter": self = .modifierLetter
        case "lo", "otherletter": self = .otherLetter
        case "m", "mark", "combiningmark": self = .mark
        case "n", "number": self = .number
        case "nd", "decimalnumber", "digit": self = .decimal
        case "p", "punctuation", "punct": self = .punctuation
        case "s", "symbol": self = .symbol
        case "z", "separator": self = .separator
        case "c", "other": self = .other
        case "space", "whitespace": self = .space
        case "word", "alnum": self = .word
        case "any": self = .any
        case "han":
            self = .blocks([
                0x2E80...0x2FDF, 0x3005...0x3007, 0x3021...0x3029, 0x3038...0x303B,
                0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF, 0x20000...0x3134F
            ])
        case "hiragana": self = .blocks([0x3041...0x309F, 0x1B001...0x1B11F])
        case "katakana": self = .blocks([0x30A1...0x30FF, 0x31F0...0x31FF, 0x32D0...0x32FE, 0xFF66...0xFF9D])
        case "hangul":
            self = .blocks([0x1100...0x11FF, 0x3131...0x318E, 0xA960...0xA97F, 0xAC00...0xD7FF, 0xFFA0...0xFFDC])
        default: return nil
        }
    }

    func contains(_ s: Unicode.Scalar) -> Bool {
        let category = s.properties.generalCategory
        switch self {
        case .letter: return ScalarClass.of(s) & ScalarClass.letter != 0
        case .uppercase: return category == .uppercaseLetter
        case .lowercase: return category == .lowercaseLetter
        case .titlecase: return category == .titlecaseLetter
        case .modifierLetter: return category == .modifierLetter
        case .otherLetter: return category == .otherLetter
        case .mark: return [.nonspacingMark, .spacingMark, .enclosingMark].contains(category)
        case .number: return ScalarClass.of(s) & ScalarClass.number != 0
        case .decimal: return category == .decimalNumber
        case .punctuation:
            return [
                .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
                .initialPunctuation, .finalPunctuation, .otherPunctuation
            ].contains(category)
        case .symbol: return [.mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol].contains(category)
        case .separator: return [.spaceSeparator, .lineSeparator, .paragraphSeparator].contains(category)
        case .other: return [.control, .format, .surrogate, .privateUse, .unassigned].contains(category)
        case .space: return ScalarClass.of(s) & ScalarClass.space != 0
        case .word:
            return ScalarClass.of(s) & (ScalarClass.letter | ScalarClass.number) != 0
                || ScalarProperty.mark.contains(s) || category == .connectorPunctuation
        case .any: return true
        case .blocks(let blocks): return blocks.contains { $0.contains(s.value) }
        }
    }
}

/// Zero-width tests between scalars.
enum RegexAnchor: Sendable {
    case lineStart, lineEnd, textStart, textEnd, textEndBeforeNewline, wordBoundary, notWordBoundary
}

/// A parsed split pattern.
indirect enum RegexNode: Sendable {
    case empty
    case set(ScalarSet)
    case concat([RegexNode])
    case alternation([RegexNode])
    /// `max` nil: unbounded. Possessive quantifiers run as greedy ones.
    case repetition(RegexNode, min: Int, max: Int?, greedy: Bool)
    case anchor(RegexAnchor)
    case lookahead(RegexNode, negated: Bool)

    /// The most scalars this node can match (nil: unbounded).
    var maxLength: Int? {
        switch self {
        case .empty, .anchor, .lookahead: return 0
        case .set: return 1
        case .concat(let parts):
            var total = 0
            for p in parts {
                guard let n = p.maxLength else { return nil }
                total += n
            }
            return total
        case .alternation(let options):
            var most = 0
            for o in options {
                guard let n = o.maxLength else { return nil }
                most = Swift.max(most, n)
            }
            return most
        case .repetition(let body, _, let max, _):
            guard let max, let n = body.maxLength else { return body.maxLength == 0 ? 0 : nil }
            return n * max
        }
    }
}

/// Why a pattern could not be parsed, or uses what this engine refuses.
struct RegexSyntaxError: Error {
    let message: String
}

/// A recursive-descent parser over the pattern's scalars.
struct SplitRegexParser {
    private let p: [Unicode.Scalar]
    private var i = 0
    private var caseless = false
    private var depth = 0
    /// Bounds on nesting and on counted repetitions, which the compiler expands.
    static let maxDepth = 64, maxCount = 1000, maxLookaheadLength = 64

    static func parse(_ source: String) throws(RegexSyntaxError) -> RegexNode {
        var parser = SplitRegexParser(p: Array(source.unicodeScalars))
        let node = try parser.alternation()
        if parser.i < parser.p.count { throw parser.fail("unbalanced ')'") }
        return node
    }

    private init(p: [Unicode.Scalar]) { self.p = p }

    private func fail(_ what: String) -> RegexSyntaxError {
        RegexSyntaxError(message: "\(what) at offset \(i)")
    }

    private var peek: Unicode.Scalar? { i < p.count ? p[i] : nil }

    private mutating func eat(_ c: Unicode.Scalar) -> Bool {
        if peek == c { i += 1; return true }
        return false
    }

    private mutating func alternation() throws(RegexSyntaxError) -> RegexNode {
        var options = [try sequence()]
        while eat("|") { options.append(try sequence()) }
        return options.count == 1 ? options[0] : .alternation(options)
    }

    private mutating func sequence() throws(RegexSyntaxError) -> RegexNode {
        var parts: [RegexNode] = []
        while let c = peek, c != "|", c != ")" {
            parts.append(try quantified(try atom()))
        }
        return parts.isEmpty ? .empty : parts.count == 1 ? parts[0] : .concat(parts)
    }

    private mutating func quantified(_ node: RegexNode) throws(RegexSyntaxError) -> RegexNode {
        var node = node
        while let c = peek {
            var min = 0, max: Int? = nil
            switch c {
            case "*": i += 1
            case "+": i += 1; min = 1
            case "?": i += 1; max = 1
            case "{":
                guard let (lo, hi) = try counts() else { return node }
                min = lo
                max = hi
            default: return node
            }
            if case .anchor = node { throw fail("quantified anchor") }
            if case .lookahead = node { throw fail("quantified lookahead") }
            var greedy = true
            if eat("?") { greedy = false } else { _ = eat("+") }  // possessive: run as greedy
            node = .repetition(node, min: min, max: max, greedy: greedy)
        }
        return node
    }

    /// `{n}`, `{n,}`, `{n,m}`; nil (and nothing consumed) when `{` is a literal.
    private mutating func counts() throws(RegexSyntaxError) -> (Int, Int?)? {
        let start = i
        i += 1
        var low = number()
        var high = low
        if eat(",") {
            high = number()
            if low == nil && high != nil { low = 0 }  // Oniguruma's {,n}
        }
        guard eat("}"), let low else {
            i = start
            return nil
        }
        guard low <= Self.maxCount, (high ?? low) <= Self.maxCount, (high ?? low) >= low else {
            throw fail("repetition count above \(Self.maxCount) or reversed")
        }
        return (low, high)
    }

    /// Decimal digits, stopping once the value is past any count allowed.
    private mutating func number() -> Int? {
        var n: Int?
        while let c = peek, c.isASCII, let d = Int(String(c)) {
            n = (n ?? 0) * 10 + d
            i += 1
            if n ?? 0 > Self.maxCount * 10 { break }
        }
        return n
    }

    private mutating func atom() throws(RegexSyntaxError) -> RegexNode {
        guard let c = peek else { throw fail("unexpected end") }
        i += 1
        switch c {
        case "(": return try group()
        case "[": return .set(try bracket())
        case ".":
            var s = ScalarSet(items: [.scalar("\n")])
            s.negated = true
            return .set(s)
        case "^": return .anchor(.lineStart)
        case "$": return .anchor(.lineEnd)
        case "\\": return try escape(inClass: false)
        case "*", "+", "?": throw fail("nothing to repeat")
        default: return .set(literal(c))
        }
    }

    private func literal(_ c: Unicode.Scalar) -> ScalarSet {
        var s = ScalarSet(items: [.scalar(c)])
        s.caseless = caseless
        return s
    }

    private mutating func group() throws(RegexSyntaxError) -> RegexNode {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw fail("groups nested deeper than \(Self.maxDepth)") }
        let saved = caseless
        defer { caseless = saved }
        var lookahead: Bool? = nil
        if eat("?") {
            if eat(":") || eat(">") {
            } else if eat("=") {
                lookahead = false
            } else if eat("!") {
                lookahead = true
            } else if eat("<") {
                if peek == "=" || peek == "!" { throw fail("lookbehind is not supported") }
                while let c = peek, c != ">" { i += 1 }  // named group
                guard eat(">") else { throw fail("unterminated group name") }
            } else {
                // Inline flags: (?i) (?-i) (?i: ...).
                var on = true
                while let c = peek, c != ":", c != ")" {
                    switch c {
                    case "-": on = false
                    case "i": caseless = on
                    case "m", "s", "x", "u": break
                    default: throw fail("unknown group flag \(c)")
                    }
                    i += 1
                }
                if eat(")") {
                    // (?i) applies to the rest of the enclosing group.
                    let rest = try alternation()
                    return rest
                }
                guard eat(":") else { throw fail("unterminated group") }
            }
        }
        let body = try alternation()
        guard eat(")") else { throw fail("missing ')'") }
        if let negated = lookahead {
            guard let n = body.maxLength, n <= Self.maxLookaheadLength else {
                throw fail("lookahead of unbounded length is not supported")
            }
            return .lookahead(body, negated: negated)
        }
        return body
    }

    private mutating func bracket() throws(RegexSyntaxError) -> ScalarSet {
        var set = ScalarSet()
        set.caseless = caseless
        if eat("^") { set.negated = true }
        var first = true
        while true {
            guard let c = peek else { throw fail("unterminated class") }
            if c == "]" && !first { i += 1; break }
            first = false
            i += 1
            var low: Unicode.Scalar
            switch c {
            case "[":
                if eat(":") { throw fail("POSIX classes are not supported") }
                set.items.append(.set(try bracket()))
                continue
            case "\\":
                guard case .set(let inner) = try escape(inClass: true) else { throw fail("anchor in a class") }
                if inner.items.count == 1, case .scalar(let s) = inner.items[0], !inner.negated {
                    low = s
                } else {
                    set.items.append(.set(inner))
                    continue
                }
            default:
                low = c
            }
            if peek == "-", i + 1 < p.count, p[i + 1] != "]" {
                i += 1
                guard let h = peek else { throw fail("unterminated class") }
                i += 1
                var high = h
                if h == "\\" {
                    guard case .set(let inner) = try escape(inClass: true), inner.items.count == 1,
                        case .scalar(let s) = inner.items[0]
                    else { throw fail("bad range end") }
                    high = s
                }
                guard low.value <= high.value else { throw fail("reversed range") }
                set.items.append(.range(low.value, high.value))
            } else {
                set.items.append(.scalar(low))
            }
        }
        return set
    }

    private mutating func escape(inClass: Bool) throws(RegexSyntaxError) -> RegexNode {
        guard let c = peek else { throw fail("trailing backslash") }
        i += 1
        func property(_ p: ScalarProperty, _ negated: Bool) -> RegexNode {
            .set(ScalarSet(items: [.property(p, negated: negated)]))
        }
        switch c {
        case "s": return property(.space, false)
        case "S": return property(.space, true)
        case "d": return property(.decimal, false)
        case "D": return property(.decimal, true)
        case "w": return property(.word, false)
        case "W": return property(.word, true)
        case "p", "P":
            var name = ""
            if eat("{") {
                while let ch = peek, ch != "}" { name.unicodeScalars.append(ch); i += 1 }
                guard eat("}") else { throw fail("unterminated \\p{") }
            } else if let ch = peek {
                name = String(ch)
                i += 1
            }
            var negated = c == "P"
            if name.hasPrefix("^") { negated.toggle(); name.removeFirst() }
            guard let prop = ScalarProperty(name: name) else { throw fail("unknown property \(name)") }
            return property(prop, negated)
        case "n": return .set(literal("\n"))
        case "r": return .set(literal("\r"))
        case "t": return .set(literal("\t"))
        case "f": return .set(literal("\u{0C}"))
        case "v": return .set(literal("\u{0B}"))
        case "a": return .set(literal("\u{07}"))
        case "e": return .set(literal("\u{1B}"))
        case "0": return .set(literal("\u{00}"))
        case "x", "u":
            var digits = ""
            if eat("{") {
                while let ch = peek, ch != "}" { digits.unicodeScalars.append(ch); i += 1 }
                guard eat("}") else { throw fail("unterminated \\x{") }
            } else {
                for _ in 0..<(c == "x" ? 2 : 4) {
                    guard let ch = peek else { break }
                    digits.unicodeScalars.append(ch)
                    i += 1
                }
            }
            guard let v = UInt32(digits, radix: 16), let s = Unicode.Scalar(v) else { throw fail("bad \\\(c) escape") }
            return .set(literal(s))
        case "b" where !inClass: return .anchor(.wordBoundary)
        case "B" where !inClass: return .anchor(.notWordBoundary)
        case "A" where !inClass: return .anchor(.textStart)
        case "z" where !inClass: return .anchor(.textEnd)
        case "Z" where !inClass: return .anchor(.textEndBeforeNewline)
        case "1"..."9", "k", "g": throw fail("backreferences are not supported")
        default:
            if c.properties.isAlphabetic && c.isASCII { throw fail("unknown escape \\\(c)") }
            return .set(literal(c))
        }
    }
}
