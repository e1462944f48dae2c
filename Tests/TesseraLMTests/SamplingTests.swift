// Sampling: greedy, temperature, top-k, top-p, min-p, their combination and the
// repetition penalty, against direct computations of each rule.

import XCTest

@testable import TesseraLM

final class SamplingTests: XCTestCase {
    /// Softmax of `z / t` restricted to `ids`, in float64.
    private func probabilities(_ z: [Float], temperature t: Double, ids: [Int]) -> [Int: Double] {
        let top = ids.map { Double(z[$0]) }.max()!
        let w = ids.map { exp((Double(z[$0]) - top) / t) }
        let total = w.reduce(0, +)
        return Dictionary(uniqueKeysWithValues: zip(ids, w.map { $0 / total }))
    }

    /// Draw frequencies of `n` seeded samples.
    private func frequencies(_ p: SamplingParameters, _ z: [Float], n: Int = 40_000) -> [Int: Double] {
        var sampler = Sampler(p)
        var counts: [Int: Int] = [:]
        for _ in 0..<n { counts[sampler.sample(z, history: []), default: 0] += 1 }
        return counts.mapValues { Double($0) / Double(n) }
    }

    /// Every drawn id is expected, and each frequency is within 4.5 standard errors of its probability.
    private func assertMatches(_ freq: [Int: Double], _ expected: [Int: Double], n: Int = 40_000) {
        for id in freq.keys { XCTAssertNotNil(expected[id], "drew \(id), outside the candidates") }
        for (id, q) in expected {
            let sigma = (q * (1 - q) / Double(n)).squareRoot()
            XCTAssertEqual(freq[id] ?? 0, q, accuracy: 4.5 * sigma + 1e-9, "token \(id)")
        }
    }

    private let logits: [Float] = [1.0, 3.0, 2.5, -1.0, 0.5, 3.0, 2.0, -4.0, 1.5, 0.0]

    func testGreedyPicksTheLargestLogitAfterBias() {
        var p = SamplingParameters.greedy
        var sampler = Sampler(p)
        XCTAssertEqual(sampler.sample(logits, history: []), 1)  // ties: the lower id
        p.logitBias = [2: 1.0]
        sampler = Sampler(p)
        XCTAssertEqual(sampler.sample(logits, history: []), 2)
    }

    func testTemperatureDrawsFollowTheSoftmax() {
        var p = SamplingParameters()
        p.temperature = 0.7
        p.seed = 1
        assertMatches(frequencies(p, logits), probabilities(logits, temperature: 0.7, ids: Array(logits.indices)))
    }

    func testTopKKeepsTheKLargest() {
        var p = SamplingParameters()
        p.temperature = 1
        p.topK = 3
        p.seed = 2
        assertMatches(frequencies(p, logits), probabilities(logits, temperature: 1, ids: [1, 5, 2]))
    }

    func testTopPKeepsTheSmallestNucleus() {
        // Probabilities at T = 1 by id: 1 and 5 ≈ 0.30 each, 2 ≈ 0.18, 6 ≈ 0.11, ...
        var p = SamplingParameters()
        p.temperature = 1
        p.topP = 0.7
        p.seed = 3
        let all = probabilities(logits, temperature: 1, ids: Array(logits.indices))
        XCTAssertLessThan(all[1]! + all[5]!, 0.7)
        XCTAssertGreaterThanOrEqual(all[1]! + all[5]! + all[2]!, 0.7)
        assertMatches(frequencies(p, logits), probabilities(logits, temperature: 1, ids: [1, 5, 2]))
    }

    func testMinPDropsTokensBelowAFractionOfTheTop() {
        var p = SamplingParameters()
        p.temperature = 1
        p.minP = 0.3  // keeps exp(z - 3) >= 0.3: z >= 3 + ln 0.3 ≈ 1.80
        p.seed = 4
        assertMatches(frequencies(p, logits), probabilities(logits, temperature: 1, ids: [1, 2, 5, 6]))
    }

    func testFiltersCombine() {
        var p = SamplingParameters()
        p.temperature = 0.5
        p.topK = 4  // 1, 5, 2, 6
        p.topP = 0.9
        p.seed = 5
        let four = probabilities(logits, temperature: 0.5, ids: [1, 5, 2, 6])
        // At T = 0.5 ids 1 and 5 carry ≈ 0.41 each, 2 ≈ 0.15: three reach 0.9.
        XCTAssertLessThan(four[1]! + four[5]!, 0.9)
        XCTAssertGreaterThanOrEqual(four[1]! + four[5]! + four[2]!, 0.9)
        assertMatches(frequencies(p, logits), probabilities(logits, temperature: 0.5, ids: [1, 5, 2]))
    }

    func testRepetitionPenaltyLowersSeenTokens() {
        var p = SamplingParameters.greedy
        p.repetitionPenalty = 2  // 3.0 → 1.5 for ids 1 and 5
        var sampler = Sampler(p)
        XCTAssertEqual(sampler.sample(logits, history: [1, 5]), 2)
    }

    func testSelectionHelpersMatchSorting() {
        var g = SystemRandomNumberGenerator()
        for trial in 0..<50 {
            let n = Int.random(in: 1...300, using: &g)
            // Few distinct values, so ties are common.
            let z = (0..<n).map { _ in Float(Int.random(in: -20...20, using: &g)) / 4 }
            let sorted = z.indices.sorted { z[$0] > z[$1] || (z[$0] == z[$1] && $0 < $1) }
            let k = Int.random(in: 1...n, using: &g)
            XCTAssertEqual(Sampler.largest(k, of: z), Array(sorted.prefix(k)), "trial \(trial)")

            let w = z.map { exp(Double($0)) }
            let mass = Double.random(in: 0.05...1, using: &g)
            var expected: [Int] = [], cumulative = 0.0
            let goal = mass * w.reduce(0, +)
            for id in sorted {
                expected.append(id)
                cumulative += w[id]
                if cumulative >= goal { break }
            }
            XCTAssertEqual(Sampler.nucleus(w, mass: mass), expected, "trial \(trial)")
        }
    }

    /// The vectorized argmax (the batched engine's greedy path) against the
    /// definition, comparing each value in turn with the best so far: rows of
    /// every length around the 16-lane blocks, with ties, -infinity, +infinity
    /// and NaN anywhere (first included); and `picksLargest` exactly for the
    /// parameters under which `sample` is that argmax.
    func testArgmaxIsTheFirstLargestValue() {
        func reference(_ z: [Float]) -> Int {
            var best = 0
            for i in z.indices where z[i] > z[best] { best = i }
            return best
        }
        var g = SystemRandomNumberGenerator()
        for trial in 0..<600 {
            let n =
                trial < 200
                ? trial
                : trial % 50 == 0 ? Int.random(in: 49_000...70_000, using: &g) : Int.random(in: 1...3000, using: &g)
            let specials: [Float] = [.nan, -.infinity, .infinity, -.nan]
            var z = (0..<n).map { _ in Float(Int.random(in: -8...8, using: &g)) }  // ties are common
            for _ in 0..<Int.random(in: 0...4, using: &g) where n > 0 {
                z[Int.random(in: 0..<n, using: &g)] = specials.randomElement(using: &g)!
            }
            if trial % 7 == 0 { z = z.map { _ in -.infinity } + (n > 3 ? [] : [.nan]) }
            if trial % 11 == 0, n > 0 { z[0] = .nan }
            let got = z.withUnsafeBufferPointer { Sampler.argmax($0) }
            XCTAssertEqual(got, reference(z), "trial \(trial), n \(z.count)")
            var sampler = Sampler(.greedy)
            XCTAssertTrue(sampler.picksLargest)
            XCTAssertEqual(sampler.sample(z, history: [1, 2]), got, "trial \(trial)")
        }
        var p = SamplingParameters.greedy
        p.logitBias = [1: 0.5]
        XCTAssertFalse(Sampler(p).picksLargest)
        p = .greedy
        p.repetitionPenalty = 1.1
        XCTAssertFalse(Sampler(p).picksLargest)
        p = .greedy
        p.presencePenalty = 0.5
        XCTAssertFalse(Sampler(p).picksLargest)
        XCTAssertFalse(Sampler(SamplingParameters()).picksLargest)  // temperature 0.7
    }
}
