// JSONAutomaton: a pushdown automaton over bytes that accepts exactly the
// JSON texts a JSONGrammar allows (compact or with bounded whitespace).
//
// A state is a set of stacks (anyOf alternatives run side by side until the
// bytes tell them apart); each frame is one open value: an object, array,
// string, number or literal. Numbers and literals that may still grow
// (`12` may become `123`) end when a byte they cannot take arrives, which is
// then read by the enclosing value. Whitespace is allowed where JSON allows
// it, at most `maxWhitespace` bytes in a row, so a model cannot loop on
// spaces; numbers are bounded in digits, nesting in depth.

import Tessera

struct JSONAutomaton: Sendable, Equatable {
    struct Frame: Hashable, Sendable {
        enum Phase: UInt8, Sendable {
            case value, objectOpen, objectKey, objectColon, objectAfterValue, objectComma
            case arrayOpen, arrayAfterItem, string, number, literal
        }
        var node: Int32
        var phase: Phase
        /// Whitespace bytes read in a row here.
        var ws: UInt8 = 0
        /// Array items; key / literal position; number digits; string escape hex left.
        var count: Int32 = 0
        /// Object: properties present.
        var seen: UInt64 = 0
        /// Key: properties whose name matches so far; literal: candidates.
        var mask: UInt64 = 0
        /// Key: 1 when an additional (unlisted) name is still possible;
        /// string: 0 plain, 1 after a backslash, 2 in \uXXXX, 3 inside a UTF-8 character;
        /// number: its sub-state.
        var sub: UInt8 = 0
        /// UTF-8: continuation bytes left and the range of the next one.
        var left: UInt8 = 0
        var lo: UInt8 = 0
        var hi: UInt8 = 0
    }

    let grammar: JSONGrammar
    let maxWhitespace: Int
    let maxDepth: Int
    private(set) var stacks: [[Frame]]
    /// The fewest bytes of a complete value of each node.
    let minLength: [Int]

    static let maxIntegerDigits: Int32 = 15
    static let maxFractionDigits: Int32 = 15
    static let maxExponentDigits: Int32 = 2

    init(grammar: JSONGrammar, maxWhitespace: Int = 8, maxDepth: Int = 32) {
        self.grammar = grammar
        self.maxWhitespace = maxWhitespace
        self.maxDepth = maxDepth
        minLength = Self.minLengths(grammar)
        // Bottom to top: the literal after the value, the value, the literal before it.
        var stack = [Frame(node: Int32(grammar.root), phase: .value)]
        if let suffix = grammar.suffix {
            var f = Frame(node: Int32(suffix), phase: .literal)
            f.mask = 1
            stack.insert(f, at: 0)
        }
        if let prefix = grammar.prefix {
            var f = Frame(node: Int32(prefix), phase: .literal)
            f.mask = 1
            stack.append(f)
        }
        stacks = [stack]
    }

    static func == (a: JSONAutomaton, b: JSONAutomaton) -> Bool { a.stacks == b.stacks }

    /// Puts the automaton in a state that `step` returned.
    mutating func setStacks(_ stacks: [[Frame]]) { self.stacks = stacks }

    /// Nothing can follow: every alternative has failed.
    var isDead: Bool { stacks.isEmpty }

    /// The bytes so far are one complete value of the grammar.
    var isComplete: Bool {
        stacks.contains { $0.isEmpty || ($0.count == 1 && canEnd($0[0])) }
    }

    /// Reads `bytes`; false (and a dead state) when the grammar rejects them.
    @discardableResult
    mutating func consume(_ bytes: some Sequence<UInt8>) -> Bool {
        for b in bytes {
            stacks = step(stacks, b)
            if stacks.isEmpty { return false }
        }
        return true
    }

    /// The state after one more byte (empty: rejected).
    func step(_ current: [[Frame]], _ b: UInt8) -> [[Frame]] {
        var out: [[Frame]] = []
        for stack in current { feed(stack, b, into: &out) }
        if out.count > 1 {
            var seen = Set<[Frame]>()
            out = out.filter { seen.insert($0).inserted }
        }
        return out
    }

    /// Whether the state is one stack inside a string with no escape or
    /// character in progress: every printable ASCII byte but `"` and `\`
    /// then leaves it unchanged.
    static func isPlainStringState(_ stacks: [[Frame]]) -> Bool {
        guard stacks.count == 1, let top = stacks[0].last else { return false }
        return top.phase == .string && top.sub == 0
    }

    // MARK: - The shortest completion

    /// The fewest bytes that complete the value from `stacks` (0: complete;
    /// Int.max / 4 when dead). One byte per token at worst, so a state whose
    /// shortest completion fits the tokens left can always be finished.
    func minCompletion(_ stacks: [[Frame]]) -> Int {
        var best = Int.max / 4
        for stack in stacks {
            var total = 0
            for f in stack.reversed() { total = min(total + remaining(f), Int.max / 4) }
            best = min(best, total)
        }
        return best
    }

    static func minLengths(_ grammar: JSONGrammar) -> [Int] {
        var memo = [Int?](repeating: nil, count: grammar.nodes.count)
        func length(_ n: Int, _ depth: Int) -> Int {
            if let m = memo[n] { return m }
            guard depth < 64 else { return Int.max / 4 }
            let value: Int
            switch grammar.nodes[n] {
            case .string: value = 2
            case .number: value = 1
            case .literals(let texts): value = texts.map(\.count).min() ?? 0
            case .union(let alts): value = alts.map { length($0, depth + 1) }.min() ?? 0
            case .array(let items, let minItems, _):
                value = minItems == 0 ? 2 : 2 + minItems * length(items, depth + 1) + (minItems - 1)
            case .object(let o):
                var total = 2, count = 0
                for k in o.keys.indices where o.required & (1 << UInt64(k)) != 0 {
                    total += o.keys[k].count + 3 + length(o.values[k], depth + 1)
                    count += 1
                }
                value = total + max(0, count - 1)
            }
            memo[n] = min(value, Int.max / 4)
            return memo[n] ?? value
        }
        return grammar.nodes.indices.map { length($0, 0) }
    }

    /// Bytes that close frame `f` (its own part only).
    private func remaining(_ f: Frame) -> Int {
        switch f.phase {
        case .value: return minLength[Int(f.node)]
        case .string:
            switch f.sub {
            case 0: return 1
            case 1: return 2
            case 2: return Int(f.count) + 1
            default: return Int(f.left) + 1
            }
        case .number: return canEnd(f) ? 0 : 1
        case .literal:
            guard case .literals(let texts) = grammar.nodes[Int(f.node)] else { return 0 }
            var best = Int.max / 4
            for k in texts.indices where f.mask & (1 << UInt64(k)) != 0 && texts[k].count >= Int(f.count) {
                best = min(best, texts[k].count - Int(f.count))
            }
            return best
        case .arrayOpen, .arrayAfterItem:
            guard case .array(let items, let minItems, _) = grammar.nodes[Int(f.node)] else { return 0 }
            let have = f.phase == .arrayOpen ? 0 : Int(f.count)
            let missing = max(0, minItems - have)
            let separators = f.phase == .arrayOpen ? max(0, missing - 1) : missing
            return missing * minLength[items] + separators + 1
        case .objectOpen, .objectAfterValue, .objectComma, .objectColon, .objectKey:
            guard case .object(let o) = grammar.nodes[Int(f.node)] else { return 0 }
            // Required properties still missing, each `"key":value`, with commas.
            var missingCost = 0, missing = 0
            for k in o.keys.indices where o.required & (1 << UInt64(k)) != 0 && f.seen & (1 << UInt64(k)) == 0 {
                missingCost += o.keys[k].count + 3 + minLength[o.values[k]]
                missing += 1
            }
            switch f.phase {
            case .objectOpen:
                return missing == 0 ? 1 : missingCost + (missing - 1) + 1
            case .objectAfterValue:
                return missingCost + missing + 1
            case .objectColon:
                // The chosen property's value follows the colon (its frame is not pushed yet).
                let child = f.count >= 0 ? o.values[Int(f.count)] : (o.additional ?? 0)
                return 1 + minLength[child] + missingCost + missing + 1
            case .objectComma:
                if missing > 0 { return missingCost + (missing - 1) + 1 }
                // A key must follow the comma: the cheapest unseen one, or an empty additional name.
                var cheapest = Int.max / 4
                for k in o.keys.indices where f.seen & (1 << UInt64(k)) == 0 {
                    cheapest = min(cheapest, o.keys[k].count + 3 + minLength[o.values[k]])
                }
                if let a = o.additional { cheapest = min(cheapest, 3 + minLength[a]) }
                return cheapest + 1
            default:
                // Inside a key: finish a listed name (or an additional one), its value, the rest.
                let pos = Int(f.count)
                var best = Int.max / 4
                for k in o.keys.indices
                where f.mask & (1 << UInt64(k)) != 0 && f.seen & (1 << UInt64(k)) == 0 && o.keys[k].count >= pos {
                    let rest =
                        o.required & (1 << UInt64(k)) != 0
                        ? (missingCost - (o.keys[k].count + 3 + minLength[o.values[k]]), missing - 1)
                        : (missingCost, missing)
                    best = min(best, o.keys[k].count - pos + 2 + minLength[o.values[k]] + rest.0 + rest.1 + 1)
                }
                if f.sub == 1, let a = o.additional {
                    best = min(best, Int(f.left) + 2 + minLength[a] + missingCost + missing + 1)
                }
                return best
            }
        }
    }

    // MARK: - Transitions

    private static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }
    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    private func canEnd(_ f: Frame) -> Bool {
        switch f.phase {
        case .number: return f.sub == 1 || f.sub == 2 || f.sub == 4 || f.sub == 7
        case .literal:
            guard case .literals(let texts) = grammar.nodes[Int(f.node)] else { return false }
            return texts.indices.contains { f.mask & (1 << UInt64($0)) != 0 && texts[$0].count == Int(f.count) }
        default: return false
        }
    }

    /// Whitespace in a frame that allows it: counted, bounded.
    private func whitespace(_ stack: [Frame], into out: inout [[Frame]]) {
        var s = stack
        let top = s.count - 1
        guard Int(s[top].ws) < maxWhitespace else { return }
        s[top].ws += 1
        out.append(s)
    }

    /// Closes the top frame (its value is complete).
    private func pop(_ stack: [Frame], into out: inout [[Frame]]) {
        var s = stack
        s.removeLast()
        out.append(s)
    }

    private func feed(_ stack: [Frame], _ b: UInt8, into out: inout [[Frame]]) {
        guard let f = stack.last else { return }  // complete: nothing may follow
        let top = stack.count - 1
        switch f.phase {
        case .value:
            if Self.isWhitespace(b) { return whitespace(stack, into: &out) }
            var base = stack
            base.removeLast()
            start(Int(f.node), base, b, into: &out)

        case .objectOpen, .objectComma, .objectAfterValue, .objectColon:
            if Self.isWhitespace(b) { return whitespace(stack, into: &out) }
            guard case .object(let o) = grammar.nodes[Int(f.node)] else { return }
            var s = stack
            s[top].ws = 0
            switch (f.phase, b) {
            case (.objectOpen, UInt8(ascii: "\"")), (.objectComma, UInt8(ascii: "\"")):
                s[top].phase = .objectKey
                s[top].count = 0
                s[top].mask = o.keys.isEmpty ? 0 : (o.keys.count == 64 ? ~0 : (1 << UInt64(o.keys.count)) - 1)
                s[top].sub = o.additional == nil ? 0 : 1
                s[top].left = 0
                // The mask covers every listed name (to recognise a repeated one);
                // the key lives while an unseen one or an additional name fits.
                if s[top].mask & ~f.seen == 0 && s[top].sub == 0 { return }
                out.append(s)
            case (.objectOpen, UInt8(ascii: "}")), (.objectAfterValue, UInt8(ascii: "}")):
                guard f.seen & o.required == o.required else { return }
                pop(stack, into: &out)
            case (.objectAfterValue, UInt8(ascii: ",")):
                let all: UInt64 = o.keys.count == 64 ? ~0 : (1 << UInt64(o.keys.count)) - 1
                guard o.additional != nil || f.seen & all != all else { return }
                s[top].phase = .objectComma
                out.append(s)
            case (.objectColon, UInt8(ascii: ":")):
                let child = f.count >= 0 ? o.values[Int(f.count)] : (o.additional ?? -1)
                guard child >= 0, s.count < maxDepth else { return }
                s[top].phase = .objectAfterValue
                s.append(Frame(node: Int32(child), phase: .value))
                out.append(s)
            default:
                return
            }

        case .objectKey:
            guard case .object(let o) = grammar.nodes[Int(f.node)] else { return }
            var s = stack
            let pos = Int(f.count)
            if b == UInt8(ascii: "\"") {
                // The key ends: a listed property (once), or an additional one.
                if let k = o.keys.indices.first(where: { f.mask & (1 << UInt64($0)) != 0 && o.keys[$0].count == pos }) {
                    guard f.seen & (1 << UInt64(k)) == 0 else { return }
                    s[top].seen |= 1 << UInt64(k)
                    s[top].count = Int32(k)
                } else {
                    guard f.sub == 1, f.left == 0 else { return }
                    s[top].count = -1
                }
                s[top].phase = .objectColon
                s[top].ws = 0
                out.append(s)
                return
            }
            var mask: UInt64 = 0
            for k in o.keys.indices where f.mask & (1 << UInt64(k)) != 0 && o.keys[k].count > pos && o.keys[k][pos] == b
            {
                mask |= 1 << UInt64(k)
            }
            s[top].mask = mask
            s[top].count += 1
            if f.sub == 1 {
                // An additional name: plain characters only (no escapes), valid UTF-8.
                if b != UInt8(ascii: "\\"), let u = Self.utf8Step(f, b) {
                    s[top].left = u.left
                    s[top].lo = u.lo
                    s[top].hi = u.hi
                } else {
                    s[top].sub = 0
                }
            }
            guard s[top].mask & ~f.seen != 0 || s[top].sub == 1 else { return }
            out.append(s)

        case .arrayOpen, .arrayAfterItem:
            if Self.isWhitespace(b) { return whitespace(stack, into: &out) }
            guard case .array(let items, let minItems, let maxItems) = grammar.nodes[Int(f.node)] else { return }
            var s = stack
            s[top].ws = 0
            if b == UInt8(ascii: "]") {
                guard Int(f.count) >= minItems else { return }
                return pop(stack, into: &out)
            }
            if f.phase == .arrayAfterItem {
                guard b == UInt8(ascii: ","), maxItems.map({ Int(f.count) < $0 }) ?? true, s.count < maxDepth else {
                    return
                }
                s[top].count += 1
                s.append(Frame(node: Int32(items), phase: .value))
                out.append(s)
            } else {
                // The first item starts with this byte.
                guard maxItems.map({ $0 > 0 }) ?? true else { return }
                s[top].phase = .arrayAfterItem
                s[top].count = 1
                start(items, s, b, into: &out)
            }

        case .string:
            var s = stack
            switch f.sub {
            case 0:
                if b == UInt8(ascii: "\"") { return pop(stack, into: &out) }
                if b == UInt8(ascii: "\\") {
                    s[top].sub = 1
                } else {
                    guard let u = Self.utf8Step(f, b) else { return }
                    s[top].left = u.left
                    s[top].lo = u.lo
                    s[top].hi = u.hi
                    if u.left > 0 { s[top].sub = 3 }
                }
            case 1:
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    s[top].sub = 0
                case UInt8(ascii: "u"):
                    s[top].sub = 2
                    s[top].count = 4
                default: return
                }
            case 2:
                // \uXXXX without surrogates (no D800-DFFF: the text stays valid Unicode).
                guard Self.hexValue(b) != nil, !(f.count == 4 && (b == UInt8(ascii: "d") || b == UInt8(ascii: "D")))
                else { return }
                s[top].count -= 1
                if s[top].count == 0 { s[top].sub = 0 }
            default:
                guard let u = Self.utf8Step(f, b) else { return }
                s[top].left = u.left
                s[top].lo = u.lo
                s[top].hi = u.hi
                if u.left == 0 { s[top].sub = 0 }
            }
            out.append(s)

        case .number:
            guard case .number(let integer) = grammar.nodes[Int(f.node)] else { return }
            var s = stack
            let digit = Self.isDigit(b)
            // Sub-states: 0 after '-', 1 a leading 0, 2 integer digits, 3 after '.',
            // 4 fraction digits, 5 after 'e', 6 after the exponent sign, 7 exponent digits.
            switch (f.sub, b) {
            case (0, UInt8(ascii: "0")): s[top].sub = 1
            case (0, _) where digit: s[top].sub = 2; s[top].count = 1
            case (2, _) where digit && f.count < Self.maxIntegerDigits: s[top].count += 1
            case (1, UInt8(ascii: ".")) where !integer, (2, UInt8(ascii: ".")) where !integer:
                s[top].sub = 3; s[top].count = 0
            case (3, _) where digit: s[top].sub = 4; s[top].count = 1
            case (4, _) where digit && f.count < Self.maxFractionDigits: s[top].count += 1
            case (1, UInt8(ascii: "e")) where !integer, (1, UInt8(ascii: "E")) where !integer,
                (2, UInt8(ascii: "e")) where !integer, (2, UInt8(ascii: "E")) where !integer,
                (4, UInt8(ascii: "e")), (4, UInt8(ascii: "E")):
                s[top].sub = 5; s[top].count = 0
            case (5, UInt8(ascii: "+")), (5, UInt8(ascii: "-")): s[top].sub = 6
            case (5, _) where digit, (6, _) where digit: s[top].sub = 7; s[top].count = 1
            case (7, _) where digit && f.count < Self.maxExponentDigits: s[top].count += 1
            default:
                // Not part of the number: it ends here if it can, and the byte goes on.
                guard canEnd(f) else { return }
                var base = stack
                base.removeLast()
                return feed(base, b, into: &out)
            }
            out.append(s)

        case .literal:
            guard case .literals(let texts) = grammar.nodes[Int(f.node)] else { return }
            let pos = Int(f.count)
            var mask: UInt64 = 0
            for k in texts.indices where f.mask & (1 << UInt64(k)) != 0 && texts[k].count > pos && texts[k][pos] == b {
                mask |= 1 << UInt64(k)
            }
            if mask == 0 {
                guard canEnd(f) else { return }
                var base = stack
                base.removeLast()
                return feed(base, b, into: &out)
            }
            var s = stack
            s[top].mask = mask
            s[top].count += 1
            out.append(s)
        }
    }

    /// Opens a value of `node` whose first byte is `b`, above `base`.
    private func start(_ node: Int, _ base: [Frame], _ b: UInt8, into out: inout [[Frame]]) {
        guard base.count < maxDepth else { return }
        var s = base
        switch grammar.nodes[node] {
        case .union(let alternatives):
            for a in alternatives { start(a, base, b, into: &out) }
            return
        case .object:
            guard b == UInt8(ascii: "{") else { return }
            s.append(Frame(node: Int32(node), phase: .objectOpen))
        case .array:
            guard b == UInt8(ascii: "[") else { return }
            s.append(Frame(node: Int32(node), phase: .arrayOpen))
        case .string:
            guard b == UInt8(ascii: "\"") else { return }
            s.append(Frame(node: Int32(node), phase: .string))
        case .number:
            var f = Frame(node: Int32(node), phase: .number)
            switch b {
            case UInt8(ascii: "-"): f.sub = 0
            case UInt8(ascii: "0"): f.sub = 1
            case _ where Self.isDigit(b): f.sub = 2; f.count = 1
            default: return
            }
            s.append(f)
        case .literals(let texts):
            var mask: UInt64 = 0
            for k in texts.indices where texts[k].first == b { mask |= 1 << UInt64(k) }
            guard mask != 0 else { return }
            var f = Frame(node: Int32(node), phase: .literal)
            f.mask = mask
            f.count = 1
            s.append(f)
        }
        out.append(s)
    }

    /// One byte of string content (not `"` or `\`): the UTF-8 state after it,
    /// or nil for a control character or invalid UTF-8.
    private static func utf8Step(_ f: Frame, _ b: UInt8) -> (left: UInt8, lo: UInt8, hi: UInt8)? {
        if f.left > 0 {
            guard b >= f.lo && b <= f.hi else { return nil }
            return (f.left - 1, 0x80, 0xBF)
        }
        switch b {
        case 0x00..<0x20: return nil
        case 0x20..<0x80: return (0, 0, 0)
        case 0xC2...0xDF: return (1, 0x80, 0xBF)
        case 0xE0: return (2, 0xA0, 0xBF)
        case 0xED: return (2, 0x80, 0x9F)
        case 0xE1...0xEF: return (2, 0x80, 0xBF)
        case 0xF0: return (3, 0x90, 0xBF)
        case 0xF1...0xF3: return (3, 0x80, 0xBF)
        case 0xF4: return (3, 0x80, 0x8F)
        default: return nil
        }
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }
}
