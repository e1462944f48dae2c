// Tensor basics: creation, constructors, item and views, zero-size arrays, split and stack.

import Foundation
import XCTest

@testable import Tessera

/// Creation, reading back, properties, and views.
final class TensorTests: XCTestCase {
    func testCreationAndProperties() {
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.ndim, 2)
        XCTAssertEqual(a.size, 6)
        XCTAssertEqual(a.dtype, .float32)
        XCTAssertEqual(a.nbytes, 24)
        XCTAssertEqual(Tensor([1, 2, 3]).dtype, .int32, "Swift Int is stored as int32, as in MLX")
        XCTAssertEqual(Tensor(3.5).dtype, .float64)
        XCTAssertEqual(Tensor(Float16(1.5)).item(Float.self), 1.5)
        XCTAssertEqual(Tensor(0..<5).toArray(Int.self), [0, 1, 2, 3, 4])
        XCTAssertEqual(Tensor([true, false]).toArray(Bool.self), [true, false])
        XCTAssertEqual(Tensor([Complex64(1, 2)]).toArray(Complex64.self), [Complex64(1, 2)])
        XCTAssertEqual(Tensor([BFloat16(2.5)]).item(Float.self), 2.5)
    }

    func testFilledAndPatternedConstructors() {
        XCTAssertEqual(Tensor.zeros([2, 2]).toArray(Float.self), [0, 0, 0, 0])
        XCTAssertEqual(Tensor.ones([3], dtype: .int8).toArray(Int.self), [1, 1, 1])
        XCTAssertEqual(Tensor.full([2], value: 7.5, dtype: .float16).toArray(Float.self), [7.5, 7.5])
        XCTAssertEqual(Tensor.full([2], value: 3).dtype, .int32)
        XCTAssertEqual(Tensor.arange(2, 11, step: 3).toArray(Int.self), [2, 5, 8])
        XCTAssertEqual(Tensor.arange(5, 0, step: -2).toArray(Int.self), [5, 3, 1])
        XCTAssertEqual(Tensor.arange(0.0, 1.0, step: 0.25).toArray(Float.self), [0, 0.25, 0.5, 0.75])
        XCTAssertEqual(Tensor.linspace(0, 1, count: 5).toArray(Float.self), [0, 0.25, 0.5, 0.75, 1])
        XCTAssertEqual(Tensor.eye(2, 3, k: 1).toArray(Float.self), [0, 1, 0, 0, 0, 1])
        XCTAssertEqual(Tensor.identity(2, dtype: .int32).toArray(Int.self), [1, 0, 0, 1])
        let like = Tensor.onesLike(Tensor.zeros([2, 1], dtype: .bfloat16))
        XCTAssertEqual(like.shape, [2, 1])
        XCTAssertEqual(like.dtype, .bfloat16)
        XCTAssertEqual(Tensor.zerosLike(like).toArray(Float.self), [0, 0])
    }

    func testItemConvertsAndReadsViews() {
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        XCTAssertEqual(a[1, 2].item(Float.self), 6)
        XCTAssertEqual(a[1, 2].item(Int.self), 6)
        XCTAssertEqual(a.T.toArray(Float.self), [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(a[0..., .stride(by: -1)].toArray(Float.self), [3, 2, 1, 6, 5, 4])
        XCTAssertEqual(a[.ellipsis, 1].toArray(Float.self), [2, 5])
        XCTAssertEqual(a[.newAxis, 0].shape, [1, 3])
        XCTAssertEqual(a[-1].toArray(Float.self), [4, 5, 6])
        XCTAssertEqual(a[0..., 1..<3].shape, [2, 2])
    }

    func testViewsShareTheBuffer() {
        let a = Tensor.arange(0, 12, dtype: .float32).reshaped([3, 4])
        eval(a)
        let views = [a.T, a[1..., .stride(by: 2)], a.reshaped([2, 6]), a.broadcast(to: [2, 3, 4]), a[.newAxis]]
        for v in views {
            eval(v)
            XCTAssertTrue(v.node.data!.buffer === a.node.data!.buffer, "\(v.primitive.name) copied")
        }
        // A reshape that strides cannot express copies, and is still right.
        let r = a.T.reshaped([12])
        XCTAssertEqual(r.toArray(Int.self), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
    }

    func testZeroSizeArrays() {
        let e = Tensor.zeros([0, 3])
        XCTAssertEqual(e.size, 0)
        XCTAssertEqual((e + 1).shape, [0, 3])
        XCTAssertEqual(e.sum(axes: [0]).toArray(Float.self), [0, 0, 0])
        XCTAssertEqual(e.sum(axes: [1]).shape, [0])
        XCTAssertEqual(matmul(e, Tensor.ones([3, 2])).shape, [0, 2])
        XCTAssertEqual(matmul(Tensor.ones([2, 0]), Tensor.ones([0, 2])).toArray(Float.self), [0, 0, 0, 0])
        XCTAssertEqual(concatenated([e, Tensor.ones([1, 3])]).shape, [1, 3])
        XCTAssertEqual(e.description, "array([], dtype=float32)")
    }

    func testSplitAndStack() {
        let a = Tensor.arange(0, 6, dtype: .float32)
        let parts = a.split(parts: 3)
        XCTAssertEqual(parts.map { $0.toArray(Float.self) }, [[0, 1], [2, 3], [4, 5]])
        XCTAssertEqual(stacked(parts, axis: 1).shape, [2, 3])
        XCTAssertEqual(a.split(indices: [1, 4]).map(\.size), [1, 3, 2])
    }

    /// Identity is the node, not the value: copies of a handle are identical, equal values are not.
    func testIdentityIsTheNode() {
        let a = Tensor([1, 2] as [Float])
        let copy = a
        XCTAssertTrue(copy.isIdentical(to: a))
        XCTAssertFalse(Tensor([1, 2] as [Float]).isIdentical(to: a))
        XCTAssertFalse((a + 0).isIdentical(to: a))
    }
}
