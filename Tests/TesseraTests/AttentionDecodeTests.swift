// Decode attention (one query row over long caches) against numpy references and
// composed ops; key ranges merge to the whole attention.

import CTesseraKernels
import TesseraTestSupport
import XCTest

@testable import Tessera

/// Float32 attention with few query rows per key/value head (decode steps and
/// short chunks), which CPUAttention.swift hands to the C kernel
/// `tk_attention` (kernels_attention.h) instead of GEMM, on every
/// instruction-set variant this CPU runs.
final class AttentionDecodeTests: XCTestCase {
    private static func mask(_ c: FixtureCase) throws -> AttentionMask {
        switch try c.params.optionalString("mask") {
        case "causal": return .causal
        case "none": return .none
        default: return .array(c.inputs[3])
        }
    }

    /// Against numpy's float64 results (Tools/gen_attention_fixtures.py): decode
    /// steps of SmolLM2's shape (9 query heads on 3 key/value heads, head
    /// size 64), a 4-query chunk, 16 rows per head, batches, bool and additive
    /// masks (broadcast, with hidden keys), keys/values read in place as a
    /// window of a larger cache buffer, queries seen through a transpose, head
    /// sizes off the vector width, and rows that see no key (NaN).
    func testAgainstReferences() throws {
        let cases = try loadFixtureCases("attention_decode.json")
        XCTAssertEqual(cases.count, 12)
        try forEachISA { isa in
            for c in cases {
                let out = Fast.scaledDotProductAttention(
                    queries: c.inputs[0], keys: c.inputs[1], values: c.inputs[2],
                    scale: Float(try c.params.double("scale")), mask: try Self.mask(c))
                assertMatches(out, c.expected[0], "\(c.name) (\(isa))")
            }
        }
    }

    /// A head's keys split into ranges (tk_attention with key_begin/key_end and
    /// stats, as CPUAttention does when heads do not share the pool's threads
    /// evenly) and merged by tk_attention_merge: the same rows as one call over
    /// all keys, with causal limits, a bool mask that hides all of one range
    /// from some rows, an additive mask, and a row that sees no key (NaN in
    /// both). Both sides sum the same float32 terms in different orders:
    /// rtol 1e-5, atol 1e-6.
    func testKeyRangesMergeToTheWholeAttention() {
        let (groups, lq, lk, d, dv) = (3, 2, 300, 64, 48)
        let rows = groups * lq
        func values(_ n: Int, _ seed: Double) -> [Float] { (0..<n).map { Float(sin(Double($0) * 0.37 + seed)) } }
        // keys growing along the cache, so that the ranges' largest scores differ widely
        let q = values(rows * d, 1), v = values(lk * dv, 3)
        let k = values(lk * d, 2).enumerated().map { $1 * (1 + Float($0 / d) / 40) }
        // bool mask [groups, lq, lk]: row (0, 0) sees only keys 200..., row (1, 1) sees none
        var keep = [UInt8](repeating: 1, count: rows * lk)
        for j in 0..<200 { keep[j] = 0 }
        for j in 0..<lk { keep[(1 * lq + 1) * lk + j] = 0 }
        let add = values(rows * lk, 4).map { $0 * 2 }
        forEachISA { isa in
            for variant in ["causal", "bool", "additive"] {
                q.withUnsafeBufferPointer { pq in
                    k.withUnsafeBufferPointer { pk in
                        v.withUnsafeBufferPointer { pv in
                            keep.withUnsafeBufferPointer { pm in
                                add.withUnsafeBufferPointer { pa in
                                    var a = tk_attention_args()
                                    a.q = pq.baseAddress
                                    (a.q_head_stride, a.q_row_stride) = (lq * d, d)
                                    (a.k, a.k_stride, a.v, a.v_stride) = (pk.baseAddress, d, pv.baseAddress, dv)
                                    (a.heads, a.lq, a.lk, a.d, a.dv, a.scale) = (groups, lq, lk, d, dv, 0.125)
                                    a.causal = variant == "causal" ? 1 : 0
                                    (a.mask_head_stride, a.mask_row_stride, a.mask_col_stride) = (lq * lk, lk, 1)
                                    if variant == "bool" { a.bool_mask = pm.baseAddress }
                                    if variant == "additive" { a.add_mask = pa.baseAddress }
                                    var whole = [Float](repeating: 0, count: rows * dv)
                                    whole.withUnsafeMutableBufferPointer {
                                        a.out = $0.baseAddress; tk_attention(&a)
                                    }
                                    for bounds in [[0, 150, 300], [0, 100, 200, 300], [0, 0, 299, 300]] {
                                        let parts = bounds.count - 1
                                        var outs = [Float](repeating: 0, count: parts * rows * dv)
                                        var stats = [Float](repeating: 0, count: parts * rows * 2)
                                        for p in 0..<parts {
                                            var b = a
                                            (b.key_begin, b.key_end) = (bounds[p], bounds[p + 1])
                                            outs.withUnsafeMutableBufferPointer { o in
                                                stats.withUnsafeMutableBufferPointer { s in
                                                    b.out = o.baseAddress! + p * rows * dv
                                                    b.stats = s.baseAddress! + p * rows * 2
                                                    tk_attention(&b)
                                                }
                                            }
                                        }
                                        var merged = [Float](repeating: 0, count: rows * dv)
                                        tk_attention_merge(rows, dv, parts, outs, stats, &merged)
                                        for e in 0..<(rows * dv) {
                                            let (w, m) = (whole[e], merged[e])
                                            if variant == "bool" && e / dv == 1 * lq + 1 {
                                                XCTAssert(
                                                    w.isNaN && m.isNaN,
                                                    "\(isa) \(variant) \(bounds): a row without keys is NaN")
                                                continue
                                            }
                                            XCTAssertLessThanOrEqual(
                                                abs(w - m), 1e-6 + 1e-5 * abs(w),
                                                "\(isa) \(variant) \(bounds) element \(e)")
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Long caches (up to 3,000 keys) and every row count from 1 to 16 per
    /// head, against the same attention composed of matmul, softmax and
    /// `which` (the GEMM and softmax kernels, tested against their own
    /// references). Both sides sum thousands of float32 products in different
    /// orders: rtol 1e-5, atol 1e-6 on outputs of magnitude ~0.05-1.
    func testLongCachesAgainstComposedOps() {
        func values(_ shape: [Int], _ seed: Double) -> Tensor {
            Tensor((0..<shape.reduce(1, *)).map { Float(sin(Double($0) * 0.37 + seed)) }, shape: shape)
        }
        func composed(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float, causal: Bool) -> Tensor {
            let groups = q.dim(1) / k.dim(1)
            let kk = k.repeated(groups, axis: 1), vv = v.repeated(groups, axis: 1)
            var scores = matmul(q, kk.swappedAxes(-1, -2)) * scale
            if causal {
                let (lq, lk) = (q.dim(2), k.dim(2))
                scores = which(Tensor.ones([lq, lk], dtype: .bool).tril(k: lk - lq), scores, -Float.infinity)
            }
            return matmul(softmax(scores), vv)
        }
        let tolerance = FixtureComparison.within(Tolerance(rtol: 1e-5, atol: 1e-6))
        let keys = values([1, 3, 3100, 64], 1), vals = values([1, 3, 3100, 64], 2)
        forEachISA { isa in
            for (lq, lk) in [(1, 3000), (1, 1024), (2, 2049), (5, 700)] {
                let q = values([1, 9, lq, 64], Double(lq))
                let k = keys[0..., 0..., 50..<(50 + lk)], v = vals[0..., 0..., 50..<(50 + lk)]
                let out = Fast.scaledDotProductAttention(
                    queries: q, keys: k, values: v, scale: 0.125, mask: lq > 1 ? .causal : .none)
                assertMatches(
                    out, composed(q, k, v, scale: 0.125, causal: lq > 1), "lq \(lq) lk \(lk) (\(isa))", tolerance)
            }
            for lq in 1...16 {
                let q = values([1, 2, lq, 64], Double(lq) + 0.5)
                let k = keys[0..., ..<2, ..<(lq + 40)], v = vals[0..., ..<2, ..<(lq + 40)]
                let out = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: 0.125, mask: .causal)
                assertMatches(out, composed(q, k, v, scale: 0.125, causal: true), "lq \(lq) causal (\(isa))", tolerance)
            }
        }
    }
}
