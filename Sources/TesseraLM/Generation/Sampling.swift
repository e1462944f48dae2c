// Turning next-token logits into a token: penalties, logit bias, temperature,
// top-k, top-p (nucleus), min-p, and a seeded draw. Works on one row of
// logits on the host: the vocabulary is small next to the model.

import Tessera
#if canImport(Glibc)
    import Glibc
#endif

/// How to pick each next token.
public struct SamplingParameters: Sendable {
    /// 0 picks the most likely token (greedy).
    public var temperature: Float = 0.7
    public var topP: Float = 1
    public var topK: Int = 0
    public var minP: Float = 0
    /// > 1 discourages tokens seen in the last `repetitionContext` tokens (divides positive logits).
    public var repetitionPenalty: Float = 1
    public var repetitionContext: Int = 64
    /// Subtracted once from the logit of every token already generated.
    public var presencePenalty: Float = 0
    /// Subtracted per occurrence of a token already generated.
    public var frequencyPenalty: Float = 0
    /// Added to the logits of the given token ids.
    public var logitBias: [Int: Float] = [:]
    public var seed: UInt64? = nil

    public init() {}

    public static var greedy: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = 0
        return p
    }
}

/// A sampler with its own random stream.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var state: UInt64

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        state = (parameters.seed ?? UInt64.random(in: 0...UInt64.max)) &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    private mutating func nextUniform() -> Double {
        // PCG-style LCG step, top 53 bits.
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(state >> 11) / Double(1 << 53)
    }

    /// The next token from `logits` (one row), given the tokens so far.
    public mutating func sample(_ logits: [Float], history: [Int]) -> Int {
        let p = parameters
        var z = logits
        for (id, bias) in p.logitBias where id >= 0 && id < z.count { z[id] += bias }
        if p.repetitionPenalty != 1 {
            for id in Set(history.suffix(p.repetitionContext)) where id >= 0 && id < z.count {
                z[id] = z[id] > 0 ? z[id] / p.repetitionPenalty : z[id] * p.repetitionPenalty
            }
        }
        if p.presencePenalty != 0 || p.frequencyPenalty != 0 {
            var counts: [Int: Int] = [:]
            for id in history { counts[id, default: 0] += 1 }
            for (id, n) in counts where id >= 0 && id < z.count {
                z[id] -= p.presencePenalty + p.frequencyPenalty * Float(n)
            }
        }
        if p.temperature <= 0 { return argmax(z) }

        // Weights exp((z - max) / T) of the candidates; each filter narrows
        // them without sorting the vocabulary: top-k selects k, min-p compares
        // with the top weight (1), top-p pops the largest from a heap until the
        // mass is reached. `ids` nil: every token, in id order.
        let top = z[argmax(z)]
        let invT = 1 / Double(p.temperature)
        func weight(_ logit: Float) -> Double { Glibc.exp(Double(logit - top) * invT) }
        var ids: [Int]? = nil
        var weights: [Double]
        if p.topK > 0 && p.topK < z.count {
            let chosen = Self.largest(p.topK, of: z)
            ids = chosen
            weights = chosen.map { weight(z[$0]) }
        } else {
            weights = z.map(weight)
        }
        if p.minP > 0 {
            let threshold = Double(p.minP)
            let all = ids ?? Array(z.indices)
            var keptIds: [Int] = [], keptWeights: [Double] = []
            for (id, w) in zip(all, weights) where w >= threshold {
                keptIds.append(id)
                keptWeights.append(w)
            }
            (ids, weights) = (keptIds, keptWeights)  // never empty: the top token has weight 1
        }
        if p.topP < 1 {
            let nucleus = Self.nucleus(weights, mass: Double(p.topP))
            ids = nucleus.map { ids?[$0] ?? $0 }
            weights = nucleus.map { weights[$0] }
        }
        var r = nextUniform() * weights.reduce(0, +)
        for (i, w) in weights.enumerated() {
            r -= w
            if r <= 0 { return ids?[i] ?? i }
        }
        return ids?[weights.count - 1] ?? weights.count - 1
    }

    /// The ids of the `k` largest logits, largest first (ties: lower id first),
    /// through a size-k min-heap: O(n log k) rather than sorting the vocabulary.
    static func largest(_ k: Int, of z: [Float]) -> [Int] {
        // Heap order: the root is the weakest kept id (smaller logit, or equal with a higher id).
        func weaker(_ a: Int, _ b: Int) -> Bool { z[a] < z[b] || (z[a] == z[b] && a > b) }
        var heap: [Int] = []
        heap.reserveCapacity(k)
        for id in z.indices {
            if heap.count < k {
                heap.append(id)
                var c = heap.count - 1
                while c > 0, weaker(heap[c], heap[(c - 1) / 2]) {
                    heap.swapAt(c, (c - 1) / 2)
                    c = (c - 1) / 2
                }
            } else if weaker(heap[0], id) {
                heap[0] = id
                siftDown(&heap, from: 0, count: k, before: weaker)
            }
        }
        return heap.sorted { weaker($1, $0) }
    }

    /// The positions of the smallest set of largest `weights` holding at
    /// least `mass` of their total, largest first (ties: lower position first).
    static func nucleus(_ weights: [Double], mass: Double) -> [Int] {
        let goal = mass * weights.reduce(0, +)
        // A max-heap of positions, built in O(n); popped until the goal is met.
        func before(_ a: Int, _ b: Int) -> Bool { weights[a] > weights[b] || (weights[a] == weights[b] && a < b) }
        var heap = Array(weights.indices)
        for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) {
            siftDown(&heap, from: i, count: heap.count, before: before)
        }
        var kept: [Int] = [], cumulative = 0.0, count = heap.count
        while count > 0 {
            let best = heap[0]
            kept.append(best)
            cumulative += weights[best]
            if cumulative >= goal { break }
            count -= 1
            heap[0] = heap[count]
            siftDown(&heap, from: 0, count: count, before: before)
        }
        return kept
    }

    /// Restores heap order below `i` among the first `count` entries, where
    /// `before(a, b)` holds when `a` belongs nearer the root.
    private static func siftDown(_ heap: inout [Int], from i: Int, count: Int, before: (Int, Int) -> Bool) {
        var i = i
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < count && before(heap[l], heap[m]) { m = l }
            if r < count && before(heap[r], heap[m]) { m = r }
            guard m != i else { return }
            heap.swapAt(i, m)
            i = m
        }
    }

    /// Whether `sample` returns the first index of the largest logit, the
    /// logits untouched (greedy, no bias, no penalties): `argmax` of the row.
    public var picksLargest: Bool {
        let p = parameters
        return p.temperature <= 0 && p.logitBias.isEmpty && p.repetitionPenalty == 1 && p.presencePenalty == 0
            && p.frequencyPenalty == 0
    }

    private func argmax(_ z: [Float]) -> Int { z.withUnsafeBufferPointer { Self.argmax($0) } }

    /// The first index of the largest value, NaN never larger than anything
    /// (0 when the first value is NaN, or for an empty row): the result of
    /// comparing each value in turn with the best so far, sixteen lanes at a time.
    public static func argmax(_ z: UnsafeBufferPointer<Float>) -> Int {
        guard let base = z.baseAddress, z.count > 0, !z[0].isNaN else { return 0 }
        var best = 0
        var i = 0
        if z.count >= 64 {
            // Per lane: its largest value so far and the first index holding it.
            var top = SIMD16<Float>(repeating: -.infinity)
            var at = SIMD16<Int32>(repeating: -1)
            var index = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
            let raw = UnsafeRawPointer(base)
            while i + 16 <= z.count, i + 16 <= Int(Int32.max) {
                let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                let larger = v .> top
                top.replace(with: v, where: larger)
                at.replace(with: index, where: larger)
                index &+= 16
                i += 16
            }
            // The largest lane value, and the smallest index among the lanes holding it.
            var found = false
            for lane in 0..<16 where at[lane] >= 0 {
                let candidate = Int(at[lane])
                if !found || z[candidate] > z[best] || (z[candidate] == z[best] && candidate < best) {
                    best = candidate
                    found = true
                }
            }
            if !found { best = 0 }  // nothing above -infinity in the lanes: index 0 holds -infinity
        }
        while i < z.count {
            if z[i] > z[best] { best = i }
            i += 1
        }
        return best
    }
}
