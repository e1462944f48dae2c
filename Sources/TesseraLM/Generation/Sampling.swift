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

        // Candidates by descending logit; each filter keeps a prefix.
        var order = z.indices.sorted { z[$0] > z[$1] }
        if p.topK > 0 && p.topK < order.count { order.removeLast(order.count - p.topK) }
        let top = z[order[0]]
        var probs = order.map { Glibc.exp(Double((z[$0] - top) / p.temperature)) }
        var total = probs.reduce(0, +)
        if p.minP > 0 {
            let threshold = Double(p.minP) * probs[0]
            let keep = probs.prefix { $0 >= threshold }.count
            probs.removeLast(probs.count - Swift.max(keep, 1))
            total = probs.reduce(0, +)
        }
        if p.topP < 1 {
            var cumulative = 0.0, keep = 0
            for q in probs {
                cumulative += q / total
                keep += 1
                if cumulative >= Double(p.topP) { break }
            }
            probs.removeLast(probs.count - keep)
            total = probs.reduce(0, +)
        }
        var r = nextUniform() * total
        for (i, q) in probs.enumerated() {
            r -= q
            if r <= 0 { return order[i] }
        }
        return order[probs.count - 1]
    }

    private func argmax(_ z: [Float]) -> Int {
        var best = 0
        for i in z.indices where z[i] > z[best] { best = i }
        return best
    }
}
