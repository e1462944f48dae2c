// The batched step's fused attention node (Serving/BatchedAttention.swift)
// against the per-sequence graph it replaces, bit for bit, on every
// instruction set the attention kernel dispatch can pick.

import CTesseraKernels
import Tessera
import XCTest

@testable import TesseraLM

final class BatchedAttentionTests: XCTestCase {
    override func tearDown() { _ = tk_set_isa(tk_isa_supported()) }

    /// Deterministic values in [-2, 2).
    private struct Values {
        var state: UInt64
        mutating func next(_ n: Int) -> [Float] {
            (0..<n).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(Int64(bitPattern: state >> 11) % 4096) / 1024 - 2
            }
        }
    }

    /// The bits of `t` widened to float32 (exact for a float16 cache's tensors).
    private func bits(_ t: Tensor) -> [UInt32] { t.asType(.float32).toArray(Float.self).map(\.bitPattern) }

    /// Two identical sets of caches, sequence s holding `lengths[s]` positions
    /// stored as `types[s]`.
    private func caches(_ lengths: [Int], types: [KVCacheType], kvHeads: Int, d: Int, _ values: inout Values) -> (
        [KVCache], [KVCache]
    ) {
        var a: [KVCache] = [], b: [KVCache] = []
        for (length, type) in zip(lengths, types) {
            let (x, y) = (KVCache(type: type), KVCache(type: type))
            if length > 0 {
                let keys = Tensor(values.next(kvHeads * length * d), shape: [1, kvHeads, length, d])
                let vals = Tensor(values.next(kvHeads * length * d), shape: [1, kvHeads, length, d])
                for cache in [x, y] { _ = cache.update(keys: keys, values: vals) }
                eval(x.state + y.state)
            }
            a.append(x)
            b.append(y)
        }
        return (a, b)
    }

    /// Steps of several sequences (decode rows and prompt chunks, caches from
    /// empty to past a key split and across a buffer's growth) through the
    /// fused node and through the per-sequence graph: the same output and
    /// the same cached keys and values, to the bit. Head layouts: SmolLM2's
    /// 9 query heads on 3 key/value heads (whose long rows split their keys
    /// over the pool), and the blocks a 2-rank tensor-parallel split gives
    /// each rank (6 on 2, 3 on 1), multi-head (4 on 4); rope on all or part
    /// of the head, halves or adjacent pairs, base or explicit frequencies;
    /// with and without a sliding window; float32 caches, float16 caches
    /// (the default), and both kinds in one step.
    func testFusedStepMatchesThePerSequenceGraphOnEveryISA() throws {
        struct Case {
            var heads: Int, kvHeads: Int, d: Int, rotated: Int, traditional: Bool, frequencies: Bool, window: Int?
        }
        let cases = [
            Case(heads: 9, kvHeads: 3, d: 64, rotated: 64, traditional: false, frequencies: false, window: nil),
            Case(heads: 6, kvHeads: 2, d: 64, rotated: 64, traditional: false, frequencies: false, window: nil),
            Case(heads: 3, kvHeads: 1, d: 64, rotated: 64, traditional: false, frequencies: true, window: nil),
            Case(heads: 4, kvHeads: 4, d: 32, rotated: 16, traditional: true, frequencies: false, window: 7),
            Case(heads: 9, kvHeads: 3, d: 64, rotated: 32, traditional: false, frequencies: false, window: 100)
        ]
        // Cached positions before the first step, and each step's rows per sequence.
        let lengths = [0, 5, 150, 254, 300]
        let steps = [[1, 3, 1, 1, 2], [1, 1, 1, 4, 1], [2, 1, 1, 1, 1]]
        let typeSets: [[KVCacheType]] = [
            Array(repeating: .f32, count: 5), Array(repeating: .f16, count: 5), [.f16, .f32, .f16, .f32, .f16]
        ]
        for isa in 0...Int(tk_isa_supported()) {
            _ = tk_set_isa(Int32(isa))
            for c in cases {
                for types in typeSets {
                    let name = "isa \(isa), \(c.heads)/\(c.kvHeads) heads, d \(c.d), \(types.map(\.rawValue))"
                    var values = Values(state: UInt64(isa * 31 + c.heads))
                    let rope = RopeParameters(
                        base: 10000, scale: 1,
                        frequencies: c.frequencies ? (0..<c.rotated / 2).map { 1.5 + Float($0) * 37 } : nil)
                    let (fused, reference) = caches(lengths, types: types, kvHeads: c.kvHeads, d: c.d, &values)
                    for counts in steps {
                        let rows = counts.reduce(0, +)
                        let q = Tensor(values.next(rows * c.heads * c.d), shape: [1, rows, c.heads, c.d])
                        let k = Tensor(values.next(rows * c.kvHeads * c.d), shape: [1, rows, c.kvHeads, c.d])
                        let v = Tensor(values.next(rows * c.kvHeads * c.d), shape: [1, rows, c.kvHeads, c.d])
                        let scale = 1 / Float(c.d).squareRoot()
                        let got = try XCTUnwrap(
                            batchedAttention(
                                q: q, k: k, v: v, caches: fused, counts: counts, rope: rope, rotated: c.rotated,
                                traditional: c.traditional, scale: scale, window: c.window), name)
                        let expected = perSequenceAttention(
                            q: q, k: k, v: v, caches: reference, counts: counts, rope: rope, rotated: c.rotated,
                            traditional: c.traditional, scale: scale, softcap: nil, window: c.window)
                        XCTAssertEqual(got.shape, [1, rows, c.heads * c.d], name)
                        XCTAssertEqual(bits(got), bits(expected), name)
                        for (x, y) in zip(fused, reference) {
                            XCTAssertEqual(x.offset, y.offset, name)
                            XCTAssertEqual(x.state[0].dtype, y.state[0].dtype, name)
                            XCTAssertEqual(bits(x.state[0]), bits(y.state[0]), "\(name): keys")
                            XCTAssertEqual(bits(x.state[1]), bits(y.state[1]), "\(name): values")
                        }
                        for (x, type) in zip(fused, types) { XCTAssertEqual(x.state[0].dtype, type.dtype, name) }
                    }
                }
            }
        }
    }

    /// Caches the fused node cannot write (quantized, rotating) and
    /// mismatched shapes: nil with no cache touched, so the caller builds the
    /// per-sequence graph.
    func testFallsBackWithoutTouchingTheCaches() throws {
        var values = Values(state: 7)
        let q = Tensor(values.next(2 * 9 * 64), shape: [1, 2, 9, 64])
        let k = Tensor(values.next(2 * 3 * 64), shape: [1, 2, 3, 64])
        let rope = RopeParameters(base: 10000)
        let quantized = KVCache(quantization: try KVQuantization(bits: 8))
        let rotating = KVCache(maxSize: 16)
        for other in [quantized, rotating] {
            let plain = KVCache()
            XCTAssertNil(
                batchedAttention(
                    q: q, k: k, v: k, caches: [plain, other], counts: [1, 1], rope: rope, rotated: 64,
                    traditional: false, scale: 0.125, window: nil))
            XCTAssertEqual(plain.offset, 0)
            XCTAssertEqual(other.offset, 0)
        }
        // Rows that do not add up to the step's, and 17 query heads per key/value head.
        XCTAssertNil(
            batchedAttention(
                q: q, k: k, v: k, caches: [KVCache()], counts: [1], rope: rope, rotated: 64, traditional: false,
                scale: 0.125, window: nil))
        let wide = Tensor(values.next(17 * 64), shape: [1, 1, 17, 64])
        let one = Tensor(values.next(64), shape: [1, 1, 1, 64])
        XCTAssertNil(
            batchedAttention(
                q: wide, k: one, v: one, caches: [KVCache()], counts: [1], rope: rope, rotated: 64,
                traditional: false, scale: 0.125, window: nil))
    }
}
