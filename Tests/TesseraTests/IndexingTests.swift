// Indexing and subscript assignment against numpy; .at accumulation; clamping; gather/scatter primitives.

import TesseraTestSupport
import XCTest

@testable import Tessera

/// Integer-tensor indexing, subscript assignment, `at` scatters, take,
/// takeAlongAxis, putAlongAxis and dynamic slices against numpy
/// (Tests/Fixtures/gather_scatter.json, Tools/gen_ops_indexing_fixtures.py).
final class IndexingTests: XCTestCase {
    private func run(_ c: FixtureCase) throws -> Tensor {
        let x = c.inputs[0], p = c.params
        switch c.op {
        case "index":
            return x[try p.indices("indices", tensors: c.inputs)]
        case "index_set":
            var y = x
            y[try p.indices("indices", tensors: c.inputs)] = c.inputs.last!
            return y
        case let op where op.hasPrefix("at_"):
            let entries = try p.indices("indices", tensors: c.inputs)
            let target = TensorAtIndices(base: x, indices: entries)
            let v = c.inputs.last!
            switch op {
            case "at_add": return target.add(v)
            case "at_subtract": return target.subtract(v)
            case "at_multiply": return target.multiply(v)
            case "at_maximum": return target.maximum(v)
            case "at_minimum": return target.minimum(v)
            default: fatalError("unknown op \(op)")
            }
        case "take":
            return x.take(c.inputs[1], axis: try p.optionalInt("axis"))
        case "take_along_axis":
            return x.takeAlongAxis(c.inputs[1], axis: try p.int("axis"))
        case "put_along_axis":
            return x.putAlongAxis(c.inputs[1], values: c.inputs[2], axis: try p.int("axis"))
        case "dynamic_slice":
            return dynamicSlice(x, start: c.inputs[1], axes: try p.ints("axes"), sizes: try p.ints("sizes"))
        case "dynamic_slice_update":
            return dynamicSliceUpdate(x, c.inputs[1], start: c.inputs[2], axes: try p.ints("axes"))
        default:
            fatalError("unknown op \(c.op)")
        }
    }

    func testIndexingMatchesNumpy() throws {
        let cases = try loadFixtureCases("gather_scatter.json")
        XCTAssertGreaterThan(cases.count, 150)
        for c in cases {
            assertMatches(try run(c), c.expected[0], c.name)
        }
    }

    func testSubscriptAssignmentHasValueSemantics() {
        let x = Tensor(0..<6).reshaped(2, 3)
        var y = x
        y[0..., 1] = Tensor(Int32(9))
        XCTAssertEqual(x.toArray(Int32.self), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(y.toArray(Int32.self), [0, 9, 2, 3, 9, 5])
        y[Tensor([1])] = Tensor([7, 7, 7])
        XCTAssertEqual(y.toArray(Int32.self), [0, 9, 2, 7, 7, 7])
    }

    func testAtAccumulatesRepeatedIndices() {
        let counts = Tensor.zeros([5]).at[Tensor([1, 1, 3, 1])].add(1)
        XCTAssertEqual(counts.toArray(Float.self), [0, 3, 0, 1, 0])
    }

    func testOutOfRangeTensorIndicesClamp() {
        // Run-time indices never trap: negatives count from the end once, the rest clamp.
        let x = Tensor([10, 11, 12, 13] as [Float])
        XCTAssertEqual(x[Tensor([-1, 7, -9])].toArray(Float.self), [13, 13, 10])
        let s = dynamicSlice(x, start: Tensor([3]), axes: [0], sizes: [2])
        XCTAssertEqual(s.toArray(Float.self), [12, 13])
    }

    func testIndexPrimitivesAreGatherAndScatter() {
        let x = Tensor.zeros([4, 3])
        // x[idx] is a gather of [2, 1, 3] reshaped to [2, 3].
        let read = x[Tensor([0, 2])]
        guard case .gather = read.node.pendingInputs?.first?.primitive else { return XCTFail("expected a gather") }
        var y = x
        y[1] = Tensor.ones([3])
        guard case .sliceUpdate = y.primitive else { return XCTFail("expected a slice update") }
        guard case .scatter(.add, _) = x.at[Tensor([1])].add(1).primitive else {
            return XCTFail("expected scatter_add")
        }
    }
}
