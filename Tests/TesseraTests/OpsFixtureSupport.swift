import Foundation
import XCTest

@testable import Tessera

/// Reading the op fixtures written by Tools/gen_ops_indexing_fixtures.py and
/// comparing results with the per-dtype tolerance table. Kept in one
/// namespace so it can give way to the shared numpy-fixture loader.
enum OpsFixture {
    struct Case {
        let name: String
        let op: String
        let params: [String: Any]
        let inputs: [Tensor]
        let expected: [Tensor]
    }

    /// Relative (and absolute) tolerance per dtype; dtypes not listed compare exactly.
    static let tolerance: [DType: Double] = [
        .float32: 1e-5, .float16: 1e-3, .bfloat16: 1e-2, .float64: 1e-12, .complex64: 1e-5,
    ]

    static func load(_ file: String) throws -> [Case] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/\(file)")
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [[String: Any]]
        return cases.map { c in
            let expected = (c["expected_list"] as? [[String: Any]]) ?? [c["expected"] as! [String: Any]]
            return Case(
                name: c["name"] as! String, op: c["op"] as! String, params: c["params"] as? [String: Any] ?? [:],
                inputs: (c["inputs"] as! [[String: Any]]).map(tensor), expected: expected.map(tensor))
        }
    }

    /// The stored array with its view applied.
    static func tensor(_ json: [String: Any]) -> Tensor {
        let bytes = Data(base64Encoded: json["data"] as! String)!
        let shape = json["shape"] as! [Int]
        let dtype = DType(name: json["dtype"] as! String)!
        var t = bytes.withUnsafeBytes { Tensor(bytes: $0, shape: shape, dtype: dtype) }
        for step in json["view"] as? [[String: Any]] ?? [] {
            if let axes = step["transpose"] as? [Int] {
                t = t.transposed(axes: axes)
            } else if let slices = step["slice"] as? [[Any]] {
                t = t[slices.map { s in .slice(start: s[0] as? Int, end: s[1] as? Int, step: s[2] as? Int ?? 1) }]
            } else if let target = step["broadcast_to"] as? [Int] {
                t = t.broadcast(to: target)
            }
        }
        return t
    }

    /// Optional Int parameter (JSON null is nil).
    static func int(_ params: [String: Any], _ key: String) -> Int? { params[key] as? Int }

    static func assertMatches(
        _ actual: Tensor, _ expected: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(actual.dtype, expected.dtype, "\(message): dtype", file: file, line: line)
        XCTAssertEqual(actual.shape, expected.shape, "\(message): shape", file: file, line: line)
        guard actual.dtype == expected.dtype, actual.shape == expected.shape else { return }
        guard let tol = tolerance[expected.dtype] else {
            XCTAssertEqual(actual.bytes(), expected.bytes(), "\(message): values", file: file, line: line)
            return
        }
        let a: [Double], e: [Double]
        if expected.dtype == .complex64 {
            a = actual.toArray(Complex64.self).flatMap { [Double($0.real), Double($0.imaginary)] }
            e = expected.toArray(Complex64.self).flatMap { [Double($0.real), Double($0.imaginary)] }
        } else {
            a = actual.toArray(Double.self)
            e = expected.toArray(Double.self)
        }
        for i in e.indices {
            let ok = (a[i].isNaN && e[i].isNaN) || a[i] == e[i] || abs(a[i] - e[i]) <= tol * (1 + abs(e[i]))
            if !ok {
                XCTFail("\(message): element \(i) is \(a[i]), expected \(e[i])", file: file, line: line)
                return
            }
        }
    }
}
