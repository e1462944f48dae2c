// Tensor.withHostFloats (the batched engine reads each step's logits with it):
// the same values as toArray for contiguous, strided and half-precision tensors.

import XCTest

@testable import Tessera

final class HostFloatsTests: XCTestCase {
    func testHostFloatsAreTheElementsInRowMajorOrder() throws {
        let values = (0..<24).map { Float($0) * 0.5 - 3 }
        let a = Tensor(values, shape: [2, 3, 4])
        let cases: [(String, Tensor)] = [
            ("contiguous", a),
            ("transposed", a.transposed(axes: [2, 0, 1])),
            ("sliced", a[0..., 1..<3]),
            ("float16", a.asType(.float16)),
            ("bfloat16 transposed", a.asType(.bfloat16).transposed(axes: [1, 0, 2]))
        ]
        for (name, t) in cases {
            let read = try t.withHostFloats { Array($0) }
            XCTAssertEqual(read, t.toArray(Float.self), name)
            XCTAssertEqual(read.count, t.size, name)
        }
        // A contiguous float32 array is read where it lies.
        eval(a)
        let first = try a.withHostFloats { $0.baseAddress }
        let again = try a.withHostFloats { $0.baseAddress }
        XCTAssertEqual(first, again)
    }
}
