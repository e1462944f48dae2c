// Scans (cumsum/cumprod/cummax/cummin) against numpy fixtures.

import TesseraTestSupport
import XCTest

@testable import Tessera

/// cumsum, cumprod, cummax and cummin (inclusive/exclusive, reversed) against
/// numpy (Tests/Fixtures/scan.json, Tools/gen_ops_indexing_fixtures.py).
final class ScanTests: XCTestCase {
    func testScansMatchNumpy() throws {
        let cases = try loadFixtureCases("scan.json")
        XCTAssertGreaterThan(cases.count, 200)
        for c in cases {
            let x = c.inputs[0], p = c.params
            let axis = try p.optionalInt("axis"), reverse = try p.bool("reverse"), inclusive = try p.bool("inclusive")
            let result: Tensor
            switch c.op {
            case "cumsum": result = x.cumsum(axis: axis, reverse: reverse, inclusive: inclusive)
            case "cumprod": result = x.cumprod(axis: axis, reverse: reverse, inclusive: inclusive)
            case "cummax": result = x.cummax(axis: axis, reverse: reverse, inclusive: inclusive)
            case "cummin": result = x.cummin(axis: axis, reverse: reverse, inclusive: inclusive)
            default: fatalError("unknown op \(c.op)")
            }
            assertMatches(result, c.expected[0], c.name)
        }
    }
}
