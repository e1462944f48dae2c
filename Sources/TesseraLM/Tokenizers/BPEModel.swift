// The BPE model: one pre-tokenized word -> token ids.
//
// Symbols start as the word's unicode scalars (byte-level vocabularies see
// GPT-2's byte alphabet here), unknown scalars become <0xNN> byte tokens
// (byte fallback) or the unknown token. Then the pair with the lowest merge
// rank is merged, leftmost first on ties, until no pair merges: a binary heap
// over a linked list of symbols, as Hugging Face tokenizers' Word::merge_all,
// so long words cost O(n log n), not O(n^2).

import Synchronization
import Tessera

struct BPEModel: Sendable {
    struct Merge: Sendable {
        var rank: Int32
        var newID: Int32
    }

    let vocab: [String: Int]
    let idToToken: [Int: String]
    /// (left id << 32 | right id) -> rank and merged id.
    let merges: [UInt64: Merge]
    let singleScalarIDs: [UInt32: Int]
    let byteIDs: [Int]?
    let unknownID: Int?
    let fuseUnknown: Bool
    let ignoreMerges: Bool
    private let cache = WordCache()

    init(
        vocab: [String: Int], merges: [UInt64: Merge], unknownID: Int?, fuseUnknown: Bool,
        byteFallback: Bool, ignoreMerges: Bool
    ) {
        self.vocab = vocab
        var idToToken: [Int: String] = [:]
        var single: [UInt32: Int] = [:]
        for (token, id) in vocab {
            idToToken[id] = token
            var it = token.unicodeScalars.makeIterator()
            if let first = it.next(), it.next() == nil { single[first.value] = id }
        }
        self.idToToken = idToToken
        self.singleScalarIDs = single
        self.merges = merges
        self.unknownID = unknownID
        self.fuseUnknown = fuseUnknown
        self.ignoreMerges = ignoreMerges
        if byteFallback {
            let ids = (0..<256).compactMap { vocab[Self.byteTokenName(UInt8($0))] }
            byteIDs = ids.count == 256 ? ids : nil
        } else {
            byteIDs = nil
        }
    }

    static func byteTokenName(_ b: UInt8) -> String {
        let hex = String(b, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    static func key(_ a: Int, _ b: Int) -> UInt64 {
        UInt64(UInt32(truncatingIfNeeded: a)) << 32 | UInt64(UInt32(truncatingIfNeeded: b))
    }

    /// Merge ranks from a `merges` list ("a b" strings or [a, b] pairs).
    static func merges(_ pairs: [(String, String)], vocab: [String: Int]) throws(TokenizerError) -> [UInt64: Merge] {
        var out: [UInt64: Merge] = [:]
        out.reserveCapacity(pairs.count)
        for (rank, (a, b)) in pairs.enumerated() {
            guard let ia = vocab[a], let ib = vocab[b] else {
                throw .malformed("merge \"\(a) \(b)\" uses a token missing from the vocabulary")
            }
            guard let merged = vocab[a + b] else {
                throw .malformed("merge \"\(a) \(b)\" makes a token missing from the vocabulary")
            }
            let k = key(ia, ib)
            if out[k] == nil { out[k] = Merge(rank: Int32(rank), newID: Int32(merged)) }
        }
        return out
    }

    /// Merge ranks from SentencePiece scores (GGUF "llama" vocabularies carry
    /// scores, not merges): any two tokens whose concatenation is a token
    /// merge, the higher the merged token's score the earlier.
    static func merges(scores: [Float], tokens: [String], vocab: [String: Int]) -> [UInt64: Merge] {
        let order = tokens.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        var rankOf = [Int32](repeating: 0, count: tokens.count)
        for (r, id) in order.enumerated() { rankOf[id] = Int32(r) }
        var out: [UInt64: Merge] = [:]
        for (id, token) in tokens.enumerated() {
            let s = Array(token.unicodeScalars)
            guard s.count >= 2 else { continue }
            for cut in 1..<s.count {
                var left = String.UnicodeScalarView(), right = String.UnicodeScalarView()
                left.append(contentsOf: s[..<cut])
                right.append(contentsOf: s[cut...])
                guard let a = vocab[String(left)], let b = vocab[String(right)] else { continue }
                out[key(a, b)] = Merge(rank: rankOf[id], newID: Int32(id))
            }
        }
        return out
    }

    func tokenize(_ word: [Unicode.Scalar], into out: inout [Int]) {
        guard !word.isEmpty else { return }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: word)
        let text = String(view)
        if ignoreMerges, let id = vocab[text] {
            out.append(id)
            return
        }
        let cacheable = word.count < 256
        if cacheable, let hit = cache.get(text) {
            out.append(contentsOf: hit)
            return
        }
        let ids = merge(initialSymbols(word))
        if cacheable { cache.set(text, ids) }
        out.append(contentsOf: ids)
    }

    private func initialSymbols(_ word: [Unicode.Scalar]) -> [Int] {
        var symbols: [Int] = []
        symbols.reserveCapacity(word.count)
        var pendingUnknown = false
        for s in word {
            if let id = singleScalarIDs[s.value] {
                symbols.append(id)
                pendingUnknown = false
                continue
            }
            if let byteIDs {
                UTF8.encode(s) { symbols.append(byteIDs[Int($0)]) }
                pendingUnknown = false
                continue
            }
            guard let unknownID else { continue }
            if !(fuseUnknown && pendingUnknown) { symbols.append(unknownID) }
            pendingUnknown = true
        }
        return symbols
    }

    private struct Candidate: Comparable {
        var rank: Int32
        var pos: Int32
        var newID: Int32
        static func < (a: Candidate, b: Candidate) -> Bool {
            a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos
        }
    }

    private func merge(_ initial: [Int]) -> [Int] {
        guard initial.count > 1 else { return initial }
        var ids = initial
        var prev = Array(-1..<(initial.count - 1))
        var next = Array(1...initial.count)
        next[initial.count - 1] = -1
        var alive = [Bool](repeating: true, count: initial.count)
        var heap = MinHeap<Candidate>()
        for i in 0..<(ids.count - 1) {
            if let m = merges[Self.key(ids[i], ids[i + 1])] {
                heap.push(Candidate(rank: m.rank, pos: Int32(i), newID: m.newID))
            }
        }
        while let top = heap.pop() {
            let pos = Int(top.pos)
            guard alive[pos], next[pos] != -1 else { continue }
            let right = next[pos]
            // Skip stale entries: the pair at `pos` changed since this was queued.
            guard let m = merges[Self.key(ids[pos], ids[right])], m.newID == top.newID else { continue }
            ids[pos] = Int(top.newID)
            alive[right] = false
            next[pos] = next[right]
            if next[right] != -1 { prev[next[right]] = pos }
            if prev[pos] != -1, let m = merges[Self.key(ids[prev[pos]], ids[pos])] {
                heap.push(Candidate(rank: m.rank, pos: Int32(prev[pos]), newID: m.newID))
            }
            if next[pos] != -1, let m = merges[Self.key(ids[pos], ids[next[pos]])] {
                heap.push(Candidate(rank: m.rank, pos: Int32(pos), newID: m.newID))
            }
        }
        var out: [Int] = []
        var i = 0
        while i != -1 {
            out.append(ids[i])
            i = next[i]
        }
        return out
    }
}

/// A bounded, thread-safe word -> ids cache (cleared when full).
final class WordCache: Sendable {
    private let storage = Mutex<[String: [Int]]>([:])
    private static let capacity = 10_000

    func get(_ word: String) -> [Int]? {
        storage.withLock { $0[word] }
    }

    func set(_ word: String, _ ids: [Int]) {
        storage.withLock {
            if $0.count >= Self.capacity { $0.removeAll(keepingCapacity: true) }
            $0[word] = ids
        }
    }
}

struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count, items[l] < items[m] { m = l }
            if r < items.count, items[r] < items[m] { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return top
    }
}
