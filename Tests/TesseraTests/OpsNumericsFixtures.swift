import Foundation
import XCTest

@testable import Tessera

// Reading the ops-numerics fixtures (Tools/gen_ops_numerics_fixtures.py) and
// comparing against them. Kept small and self-contained so it can give way to
// the shared numpy-fixture loader once that lands on main.

/// One fixture case: `{"name", "op", "params", "inputs", "expected" | "expected_list"}`.
struct NumericsCase {
    let name: String
    let op: String
    let params: [String: Any]
    let inputs: [Tensor]
    let expected: [Tensor]

    func int(_ key: String) -> Int { (params[key] as! NSNumber).intValue }
    func double(_ key: String) -> Double { (params[key] as! NSNumber).doubleValue }
    func bool(_ key: String) -> Bool { (params[key] as! NSNumber).boolValue }
    func optionalDouble(_ key: String) -> Double? { (params[key] as? NSNumber)?.doubleValue }
    func string(_ key: String) -> String? { params[key] as? String }
}

enum NumericsFixtures {
    static func load(_ file: String) throws -> [NumericsCase] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/\(file)")
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (root["cases"] as! [[String: Any]]).map { c in
            let expected: [Tensor]
            if let list = c["expected_list"] as? [[String: Any]] {
                expected = list.map(tensor)
            } else if let one = c["expected"] as? [String: Any] {
                expected = [tensor(one)]
            } else {
                expected = []
            }
            return NumericsCase(
                name: c["name"] as! String, op: c["op"] as! String, params: c["params"] as? [String: Any] ?? [:],
                inputs: (c["inputs"] as? [[String: Any]] ?? []).map(tensor), expected: expected)
        }
    }

    /// A fixture array: `{"dtype", "shape", "data": base64 little-endian bytes, "view"?}`
    /// (decoded by the shared op-fixture reader).
    static func tensor(_ json: [String: Any]) -> Tensor { OpsFixture.tensor(json) }

    /// Relative tolerance per dtype (absolute tolerance is the same figure).
    static func tolerance(_ dtype: DType) -> Double {
        switch dtype {
        case .float16: return 1e-3
        case .bfloat16: return 1e-2
        case .float64: return 1e-12
        default: return 1e-5
        }
    }
}

/// Asserts equal shape, dtype and bytes.
func assertBitsEqual(_ actual: Tensor, _ expected: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "\(message): shape", file: file, line: line)
    XCTAssertEqual(actual.dtype, expected.dtype, "\(message): dtype", file: file, line: line)
    guard actual.shape == expected.shape, actual.dtype == expected.dtype else { return }
    let a = actual.bytes(), e = expected.bytes()
    if a != e {
        let size = actual.dtype.size
        let first = stride(from: 0, to: a.count, by: size).first { a[$0..<($0 + size)] != e[$0..<($0 + size)] } ?? 0
        let differing = stride(from: 0, to: a.count, by: size).filter { a[$0..<($0 + size)] != e[$0..<($0 + size)] }
        XCTFail(
            "\(message): \(differing.count) of \(a.count / size) elements differ; first at \(first / size): "
                + "\(actual.flattened()[first / size]) vs \(expected.flattened()[first / size])",
            file: file, line: line)
    }
}

/// Asserts equal shape and values within `|a - e| <= tol * (1 + |e|)` (tol from the dtype unless given).
func assertClose(
    _ actual: Tensor, _ expected: Tensor, _ message: String, tolerance: Double? = nil, file: StaticString = #filePath,
    line: UInt = #line
) {
    XCTAssertEqual(actual.shape, expected.shape, "\(message): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let tol = tolerance ?? NumericsFixtures.tolerance(actual.dtype)
    let a = actual.toArray(Double.self), e = expected.toArray(Double.self)
    var worst = 0.0, worstIndex = -1
    for i in a.indices {
        if a[i].isNaN && e[i].isNaN { continue }
        if a[i] == e[i] { continue }
        let err = Swift.abs(a[i] - e[i]) / (1 + Swift.abs(e[i]))
        if !(err <= worst) || err.isNaN {
            worst = err.isNaN ? .infinity : err
            worstIndex = i
        }
    }
    if worst > tol {
        XCTFail(
            "\(message): error \(worst) > \(tol) at \(worstIndex): \(a[worstIndex]) vs \(e[worstIndex])",
            file: file, line: line)
    }
}
