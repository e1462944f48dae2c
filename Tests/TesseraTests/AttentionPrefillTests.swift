// Prefill attention (many query rows per key/value head): the flash-style
// kernel tk_attention_flash (kernels_flash.h) against the attention composed of
// matmul and softmax, and against the few-rows kernel tk_attention, on every
// instruction-set variant this CPU runs.

import CTesseraKernels
import TesseraTestSupport
import XCTest

@testable import Tessera

/// CPUAttention.swift hands more than `AttentionKernels.fewRows` query rows per
/// key/value head to the flash-style kernel (tiles of 64 keys, online
/// softmax). numpy's float64 fixtures (fast.json's sdpa cases, FastTests)
/// reach it too; here: long prompts, cache offsets, masks and tails.
final class AttentionPrefillTests: XCTestCase {
    private static func values(_ shape: [Int], _ seed: Double) -> Tensor {
        Tensor((0..<shape.reduce(1, *)).map { Float(sin(Double($0) * 0.37 + seed)) }, shape: shape)
    }

    /// Attention from matmul, `which` and softmax (kernels tested against their own references).
    private static func composed(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float, mask: AttentionMask) -> Tensor {
        let groups = q.dim(1) / k.dim(1)
        let kk = k.repeated(groups, axis: 1), vv = v.repeated(groups, axis: 1)
        var scores = matmul(q, kk.swappedAxes(-1, -2)) * scale
        switch mask {
        case .causal:
            let (lq, lk) = (q.dim(2), k.dim(2))
            scores = which(Tensor.ones([lq, lk], dtype: .bool).tril(k: lk - lq), scores, -Float.infinity)
        case .array(let m):
            scores = m.dtype == .bool ? which(m, scores, -Float.infinity) : scores + m
        default: break
        }
        return matmul(softmax(scores), vv)
    }

    /// Long prompts and chunks after a cache (lk > lq: causal rows aligned at
    /// the end), SmolLM2's shape (9 query heads on 3 key/value heads, head size
    /// 64) and head sizes off the vector width (d 40, dv 24: tails of the
    /// scores' and P V's register blocks), keys and values read as a window of
    /// a larger cache buffer, query counts that leave partial tiles and
    /// blocks (17, 130, 300), no mask. Both sides sum float32 products in
    /// different orders: rtol 1e-5, atol 1e-6.
    func testFlashAgainstComposedOps() {
        let tolerance = FixtureComparison.within(Tolerance(rtol: 1e-5, atol: 1e-6))
        let cases: [(hq: Int, hk: Int, lq: Int, lk: Int, d: Int, dv: Int, mask: String)] = [
            (9, 3, 300, 300, 64, 64, "causal"), (9, 3, 130, 400, 64, 64, "causal"), (4, 2, 17, 17, 40, 24, "causal"),
            (2, 1, 70, 150, 40, 24, "none"), (3, 3, 65, 65, 64, 48, "causal")
        ]
        forEachISA { isa in
            for c in cases {
                let q = Self.values([1, c.hq, c.lq, c.d], Double(c.lq))
                let keys = Self.values([1, c.hk, c.lk + 60, c.d], 1), vals = Self.values([1, c.hk, c.lk + 60, c.dv], 2)
                let k = keys[0..., 0..., 30..<(30 + c.lk)], v = vals[0..., 0..., 30..<(30 + c.lk)]
                let mask: AttentionMask = c.mask == "causal" ? .causal : .none
                let out = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: 0.125, mask: mask)
                assertMatches(
                    out, Self.composed(q, k, v, scale: 0.125, mask: mask), "\(c) (\(isa))", tolerance)
            }
        }
    }

    /// Bool and additive masks (broadcast over heads) over prompts of 100
    /// rows: some rows see no key (NaN, as the composed softmax of an all
    /// -inf row), some see only keys of a late tile (the running maximum
    /// starts at -inf and the earlier tiles' zero rows are rescaled away), and
    /// batches of 2.
    func testFlashWithMasksAndRowsThatSeeNoKey() {
        let (hq, hk, lq, lk, d) = (4, 2, 100, 200, 64)
        var keep = [Bool](repeating: true, count: lq * lk)
        for j in 0..<lk { keep[5 * lk + j] = false }  // row 5 sees nothing
        for j in 0..<150 { keep[7 * lk + j] = false }  // row 7 only the last tile's keys
        for i in 20..<lq where i % 3 == 0 { keep[i * lk + (i * 7) % lk] = false }
        let boolMask = Tensor(keep, shape: [1, 1, lq, lk])
        let addMask = Self.values([1, 1, lq, lk], 5) * Float(3)
        let tolerance = FixtureComparison.within(Tolerance(rtol: 1e-5, atol: 1e-6))
        forEachISA { isa in
            let q = Self.values([2, hq, lq, d], 3)
            let k = Self.values([2, hk, lk, d], 1), v = Self.values([2, hk, lk, d], 2)
            for (name, mask) in [("bool", AttentionMask.array(boolMask)), ("additive", .array(addMask))] {
                let out = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: 0.125, mask: mask)
                let want = Self.composed(q, k, v, scale: 0.125, mask: mask)
                let got = out.toArray(Float.self), expected = want.toArray(Float.self)
                XCTAssertEqual(got.count, expected.count)
                for e in 0..<Swift.min(got.count, expected.count) where expected[e].isNaN || got[e].isNaN {
                    XCTAssert(expected[e].isNaN && got[e].isNaN, "\(name) \(isa): element \(e) NaN on one side only")
                }
                let finite = { (t: [Float]) in Tensor(t.map { $0.isNaN ? 0 : $0 }, shape: [got.count]) }
                assertMatches(finite(got), finite(expected), "\(name) mask (\(isa))", tolerance)
            }
        }
    }

    /// The kernel on row ranges as the pool splits them (blocks that cross a
    /// head's end, a range of one row) against tk_attention over all rows at
    /// once (the few-rows kernel takes any row count), causal with a cache
    /// offset: rtol 1e-5, atol 1e-6.
    func testFlashRowRangesAgainstFewRowsKernel() {
        let (groups, lq, lk, d, dv) = (3, 90, 150, 64, 40)
        func values(_ n: Int, _ seed: Double) -> [Float] { (0..<n).map { Float(sin(Double($0) * 0.37 + seed)) } }
        let q = values(groups * lq * d, 1), k = values(lk * d, 2), v = values(lk * dv, 3)
        forEachISA { isa in
            q.withUnsafeBufferPointer { pq in
                k.withUnsafeBufferPointer { pk in
                    v.withUnsafeBufferPointer { pv in
                        var a = tk_attention_args()
                        a.q = pq.baseAddress
                        (a.q_head_stride, a.q_row_stride) = (lq * d, d)
                        (a.k, a.k_stride, a.v, a.v_stride) = (pk.baseAddress, d, pv.baseAddress, dv)
                        (a.heads, a.lq, a.lk, a.d, a.dv, a.scale, a.causal) = (groups, lq, lk, d, dv, 0.125, 1)
                        var whole = [Float](repeating: 0, count: groups * lq * dv)
                        whole.withUnsafeMutableBufferPointer {
                            a.out = $0.baseAddress; tk_attention(&a)
                        }
                        var kt = [Float](repeating: .nan, count: d * tk_attention_flash_keys_stride(lk))
                        tk_attention_flash_keys(&a, &kt)
                        var flash = [Float](repeating: .nan, count: groups * lq * dv)
                        flash.withUnsafeMutableBufferPointer { o in
                            a.out = o.baseAddress
                            for (r0, r1) in [(0, 1), (1, 80), (80, 200), (200, 270)] {
                                tk_attention_flash(&a, kt, r0, r1)
                            }
                        }
                        for e in 0..<whole.count {
                            XCTAssertLessThanOrEqual(
                                abs(whole[e] - flash[e]), 1e-6 + 1e-5 * abs(whole[e]), "\(isa) element \(e)")
                        }
                    }
                }
            }
        }
    }
}
