// einsum against numpy; batched matmul computes every batch.

import TesseraTestSupport
import XCTest

@testable import Tessera

/// einsum (matmul-like, batched, traces, outer products, ellipsis, implicit
/// output, three operands) against numpy (Tests/Fixtures/einsum.json).
final class EinsumTests: XCTestCase {
    func testEinsumMatchesNumpy() throws {
        let cases = try loadFixtureCases("einsum.json")
        XCTAssertGreaterThan(cases.count, 30)
        for c in cases {
            let subscripts = try c.params.string("subscripts")
            let result: Tensor
            switch c.inputs.count {
            case 1: result = einsum(subscripts, c.inputs[0])
            case 2: result = einsum(subscripts, c.inputs[0], c.inputs[1])
            default: result = einsum(subscripts, c.inputs[0], c.inputs[1], c.inputs[2])
            }
            assertMatches(result, c.expected[0], "\(c.name) \(subscripts)")
        }
    }

    /// einsum contracts through batched matmul; every batch must be computed,
    /// also when the batch axes collapse into one strided row.
    func testBatchedMatmulComputesEveryBatch() {
        let a = Tensor.arange(0, 12, dtype: .float32).reshaped(3, 2, 2)
        let eye = Tensor.eye(2).broadcast(to: [3, 2, 2])
        XCTAssertEqual(matmul(a, eye).toArray(Float.self), a.toArray(Float.self))
    }
}
