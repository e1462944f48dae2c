import XCTest

@testable import Tessera

/// padded, tiled, repeated, rolled, tril/triu, diagonal/diag and meshgrid
/// against numpy (Tests/Fixtures/layout.json, Tools/gen_ops_indexing_fixtures.py).
final class LayoutTests: XCTestCase {
    private func run(_ c: OpsFixture.Case) -> [Tensor] {
        let x = c.inputs[0], p = c.params
        switch c.op {
        case "pad":
            let widths = (p["widths"] as! [[Int]]).map { (before: $0[0], after: $0[1]) }
            if p["mode"] as! String == "edge" { return [x.padded(widths, mode: .edge)] }
            let value: any TensorOperand = x.dtype.isInexact ? (p["value"] as! Double) : (p["value"] as! Int)
            return [x.padded(widths, value: value)]
        case "tile": return [x.tiled(p["reps"] as! [Int])]
        case "repeat": return [x.repeated(p["count"] as! Int, axis: OpsFixture.int(p, "axis"))]
        case "roll":
            let shifts = p["shift"] as! [Int]
            if let axes = p["axis"] as? [Int] { return [x.rolled(shifts, axes: axes)] }
            return [x.rolled(shifts[0])]
        case "tril": return [x.tril(k: p["k"] as! Int)]
        case "triu": return [x.triu(k: p["k"] as! Int)]
        case "diagonal":
            return [x.diagonal(offset: p["offset"] as! Int, axis1: p["axis1"] as! Int, axis2: p["axis2"] as! Int)]
        case "diag": return [x.diag(k: p["k"] as! Int)]
        case "meshgrid":
            return meshgrid(c.inputs, indexing: p["indexing"] as! String == "xy" ? .xy : .ij, sparse: p["sparse"] as! Bool)
        default: fatalError("unknown op \(c.op)")
        }
    }

    func testLayoutOpsMatchNumpy() throws {
        let cases = try OpsFixture.load("layout.json")
        XCTAssertGreaterThan(cases.count, 150)
        for c in cases {
            let results = run(c)
            XCTAssertEqual(results.count, c.expected.count, c.name)
            for (r, e) in zip(results, c.expected) { OpsFixture.assertMatches(r, e, c.name) }
        }
    }
}
