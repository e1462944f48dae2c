// Pre-tokenizers: cut normalized text into the words the BPE model merges
// within. Mirrors Hugging Face tokenizers' ByteLevel, Split, Digits,
// Metaspace and Sequence, including SplitDelimiterBehavior.

import Tessera

/// A piece of text on its way to the model. `isFirst` is true for the piece
/// that starts at offset 0 of the original input (Metaspace's
/// `prepend_scheme: first` prepends only there).
struct Piece: Sendable {
    var scalars: [Unicode.Scalar]
    var isFirst: Bool

    init(_ scalars: [Unicode.Scalar], isFirst: Bool) {
        self.scalars = scalars
        self.isFirst = isFirst
    }

    init(_ text: String, isFirst: Bool) {
        self.init(Array(text.unicodeScalars), isFirst: isFirst)
    }

    var string: String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}

/// How a split keeps the delimiters it finds (HF's SplitDelimiterBehavior).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// Cuts `0..<count` at `matches` and returns the kept ranges, non-empty.
    func ranges(count: Int, matches: [Range<Int>], invert: Bool = false) -> [Range<Int>] {
        var segments: [(range: Range<Int>, isMatch: Bool)] = []
        var last = 0
        for m in matches {
            if last < m.lowerBound { segments.append((last..<m.lowerBound, invert)) }
            segments.append((m, !invert))
            last = m.upperBound
        }
        if last < count { segments.append((last..<count, invert)) }

        var out: [Range<Int>] = []
        switch self {
        case .isolated:
            out = segments.map(\.range)
        case .removed:
            out = segments.filter { !$0.isMatch }.map(\.range)
        case .mergedWithPrevious:
            var previousMatch = false
            for (r, isMatch) in segments {
                if isMatch, !previousMatch, let end = out.last {
                    out[out.count - 1] = end.lowerBound..<r.upperBound
                } else {
                    out.append(r)
                }
                previousMatch = isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for (r, isMatch) in segments.reversed() {
                if isMatch, !previousMatch, let start = out.last {
                    out[out.count - 1] = r.lowerBound..<start.upperBound
                } else {
                    out.append(r)
                }
                previousMatch = isMatch
            }
            out.reverse()
        case .contiguous:
            var previousMatch = false
            for (r, isMatch) in segments {
                if isMatch == previousMatch, let end = out.last {
                    out[out.count - 1] = end.lowerBound..<r.upperBound
                } else {
                    out.append(r)
                }
                previousMatch = isMatch
            }
        }
        return out.filter { !$0.isEmpty }
    }
}

/// What a Split pre-tokenizer or Replace normalizer looks for.
enum TextPattern: Sendable {
    case literal([Unicode.Scalar])
    case known(KnownPattern)
    case regex(RegexSplitter)

    /// Reads HF's `{"String": "..."}` or `{"Regex": "..."}`.
    init(json: JSONValue?) throws(TokenizerError) {
        if let s = json?["String"]?.string {
            self = .literal(Array(s.unicodeScalars))
        } else if let r = json?["Regex"]?.string {
            if let known = KnownPattern(source: r) {
                self = .known(known)
            } else {
                self = .regex(try RegexSplitter(source: r))
            }
        } else {
            throw .malformed("pattern must be {\"String\": ...} or {\"Regex\": ...}")
        }
    }

    func matches(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .known(let k):
            return k.matches(s, s.map(ScalarClass.of))
        case .regex(let r):
            return r.matches(s)
        case .literal(let lit):
            guard !lit.isEmpty, lit.count <= s.count else { return [] }
            var out: [Range<Int>] = []
            var i = 0
            while i + lit.count <= s.count {
                if s[i] == lit[0], s[i..<i + lit.count].elementsEqual(lit) {
                    out.append(i..<i + lit.count)
                    i += lit.count
                } else {
                    i += 1
                }
            }
            return out
        }
    }
}

enum PrependScheme: String, Sendable {
    case always, first, never
}

indirect enum PreTokenizer: Sendable {
    case sequence([PreTokenizer])
    /// GPT-2's byte-to-unicode mapping, after splitting with the GPT-2 regex
    /// when `useRegex`.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(TextPattern, behavior: SplitBehavior, invert: Bool)
    case digits(individual: Bool)
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)

    func apply(_ pieces: [Piece]) -> [Piece] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(pieces) { $1.apply($0) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            return pieces.flatMap { piece -> [Piece] in
                var p = piece
                if addPrefixSpace, p.scalars.first != " " { p.scalars.insert(" ", at: 0) }
                let parts =
                    useRegex
                    ? Self.cut(p, KnownPattern.gpt2.matches(p.scalars, p.scalars.map(ScalarClass.of)), .isolated) : [p]
                return parts.map { Piece(ByteLevel.encode($0.scalars), isFirst: $0.isFirst) }
            }
        case .split(let pattern, let behavior, let invert):
            return pieces.flatMap { p in
                let ranges = behavior.ranges(
                    count: p.scalars.count, matches: pattern.matches(p.scalars), invert: invert)
                return ranges.map { Piece(Array(p.scalars[$0]), isFirst: p.isFirst && $0.lowerBound == 0) }
            }
        case .digits(let individual):
            return pieces.flatMap { p -> [Piece] in
                var matches: [Range<Int>] = []
                for (i, s) in p.scalars.enumerated() where ScalarClass.of(s) & ScalarClass.number != 0 {
                    matches.append(i..<i + 1)
                }
                return Self.cut(p, matches, individual ? .isolated : .contiguous)
            }
        case .metaspace(let replacement, let scheme, let split):
            return pieces.flatMap { piece -> [Piece] in
                var p = piece
                p.scalars = p.scalars.map { $0 == " " ? replacement : $0 }
                let prepend: Bool
                switch scheme {
                case .always: prepend = p.scalars.first != replacement
                case .first: prepend = p.scalars.first != replacement && p.isFirst
                case .never: prepend = false
                }
                if prepend { p.scalars.insert(replacement, at: 0) }
                guard split else { return [p] }
                var matches: [Range<Int>] = []
                for (i, s) in p.scalars.enumerated() where s == replacement { matches.append(i..<i + 1) }
                return Self.cut(p, matches, .mergedWithNext)
            }
        }
    }

    private static func cut(_ p: Piece, _ matches: [Range<Int>], _ behavior: SplitBehavior) -> [Piece] {
        behavior.ranges(count: p.scalars.count, matches: matches).map {
            Piece(Array(p.scalars[$0]), isFirst: p.isFirst && $0.lowerBound == 0)
        }
    }
}

/// GPT-2's reversible map from bytes to printable unicode scalars.
enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    static func encode(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count)
        for s in scalars {
            UTF8.encode(s) { out.append(byteToScalar[Int($0)]) }
        }
        return out
    }
}
