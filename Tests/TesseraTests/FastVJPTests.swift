// The written-out vjp rules of the fused ops (FastVJPRules.swift) against the
// gradients of their fallback graphs (the composed reference path, which the
// generic rule differentiates): in float64 to 1e-10 of the largest value,
// and the float32 rules against the float64 fallback to 1e-4; odd sizes,
// grouped-query attention with another query and key length, rope over part
// of the features with an offset, both rope layouts.

import Foundation
import XCTest

@testable import Tessera

final class FastVJPTests: XCTestCase {
    /// Values in (-1.5, 1.5) that differ from element to element.
    private func values(_ shape: [Int], seed: Double, dtype: DType = .float64) -> Tensor {
        let n = shape.reduce(1, *)
        let v: [Double] = (0..<n).map { (i: Int) -> Double in
            let angle: Double = Double(i) * 0.7311 + seed * 1.913 + Double(i % 7) * 0.37
            return 1.5 * Foundation.sin(angle)
        }
        return Tensor(v, shape: shape).asType(dtype)
    }

    /// The largest |a - b| over the largest |b| (b's largest is at least 1e-30).
    private func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        XCTAssertEqual(a.shape, b.shape)
        let x = a.asType(.float64).toArray(Double.self), y = b.asType(.float64).toArray(Double.self)
        let scale = max(y.map(abs).max() ?? 0, 1e-30)
        return zip(x, y).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
    }

    /// The gradients of `fused` (the written-out rule) against those of the fallback graph of
    /// the same primitive, in float64 and (rule only) in float32.
    private func check(
        _ name: String, _ primals: [Tensor], _ fused: @escaping ([Tensor]) -> Tensor, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let probe = fused(primals)
        let primitive = probe.primitive
        guard fastFallback(primitive, inputs: primals) != nil else {
            return XCTFail("\(name): not a fused primitive", file: file, line: line)
        }
        let g = values(probe.shape, seed: 11)
        let ours = vjp({ [fused($0)] }, primals: primals, cotangents: [g]).vjps
        let reference = vjp({ xs in [fastFallback(primitive, inputs: xs)!] }, primals: primals, cotangents: [g]).vjps
        let ours32 = vjp(
            { [fused($0)] }, primals: primals.map { $0.asType(.float32) }, cotangents: [g.asType(.float32)]
        ).vjps
        for i in primals.indices {
            let e64 = relativeError(ours[i], reference[i])
            XCTAssertLessThan(e64, 1e-10, "\(name) input \(i), float64", file: file, line: line)
            XCTAssertEqual(ours32[i].dtype, .float32, "\(name) input \(i)", file: file, line: line)
            let e32 = relativeError(ours32[i], reference[i])
            XCTAssertLessThan(e32, 1e-4, "\(name) input \(i), float32 rule vs float64 fallback", file: file, line: line)
        }
    }

    func testSoftmaxAndLogSoftmax() {
        check("softmax", [values([3, 5, 37], seed: 1)]) { softmax($0[0], axis: -1) }
        check("logSoftmax", [values([2, 33], seed: 3)]) { logSoftmax($0[0], axis: -1) }
    }

    func testRMSNorm() {
        check("rmsNorm with weight", [values([2, 3, 19], seed: 4), values([19], seed: 5)]) {
            Fast.rmsNorm($0[0], weight: $0[1], eps: 1e-5)
        }
        check("rmsNorm without weight", [values([5, 7], seed: 6)]) { Fast.rmsNorm($0[0], weight: nil, eps: 1e-3) }
    }

    func testRope() {
        for traditional in [false, true] {
            check("rope traditional \(traditional)", [values([2, 3, 7, 10], seed: 7)]) {
                Fast.rope($0[0], dimensions: 10, traditional: traditional, base: 10000, scale: 1, offset: 0)
            }
            check("rope over 6 of 14 features, offset 5, scale 0.5", [values([3, 11, 14], seed: 8)]) {
                Fast.rope($0[0], dimensions: 6, traditional: traditional, base: 500, scale: 0.5, offset: 5)
            }
        }
    }

    func testAttention() {
        // [B, H, L, D]: 6 query heads over 2 kv heads, values of another width.
        let q = values([2, 6, 5, 3], seed: 9), k = values([2, 2, 7, 3], seed: 10), v = values([2, 2, 7, 4], seed: 12)
        for causal in [false, true] {
            check("attention, 5 queries over 7 keys, causal \(causal)", [q, k, v]) {
                Fast.scaledDotProductAttention(
                    queries: $0[0], keys: $0[1], values: $0[2], scale: 0.577, mask: causal ? .causal : .none)
            }
        }
        let square = [values([1, 3, 9, 5], seed: 13), values([1, 3, 9, 5], seed: 14), values([1, 3, 9, 5], seed: 15)]
        check("attention, 9 × 9 causal, one head per kv head", square) {
            Fast.scaledDotProductAttention(queries: $0[0], keys: $0[1], values: $0[2], scale: 0.4, mask: .causal)
        }
    }
}
