// Fixture loading for the NN and optimizer tests: JSON files written by
// Tools/gen_nn_fixtures.py, whose arrays are {dtype, shape, data: base64 of
// little-endian row-major bytes}, and the paths of Tests/Fixtures.

import Foundation
import Tessera

/// Tests/Fixtures, found from this file's location (the package declares no resources).
public let fixturesDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

public enum FixtureError: Error, CustomStringConvertible {
    case malformed(String)
    public var description: String {
        switch self {
        case .malformed(let what): return "malformed fixture: \(what)"
        }
    }
}

/// One JSON object of a fixture file, with typed accessors.
public struct FixtureCase {
    public let object: [String: Any]

    public init(_ object: [String: Any]) { self.object = object }

    public var name: String { object["name"] as? String ?? "?" }

    /// The stored array at `key`.
    public func tensor(_ key: String) throws -> Tensor {
        guard let o = object[key] as? [String: Any] else { throw FixtureError.malformed("\(name): no array \(key)") }
        return try decodeArray(o)
    }

    /// The stored arrays under the dictionary `key` (e.g. parameters by dotted key).
    public func tensors(_ key: String) throws -> [String: Tensor] {
        guard let d = object[key] as? [String: Any] else {
            throw FixtureError.malformed("\(name): no dictionary \(key)")
        }
        var out: [String: Tensor] = [:]
        for (k, v) in d {
            guard let o = v as? [String: Any] else { throw FixtureError.malformed("\(name): \(key).\(k)") }
            out[k] = try decodeArray(o)
        }
        return out
    }

    public func has(_ key: String) -> Bool { object[key] != nil }
    public func double(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
    public func int(_ key: String) -> Int? { (object[key] as? NSNumber)?.intValue }
    public func bool(_ key: String) -> Bool? { (object[key] as? NSNumber)?.boolValue }
    public func string(_ key: String) -> String? { object[key] as? String }
    public func ints(_ key: String) -> [Int]? { (object[key] as? [NSNumber])?.map(\.intValue) }
    public func dictionary(_ key: String) -> [String: Any]? { object[key] as? [String: Any] }
}

/// The cases of a fixture file: a JSON object whose `cases` is an array of objects.
public func loadFixtureCases(_ file: String) throws -> [FixtureCase] {
    let data = try Data(contentsOf: fixturesDirectory.appendingPathComponent(file))
    guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
        let cases = root["cases"] as? [[String: Any]]
    else { throw FixtureError.malformed("\(file) has no cases array") }
    return cases.map(FixtureCase.init)
}

private func decodeArray(_ o: [String: Any]) throws -> Tensor {
    guard let name = o["dtype"] as? String, let dtype = DType(name: name), let shape = o["shape"] as? [Int],
        let text = o["data"] as? String, let data = Data(base64Encoded: text)
    else { throw FixtureError.malformed("array \(o.keys.sorted())") }
    return Array(data).withUnsafeBytes { Tensor(bytes: $0, shape: shape, dtype: dtype) }
}

/// Whether `actual` matches `expected` within `rtol`/`atol` (elementwise,
/// |a - e| <= atol + rtol |e|); nil if so, else a message naming the worst element.
public func mismatch(_ actual: Tensor, _ expected: Tensor, rtol: Double, atol: Double) -> String? {
    if actual.shape != expected.shape { return "shape \(actual.shape), expected \(expected.shape)" }
    let a = actual.asType(.float64).toArray(Double.self), e = expected.asType(.float64).toArray(Double.self)
    var worst: (index: Int, excess: Double)? = nil
    for i in a.indices {
        let bound = atol + rtol * Swift.abs(e[i])
        let diff = Swift.abs(a[i] - e[i])
        if !(diff <= bound) || a[i].isNaN != e[i].isNaN {
            let excess = diff - bound
            if worst == nil || excess > worst!.excess || excess.isNaN { worst = (i, excess) }
        }
    }
    guard let w = worst else { return nil }
    return "element \(w.index): \(a[w.index]) vs expected \(e[w.index]) (rtol \(rtol), atol \(atol))"
}
