// sort/argsort/partition against numpy fixtures.

import TesseraTestSupport
import XCTest

@testable import Tessera

/// sorted, argSort, partitioned, argPartition and topK against numpy
/// (Tests/Fixtures/sort.json, Tools/gen_ops_indexing_fixtures.py).
final class SortTests: XCTestCase {
    /// Checks the partition contract: a permutation of the row whose `kth` entry
    /// is the sorted one, nothing larger before it and nothing smaller after it.
    private func assertPartition(_ result: Tensor, sorted expected: Tensor, kth: Int, axis: Int, _ name: String) {
        assertMatches(result.sorted(axis: axis), expected, "\(name) (as a permutation)")
        let n = result.dim(axis), k = kth < 0 ? kth + n : kth
        func along(_ range: Range<Int>, _ t: Tensor) -> Tensor {
            var entries = [TensorIndex](repeating: .slice(), count: axis)
            entries.append(.slice(start: range.lowerBound, end: range.upperBound))
            return t[entries]
        }
        let pivot = along(k..<(k + 1), expected)
        assertMatches(along(k..<(k + 1), result), pivot, "\(name) (kth)")
        XCTAssertTrue((along(0..<k, result) .<= pivot).all().item(Bool.self), "\(name): larger value before kth")
        XCTAssertTrue((along((k + 1)..<n, result) .>= pivot).all().item(Bool.self), "\(name): smaller value after kth")
    }

    func testSortsMatchNumpy() throws {
        let cases = try loadFixtureCases("sort.json")
        XCTAssertGreaterThan(cases.count, 150)
        for c in cases {
            let x = c.inputs[0], p = c.params
            switch c.op {
            case "sort":
                assertMatches(x.sorted(axis: try p.optionalInt("axis")), c.expected[0], c.name)
            case "argsort":
                assertMatches(x.argSort(axis: try p.optionalInt("axis")), c.expected[0], c.name)
            case "partition":
                let axis = try p.int("axis"), kth = try p.int("kth")
                assertPartition(
                    x.partitioned(kth: kth, axis: axis), sorted: c.expected[0], kth: kth, axis: axis, c.name)
            case "argpartition":
                let axis = try p.int("axis"), kth = try p.int("kth")
                let i = x.argPartition(kth: kth, axis: axis)
                XCTAssertEqual(i.dtype, .uint32, c.name)
                assertPartition(x.takeAlongAxis(i, axis: axis), sorted: c.expected[0], kth: kth, axis: axis, c.name)
            case "topk":
                let (values, indices) = x.topK(try p.int("k"), axis: try p.int("axis"))
                assertMatches(values, c.expected[0], "\(c.name) values")
                assertMatches(indices, c.expected[1], "\(c.name) indices")
            default:
                XCTFail("unknown op \(c.op)")
            }
        }
    }
}
