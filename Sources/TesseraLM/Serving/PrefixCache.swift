// The prefix cache of BatchedEngine: the keys and values of finished
// sequences (their prompt and the tokens fed back while generating), kept
// for the next request that starts with the same tokens (a chat re-sent with
// one more message). Entries are found by their blocks of tokens: a hash
// of each block-aligned prefix (`blockSize` tokens) maps to the entries that
// hold it, so a lookup walks the request's blocks until no entry holds the
// next one, then extends the match token by token within the entries of the
// last block found. Least recently used entries leave first when the
// entries' bytes pass the budget. Used only on the engine's scheduler thread.

import Tessera

final class PrefixCache {
    final class Entry {
        /// The tokens whose keys and values the caches hold, in order.
        let tokens: [Int]
        /// One cache per layer, holding exactly `tokens.count` positions; never updated again.
        let caches: [KVCache]
        let bytes: Int
        var lastUse: UInt64

        init(tokens: [Int], caches: [KVCache], bytes: Int, lastUse: UInt64) {
            (self.tokens, self.caches, self.bytes, self.lastUse) = (tokens, caches, bytes, lastUse)
        }
    }

    static let blockSize = 16
    let budget: Int
    private(set) var bytes = 0
    private var entries: [ObjectIdentifier: Entry] = [:]
    /// Hash of a block-aligned prefix (its tokens) -> the entries that start with it.
    private var blocks: [Int: Set<ObjectIdentifier>] = [:]
    private var clock: UInt64 = 0

    init(budget: Int) { self.budget = max(0, budget) }

    var count: Int { entries.count }

    /// The hashes of `tokens`' block-aligned prefixes (one per whole block).
    private static func prefixHashes(_ tokens: [Int]) -> [Int] {
        var hasher = Hasher()
        var hashes: [Int] = []
        hashes.reserveCapacity(tokens.count / blockSize)
        for (i, t) in tokens.enumerated() {
            hasher.combine(t)
            if (i + 1) % blockSize == 0 {
                // A running hash: the prefix so far, without finalizing the running hasher.
                var copy = hasher
                copy.combine(i)
                hashes.append(copy.finalize())
            }
        }
        return hashes
    }

    /// The entry sharing the longest prefix with `tokens`, and that length
    /// (0 and nil when none shares a token). Marks the entry used.
    func longestPrefix(_ tokens: [Int]) -> (entry: Entry, length: Int)? {
        guard !entries.isEmpty, !tokens.isEmpty else { return nil }
        var candidates: Set<ObjectIdentifier> = Set(entries.keys)
        // Narrow to the entries holding the longest run of whole blocks (a hash may collide: confirmed below).
        for hash in Self.prefixHashes(tokens) {
            guard let holders = blocks[hash] else { break }
            let narrowed = candidates.intersection(holders)
            if narrowed.isEmpty { break }
            candidates = narrowed
        }
        var best: (entry: Entry, length: Int)?
        for id in candidates {
            guard let entry = entries[id] else { continue }
            var n = 0
            let limit = min(entry.tokens.count, tokens.count)
            while n < limit && entry.tokens[n] == tokens[n] { n += 1 }
            if let current = best {
                if n > current.length || (n == current.length && entry.lastUse > current.entry.lastUse) {
                    best = (entry, n)
                }
            } else if n > 0 {
                best = (entry, n)
            }
        }
        guard let best else { return nil }
        clock += 1
        best.entry.lastUse = clock
        return best
    }

    /// Keeps `caches` (holding `tokens`' positions) unless they alone pass the
    /// budget; drops entries whose tokens the new one starts with, then the
    /// least recently used while over the budget.
    func insert(tokens: [Int], caches: [KVCache], bytes: Int) {
        guard !tokens.isEmpty, bytes <= budget else { return }
        for (id, entry) in entries where entry.tokens.count <= tokens.count && tokens.starts(with: entry.tokens) {
            remove(id)
        }
        // An entry that already holds these tokens and more makes this one redundant.
        if entries.values.contains(where: { $0.tokens.count >= tokens.count && $0.tokens.starts(with: tokens) }) {
            return
        }
        clock += 1
        let entry = Entry(tokens: tokens, caches: caches, bytes: bytes, lastUse: clock)
        let id = ObjectIdentifier(entry)
        entries[id] = entry
        for hash in Self.prefixHashes(tokens) { blocks[hash, default: []].insert(id) }
        self.bytes += bytes
        while self.bytes > budget, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            remove(oldest.key)
        }
    }

    func removeAll() {
        entries.removeAll()
        blocks.removeAll()
        bytes = 0
    }

    private func remove(_ id: ObjectIdentifier) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        for hash in Self.prefixHashes(entry.tokens) {
            blocks[hash]?.remove(id)
            if blocks[hash]?.isEmpty == true { blocks[hash] = nil }
        }
        bytes -= entry.bytes
    }
}
