// The JSON parser: key order kept, malformed input rejected with typed errors.

import XCTest

@testable import TesseraLM
import Tessera

final class JSONTests: XCTestCase {
    func testParsesAndKeepsKeyOrder() throws {
        let v = try JSONValue(parsing: #"{"b": 1, "a": [true, null, -2.5e1, "x\u00e9\ud83d\ude00\n"]}"#)
        XCTAssertEqual(v.object?.keys, ["b", "a"])
        XCTAssertEqual(v["a"], [true, nil, -25.0, "xé😀\n"])
    }

    func testRejectsMalformedInput() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "\"\\q\"", "01x", "[1] 2"] {
            XCTAssertThrowsError(try JSONValue(parsing: bad), bad)
        }
        XCTAssertThrowsError(try JSONValue(parsing: String(repeating: "[", count: 100_000)))
    }
}
