// Layout ops (reshape, transpose, pad, tile, ...) against numpy fixtures.

import TesseraTestSupport
import XCTest

@testable import Tessera

/// padded, tiled, repeated, rolled, tril/triu, diagonal/diag and meshgrid
/// against numpy (Tests/Fixtures/layout.json, Tools/gen_ops_indexing_fixtures.py).
final class LayoutTests: XCTestCase {
    private func run(_ c: FixtureCase) throws -> [Tensor] {
        let x = c.inputs[0], p = c.params
        switch c.op {
        case "pad":
            let widths = try p.intLists("widths").map { (before: $0[0], after: $0[1]) }
            if try p.string("mode") == "edge" { return [x.padded(widths, mode: .edge)] }
            let value: any TensorOperand = x.dtype.isInexact ? try p.double("value") : try p.int("value")
            return [x.padded(widths, value: value)]
        case "tile": return [x.tiled(try p.ints("reps"))]
        case "repeat": return [x.repeated(try p.int("count"), axis: try p.optionalInt("axis"))]
        case "roll":
            let shifts = try p.ints("shift")
            if let axes = try p.optionalInts("axis") { return [x.rolled(shifts, axes: axes)] }
            return [x.rolled(shifts[0])]
        case "tril": return [x.tril(k: try p.int("k"))]
        case "triu": return [x.triu(k: try p.int("k"))]
        case "diagonal":
            return [x.diagonal(offset: try p.int("offset"), axis1: try p.int("axis1"), axis2: try p.int("axis2"))]
        case "diag": return [x.diag(k: try p.int("k"))]
        case "meshgrid":
            return meshgrid(
                c.inputs, indexing: try p.string("indexing") == "xy" ? .xy : .ij, sparse: try p.bool("sparse"))
        default: fatalError("unknown op \(c.op)")
        }
    }

    func testLayoutOpsMatchNumpy() throws {
        let cases = try loadFixtureCases("layout.json")
        XCTAssertGreaterThan(cases.count, 150)
        for c in cases {
            let results = try run(c)
            XCTAssertEqual(results.count, c.expected.count, c.name)
            for (r, e) in zip(results, c.expected) { assertMatches(r, e, c.name) }
        }
    }
}
