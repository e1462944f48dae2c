// dtype promotion, weak scalars and printing, against MLX.

import Foundation
import TesseraTestSupport
import XCTest

@testable import Tessera

/// MLX's promotion table and printing, against fixtures MLX itself wrote
/// (Tools/gen_mlx_fixtures.py).
final class PromotionAndPrintingTests: XCTestCase {
    private func fixture(_ name: String) throws -> [String: Any] { try loadFixtureJSON(name) as! [String: Any] }

    func testPromotionTableMatchesMLX() throws {
        let pairs = try fixture("promotion.json")["pairs"] as! [[String: String]]
        XCTAssertEqual(pairs.count, 14 * 14)
        for pair in pairs {
            let a = DType(name: pair["a"]!)!, b = DType(name: pair["b"]!)!
            XCTAssertEqual(promoteTypes(a, b).name, pair["result"], "promote(\(a), \(b))")
            // And through a real op, which must agree with the table.
            let sum = Tensor.zeros([1], dtype: a) + Tensor.zeros([1], dtype: b)
            XCTAssertEqual(sum.dtype.name, pair["result"], "\(a) + \(b)")
        }
    }

    func testWeakScalarsMatchMLX() throws {
        let rows = try fixture("promotion.json")["weak"] as! [[String: String]]
        XCTAssertEqual(rows.count, 14)
        for row in rows {
            let x = Tensor.ones([1], dtype: DType(name: row["dtype"]!)!)
            XCTAssertEqual((x * 2).dtype.name, row["times_int"], "\(x.dtype) * 2")
            XCTAssertEqual((x * 2.0).dtype.name, row["times_float"], "\(x.dtype) * 2.0")
            XCTAssertEqual((2 * x).dtype.name, row["int_times"], "2 * \(x.dtype)")
            XCTAssertEqual((2.0 * x).dtype.name, row["float_times"], "2.0 * \(x.dtype)")
        }
    }

    func testDescriptionMatchesMLX() throws {
        let cases = try fixture("description.json")["cases"] as! [[String: Any]]
        XCTAssertGreaterThan(cases.count, 10)
        for c in cases {
            let t = try fixtureTensor(c)
            XCTAssertEqual(t.description, c["description"] as? String)
        }
    }
}
