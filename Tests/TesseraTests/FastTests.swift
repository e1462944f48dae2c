// The fast ops (softmax, norms, rope, attention) against references and unfused
// ops, on views and offsets, with grad and vmap.

import TesseraTestSupport
import XCTest

@testable import Tessera

/// The fused ops, kernel and fallback, against float64 references from numpy
/// (whose semantics the generator checks against MLX's `mx.fast`).
final class FastTests: XCTestCase {
    /// The op's result through the fused kernel, and through the fallback graph.
    private func run(_ c: FixtureCase) throws -> Tensor {
        let x = c.inputs[0]
        switch c.op {
        case "softmax": return softmax(x, axis: try c.params.int("axis"))
        case "logSoftmax": return logSoftmax(x, axis: try c.params.int("axis"))
        case "rmsNorm":
            return Fast.rmsNorm(
                x, weight: c.inputs.count > 1 ? c.inputs[1] : nil, eps: Float(try c.params.double("eps")))
        case "layerNorm":
            var next = 1
            let weight = try c.params.bool("weight") ? c.inputs[next] : nil
            if weight != nil { next += 1 }
            let bias = try c.params.bool("bias") ? c.inputs[next] : nil
            return Fast.layerNorm(x, weight: weight, bias: bias, eps: Float(try c.params.double("eps")))
        case "rope":
            let freqs = c.inputs.count > 1 ? c.inputs[1] : nil
            return Fast.rope(
                x, dimensions: try c.params.int("dimensions"), traditional: try c.params.bool("traditional"),
                base: try freqs == nil ? Float(c.params.double("base")) : nil,
                scale: Float(try c.params.double("scale")),
                offset: try c.params.int("offset"), freqs: freqs)
        case "sdpa":
            let mask: AttentionMask
            switch try c.params.optionalString("mask") {
            case "causal": mask = .causal
            case "none": mask = .none
            default: mask = .array(c.inputs[3])
            }
            return Fast.scaledDotProductAttention(
                queries: x, keys: c.inputs[1], values: c.inputs[2], scale: Float(try c.params.double("scale")),
                mask: mask)
        default:
            fatalError("unknown op \(c.op)")
        }
    }

    /// The same node evaluated through `fastFallback` (its inputs are the fused node's inputs).
    private func fallback(_ fused: Tensor) -> Tensor {
        guard let inputs = fused.node.pendingInputs,
            let out = fastFallback(fused.primitive, inputs: inputs.map(Tensor.init(node:)))
        else {
            // softmax/logSoftmax along another axis: the fused node sits under a transpose.
            let inner = fused.node.pendingInputs!.map(Tensor.init(node:))[0]
            let axes: [Int]
            if case .transpose(let a) = fused.primitive { axes = a } else { fatalError("unexpected graph") }
            return fallback(inner).transposed(axes: axes)
        }
        return out
    }

    func testAgainstReferences() throws {
        let cases = try loadFixtureCases("fast.json")
        var counts: [String: Int] = [:]
        for c in cases {
            let fused = try run(c)
            let viaFallback = fallback(fused)
            XCTAssertEqual(fused.dtype, c.inputs[0].dtype, c.name)
            assertMatches(fused, c.expected[0].asType(fused.dtype), "\(c.name) fused")
            assertMatches(viaFallback, c.expected[0].asType(fused.dtype), "\(c.name) fallback")
            counts[c.op, default: 0] += 1
        }
        XCTAssertEqual(counts.count, 6, "\(counts)")
        XCTAssertGreaterThanOrEqual(cases.count, 90)
    }

    func testSoftmaxOfStridedInputAndIntegers() {
        let x = Tensor((0..<12).map { Float($0) * 0.5 }, shape: [3, 4]).T  // strided view
        let expected = exp(x - x.max(axes: [-1], keepDims: true))
        assertMatches(softmax(x), expected / expected.sum(axes: [-1], keepDims: true), "strided")
        XCTAssertEqual(softmax(Tensor([1, 2, 3])).dtype, .float32)
    }

    func testAttentionMatchesUnfusedOpsWithBroadcastMask() {
        let q = Tensor((0..<48).map { Float(sin(Double($0))) }, shape: [1, 2, 3, 8])
        let k = Tensor((0..<40).map { Float(cos(Double($0))) }, shape: [1, 1, 5, 8])
        let mask = Tensor((0..<5).map { Float($0) * -0.25 }, shape: [5])
        let out = Fast.scaledDotProductAttention(queries: q, keys: k, values: k, scale: 0.3, mask: .array(mask))
        XCTAssertEqual(out.shape, [1, 2, 3, 8])
        let scores = matmul(q, k.swappedAxes(-1, -2)) * 0.3 + mask
        assertMatches(out, matmul(softmax(scores), k), "broadcast kv head and mask")
    }

    /// Row kernels read a row-contiguous view that starts inside its buffer
    /// from the right element (its offset counts elements, not bytes).
    func testRowKernelsOnViewsWithAnOffset() {
        let base = Tensor((0..<48).map { Float(sin(Double($0))) }, shape: [6, 8])
        let rows = base[2...]  // offset 16 elements, row-contiguous
        let w = Tensor((0..<8).map { Float($0) * 0.25 + 0.5 })
        let plain = rows.toArray(Float.self)
        let copy = Tensor(plain, shape: [4, 8])
        assertMatches(Fast.rmsNorm(rows, weight: w, eps: 1e-5), Fast.rmsNorm(copy, weight: w, eps: 1e-5), "rmsNorm")
        assertMatches(
            Fast.layerNorm(rows, weight: w, bias: w, eps: 1e-5), Fast.layerNorm(copy, weight: w, bias: w, eps: 1e-5),
            "layerNorm")
        assertMatches(softmax(rows), softmax(copy), "softmax")
    }

    /// The float32 attention kernel (CPUAttention.swift) on what a key/value
    /// cache hands it: keys and values a window of a larger buffer, grouped
    /// query heads, causal with fewer queries than keys, more query rows than
    /// one scores block and enough work to split over the pool; also a decode
    /// step (one query) and query heads that do not stack (a transposed view).
    func testAttentionKernelOnCacheWindowsAgainstUnfusedOps() {
        func values(_ shape: [Int], _ seed: Double) -> Tensor {
            Tensor((0..<shape.reduce(1, *)).map { Float(sin(Double($0) * 0.37 + seed)) }, shape: shape)
        }
        func unfused(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float, causal: Bool) -> Tensor {
            let groups = q.dim(1) / k.dim(1)
            let kk = k.repeated(groups, axis: 1), vv = v.repeated(groups, axis: 1)
            var scores = matmul(q, kk.swappedAxes(-1, -2)) * scale
            if causal {
                let (lq, lk) = (q.dim(2), k.dim(2))
                let keep = Tensor.ones([lq, lk], dtype: .bool).tril(k: lk - lq)
                scores = which(keep, scores, -Float.infinity)
            }
            return matmul(softmax(scores), vv)
        }
        // Both sides sum hundreds of products in float32, in different orders.
        let sums = FixtureComparison.within(Tolerance(rtol: 1e-5, atol: 1e-5))
        let buffer = values([1, 2, 400, 16], 1), valuesBuffer = values([1, 2, 400, 16], 2)
        for (lq, lk, causal) in [(300, 320, true), (1, 321, false), (5, 5, true)] {
            let q = values([1, 6, lq, 16], 3)
            let k = buffer[0..., 0..., ..<lk], v = valuesBuffer[0..., 0..., ..<lk]
            let out = Fast.scaledDotProductAttention(
                queries: q, keys: k, values: v, scale: 0.25, mask: causal ? .causal : .none)
            assertMatches(
                out, unfused(q, k, v, scale: 0.25, causal: causal), "lq \(lq) lk \(lk) causal \(causal)", sums)
        }
        // Query heads that are not evenly spaced rows: [1, L, H, D] seen as [1, H, L, D].
        let q = values([1, 7, 4, 16], 4).transposed(axes: [0, 2, 1, 3])
        let k = values([1, 2, 9, 16], 5), v = values([1, 2, 9, 16], 6)
        let out = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: 0.25, mask: .causal)
        assertMatches(out, unfused(q, k, v, scale: 0.25, causal: true), "strided query heads", sums)
    }

    /// Transforms go through the fallback graph: grad and vmap of fused ops
    /// equal those of the unfused composition.
    func testGradAndVmapThroughFusedOps() {
        let x = Tensor((0..<12).map { Float(sin(Double($0))) }, shape: [3, 4])
        let w = Tensor([0.5, 1, 1.5, 2] as [Float])
        let fused = grad { (x: Tensor) in (Fast.rmsNorm(x, weight: w, eps: 1e-5) * x).sum() }(x)
        let plain = grad { (x: Tensor) in (x * rsqrt(square(x).mean(axes: [-1], keepDims: true) + 1e-5) * w * x).sum()
        }(x)
        assertMatches(fused, plain, "grad rmsNorm")
        let sm = grad { (x: Tensor) in (softmax(x) * x).sum() }(x)
        let smPlain = grad { (x: Tensor) in
            let e = exp(x - x.max(axes: [-1], keepDims: true))
            return (e / e.sum(axes: [-1], keepDims: true) * x).sum()
        }(x)
        assertMatches(sm, smPlain, "grad softmax")
        let mapped = vmap({ (row: Tensor) in Fast.layerNorm(row, weight: w, bias: nil, eps: 1e-5) })(x)
        assertMatches(mapped, Fast.layerNorm(x, weight: w, bias: nil, eps: 1e-5), "vmap layerNorm")
    }
}
