// The XCTest side of the shared fixture layer (TesseraTestSupport's Fixtures.swift):
// assertions over `fixtureMismatch`.

import TesseraTestSupport
import XCTest

@testable import Tessera

/// Asserts `actual` matches `expected` (dtype, shape and values; see `FixtureComparison`),
/// failing with `message` (the case) and `fixtureMismatch`'s description.
func assertMatches(
    _ actual: Tensor, _ expected: Tensor, _ message: String, _ comparison: FixtureComparison = .table,
    file: StaticString = #filePath, line: UInt = #line
) {
    if let problem = fixtureMismatch(actual, expected, comparison) {
        XCTFail("\(message): \(problem)", file: file, line: line)
    }
}
