// Batches for fine-tuning, as mlx-lm's iterate_batches makes them: examples
// sorted by length and grouped, so a batch pads little; each sequence cut at
// the maximum length; training visits the batches in a shuffled order per
// epoch (from a seeded generator, so a run repeats).

import Tessera

/// A padded batch of token ids [B, L] with each row's (offset, length).
public struct TokenBatch: Sendable {
    public let tokens: Tensor
    public let offsets: [Int]
    public let lengths: [Int]

    /// The tokens the loss counts: targets at positions in [max(offset, 1), length).
    public var targetCount: Int { zip(offsets, lengths).reduce(0) { $0 + max(0, $1.1 - max($1.0, 1)) } }

    /// The batch of rows `range` (same width).
    public func rows(_ range: Range<Int>) -> TokenBatch {
        TokenBatch(tokens: tokens[range], offsets: Array(offsets[range]), lengths: Array(lengths[range]))
    }
}

/// A small deterministic generator (SplitMix64) for the batch order.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

public struct BatchIterator: Sendable {
    let examples: [TokenizedExample]
    let groups: [[Int]]
    let maxSequenceLength: Int
    let shuffle: Bool
    var generator: SeededGenerator
    var order: [Int] = []
    var position = 0

    /// Batches of `batchSize` examples of similar length (a last smaller
    /// batch is dropped when there are enough examples for a full one, as mlx-lm).
    public init(
        _ examples: [TokenizedExample], batchSize: Int, maxSequenceLength: Int, shuffle: Bool, seed: UInt64 = 0
    ) {
        let sorted = examples.indices.sorted { examples[$0].tokens.count < examples[$1].tokens.count }
        let size = max(1, min(batchSize, examples.count))
        var groups = stride(from: 0, to: sorted.count - size + 1, by: size).map { Array(sorted[$0..<$0 + size]) }
        if groups.isEmpty { groups = [sorted] }
        (self.examples, self.groups, self.maxSequenceLength, self.shuffle) = (
            examples, groups, maxSequenceLength, shuffle
        )
        generator = SeededGenerator(seed: seed)
    }

    public var batchCount: Int { groups.count }

    /// The next batch; after the last, a new epoch (reshuffled when training).
    public mutating func next() -> TokenBatch {
        if position == order.count {
            order = Array(groups.indices)
            if shuffle { order.shuffle(using: &generator) }
            position = 0
        }
        defer { position += 1 }
        return batch(groups[order[position]])
    }

    func batch(_ indices: [Int]) -> TokenBatch {
        let cut = indices.map { Array(examples[$0].tokens.prefix(maxSequenceLength)) }
        let width = max(2, cut.map(\.count).max() ?? 2)
        var flat = [Int32](repeating: 0, count: cut.count * width)
        for (row, tokens) in cut.enumerated() {
            for (j, t) in tokens.enumerated() { flat[row * width + j] = Int32(truncatingIfNeeded: t) }
        }
        return TokenBatch(
            tokens: Tensor(flat, shape: [cut.count, width]), offsets: indices.map { examples[$0].offset },
            lengths: cut.map(\.count))
    }
}
