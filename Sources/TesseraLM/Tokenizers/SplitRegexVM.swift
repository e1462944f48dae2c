// Runs a parsed split pattern with a Pike VM (Thompson's construction, one
// thread per program position): time O(text × program) per search and no
// backtracking, so a pattern such as `(a+)+$` cannot run without bound.
// Threads are kept in priority order and a match cuts the lower ones, which
// gives the leftmost-first matches of a backtracking engine (Oniguruma, as
// Hugging Face tokenizers uses) for the regular subset SplitRegexParser accepts.
// One search is O(text × program); finding every match restarts after each
// one, which a pattern whose preferred branch scans ahead in vain (`a.*z|a`)
// turns quadratic, so RegexSplitter gives the searches of one text a budget.

/// One instruction of a compiled pattern.
enum RegexInstruction: Sendable {
    case set(ScalarSet)
    /// Try the first target, then the second (priority order).
    case split(Int, Int)
    case jump(Int)
    case anchor(RegexAnchor)
    /// A lookahead: the program of its body, run anchored at the position.
    case lookahead(RegexProgram, negated: Bool)
    case match
}

/// A compiled pattern.
struct RegexProgram: Sendable {
    private(set) var code: [RegexInstruction] = []
    /// Bound on the expanded program (counted repetitions copy their body).
    static let maxInstructions = 20_000

    init(_ node: RegexNode) throws(RegexSyntaxError) {
        try emit(node)
        code.append(.match)
    }

    private mutating func append(_ i: RegexInstruction) throws(RegexSyntaxError) -> Int {
        guard code.count < Self.maxInstructions else {
            throw RegexSyntaxError(message: "the pattern expands past \(Self.maxInstructions) instructions")
        }
        code.append(i)
        return code.count - 1
    }

    private mutating func emit(_ node: RegexNode) throws(RegexSyntaxError) {
        switch node {
        case .empty:
            break
        case .set(let s):
            _ = try append(.set(s))
        case .anchor(let a):
            _ = try append(.anchor(a))
        case .lookahead(let body, let negated):
            _ = try append(.lookahead(try RegexProgram(body), negated: negated))
        case .concat(let parts):
            for p in parts { try emit(p) }
        case .alternation(let options):
            var exits: [Int] = []
            for (k, option) in options.enumerated() {
                if k == options.count - 1 {
                    try emit(option)
                } else {
                    let split = try append(.split(0, 0))
                    try emit(option)
                    exits.append(try append(.jump(0)))
                    code[split] = .split(split + 1, code.count)
                }
            }
            for e in exits { code[e] = .jump(code.count) }
        case .repetition(let body, let min, let max, let greedy):
            for _ in 0..<min { try emit(body) }
            if let max {
                // Each optional copy: split(copy, out); the outs all jump past the last one.
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(try append(.split(0, 0)))
                    try emit(body)
                }
                for s in splits { code[s] = preferring(greedy, s + 1, code.count) }
            } else {
                // loop: split(body, out); body; jump loop
                let loop = try append(.split(0, 0))
                try emit(body)
                _ = try append(.jump(loop))
                code[loop] = preferring(greedy, loop + 1, code.count)
            }
        }
    }

    private func preferring(_ greedy: Bool, _ body: Int, _ out: Int) -> RegexInstruction {
        greedy ? .split(body, out) : .split(out, body)
    }
}

/// The Pike VM over one text.
struct RegexRun {
    let program: RegexProgram
    let text: [Unicode.Scalar]

    private struct Thread {
        var pc: Int
        var start: Int
    }

    /// The leftmost-first match starting at or after `from` (only at `from` when `anchored`).
    /// Each thread step spends one of `budget`; nil once it is spent (`budget` then below 0).
    func search(from: Int, anchored: Bool = false, budget: inout Int) -> Range<Int>? {
        let code = program.code
        var current: [Thread] = [], next: [Thread] = []
        // Which pcs are already in the list being built, marked by step.
        var seen = [Int](repeating: -1, count: code.count)
        var stack: [Thread] = []
        var found: Range<Int>?

        /// Adds `t` and everything reachable without consuming a scalar, in priority order.
        func add(_ t: Thread, at pos: Int, to list: inout [Thread]) {
            stack.append(t)
            while let t = stack.popLast() {
                guard seen[t.pc] != pos else { continue }
                seen[t.pc] = pos
                switch code[t.pc] {
                case .jump(let target):
                    stack.append(Thread(pc: target, start: t.start))
                case .split(let first, let second):
                    stack.append(Thread(pc: second, start: t.start))
                    stack.append(Thread(pc: first, start: t.start))
                case .anchor(let a):
                    if holds(a, at: pos) { stack.append(Thread(pc: t.pc + 1, start: t.start)) }
                case .lookahead(let body, let negated):
                    // Bounded: the body's length is (SplitRegexParser.maxLookaheadLength).
                    var steps = Int.max
                    let matched =
                        RegexRun(program: body, text: text).search(from: pos, anchored: true, budget: &steps) != nil
                    if matched != negated { stack.append(Thread(pc: t.pc + 1, start: t.start)) }
                case .set, .match:
                    list.append(t)
                }
            }
        }

        var pos = from
        while pos <= text.count {
            if found == nil && (!anchored || pos == from) {
                add(Thread(pc: 0, start: pos), at: pos, to: &current)
            }
            if current.isEmpty {
                // No thread alive: done once a match is found, else try the next start.
                if found != nil || anchored { break }
                pos += 1
                continue
            }
            next.removeAll(keepingCapacity: true)
            budget -= current.count
            if budget < 0 { return nil }
            for t in current {
                if case .set(let s) = code[t.pc] {
                    if pos < text.count && s.contains(text[pos]) {
                        add(Thread(pc: t.pc + 1, start: t.start), at: pos + 1, to: &next)
                    }
                } else {
                    // A match: lower-priority threads (later in the list) are cut.
                    found = t.start..<pos
                    break
                }
            }
            swap(&current, &next)
            pos += 1
        }
        return found
    }

    private func holds(_ a: RegexAnchor, at pos: Int) -> Bool {
        switch a {
        case .textStart: return pos == 0
        case .textEnd: return pos == text.count
        case .textEndBeforeNewline: return pos == text.count || (pos == text.count - 1 && text[pos] == "\n")
        case .lineStart: return pos == 0 || text[pos - 1] == "\n"
        case .lineEnd: return pos == text.count || text[pos] == "\n"
        case .wordBoundary, .notWordBoundary:
            let before = pos > 0 && ScalarProperty.word.contains(text[pos - 1])
            let after = pos < text.count && ScalarProperty.word.contains(text[pos])
            return (before != after) == (a == .wordBoundary)
        }
    }
}
