// The one fixture layer every suite shares: reading Tests/Fixtures (arrays with
// their views, cases in either file layout, typed parameters) and comparing
// results with one per-dtype tolerance table and detailed failure messages.
//
// Set TESSERA_FIXTURE_TRACE=1 to print each fixture file's case count as it loads.

import Foundation
import XCTest

@testable import Tessera

// MARK: - Files

/// Tests/Fixtures, found from this file's location (Package.swift declares no resources).
let fixtureRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

/// Whether TESSERA_FIXTURE_TRACE is set (suites may also print each case before running it).
let fixtureTrace = ProcessInfo.processInfo.environment["TESSERA_FIXTURE_TRACE"] != nil

/// A malformed fixture.
enum FixtureError: Error, CustomStringConvertible {
    case bad(String)

    var description: String {
        switch self {
        case .bad(let s): return "bad fixture: \(s)"
        }
    }
}

/// A fixture JSON file's top-level value (path relative to Tests/Fixtures).
func loadFixtureJSON(_ relativePath: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureRoot.appendingPathComponent(relativePath)))
}

// MARK: - Arrays

/// A stored array: `{"dtype", "shape", "data": base64 of little-endian row-major bytes, "view"?}`,
/// where the optional view is a list of steps applied in order:
/// `{"transpose": axes}`, `{"slice": [[start, stop, step], ...]}` (null bounds allowed) or `{"broadcast_to": shape}`.
struct FixtureArray {
    let dtype: DType
    let shape: [Int]
    let bytes: [UInt8]
    let view: [[String: Any]]?

    init(_ json: Any) throws {
        guard let d = json as? [String: Any], let name = d["dtype"] as? String, let shape = d["shape"] as? [Int],
            let b64 = d["data"] as? String, let data = Data(base64Encoded: b64)
        else { throw FixtureError.bad("array \(json)") }
        guard let dtype = DType(name: name) else { throw FixtureError.bad("dtype \(name)") }
        self.dtype = dtype
        self.shape = shape
        bytes = [UInt8](data)
        view = d["view"] as? [[String: Any]]
    }

    /// The stored array as a Tensor, with its view applied.
    func tensor() throws -> Tensor {
        var t = bytes.withUnsafeBytes { Tensor(bytes: $0, shape: shape, dtype: dtype) }
        for step in view ?? [] {
            if let axes = step["transpose"] as? [Int] {
                t = t.transposed(axes: axes)
            } else if let triples = step["slice"] as? [[Any]] {
                t = t[try triples.map(sliceIndex)]
            } else if let target = step["broadcast_to"] as? [Int] {
                t = t.broadcast(to: target)
            } else {
                throw FixtureError.bad("view step \(step)")
            }
        }
        return t
    }
}

/// The Tensor a stored array describes (view applied).
func fixtureTensor(_ json: Any) throws -> Tensor { try FixtureArray(json).tensor() }

/// `[start, stop, step]` with null bounds (and a null step meaning 1).
private func sliceIndex(_ triple: Any) throws -> TensorIndex {
    guard let t = triple as? [Any], t.count == 3 else { throw FixtureError.bad("slice \(triple)") }
    return .slice(start: t[0] as? Int, end: t[1] as? Int, step: t[2] as? Int ?? 1)
}

// MARK: - Cases

/// One case: `{"name", "op", "params"?, "inputs"?, "expected" | "expected_list"}`.
struct FixtureCase {
    let name: String
    let op: String
    let params: FixtureParams
    /// The stored inputs (with their views), as read.
    let storedInputs: [FixtureArray]
    /// The inputs as tensors, views applied.
    let inputs: [Tensor]
    /// The expected results: one for `expected`, all of `expected_list`, none when the case has neither.
    let expected: [Tensor]
}

/// The cases of `Tests/Fixtures/<file>`, stored either as a top-level list or as `{"cases": [...]}`.
func loadFixtureCases(_ file: String) throws -> [FixtureCase] {
    let json = try loadFixtureJSON(file)
    guard let list = json as? [[String: Any]] ?? (json as? [String: Any])?["cases"] as? [[String: Any]] else {
        throw FixtureError.bad("\(file) holds neither a list of cases nor {\"cases\": [...]}")
    }
    let cases = try list.map { c -> FixtureCase in
        guard let name = c["name"] as? String, let op = c["op"] as? String else {
            throw FixtureError.bad("case \(c["name"] ?? "?") in \(file)")
        }
        let expected: [Any]
        if let many = c["expected_list"] as? [Any] {
            expected = many
        } else if let one = c["expected"], !(one is NSNull) {
            expected = [one]
        } else {
            expected = []
        }
        let stored = try (c["inputs"] as? [Any] ?? []).map(FixtureArray.init)
        return FixtureCase(
            name: name, op: op, params: FixtureParams(c["params"] as? [String: Any] ?? [:]), storedInputs: stored,
            inputs: try stored.map { try $0.tensor() }, expected: try expected.map(fixtureTensor))
    }
    if fixtureTrace { print("[fixtures] \(file): \(cases.count) cases") }
    return cases
}

// MARK: - Parameters

/// A case's parameters, read by key and type. JSON null reads as absent; a present
/// value of the wrong type throws (optional accessors included).
struct FixtureParams {
    let values: [String: Any]

    init(_ values: [String: Any]) { self.values = values }

    /// `key=value` pairs, sorted by key (for failure messages).
    var text: String {
        values.keys.sorted().map { "\($0)=\(values[$0] is NSNull ? "nil" : "\(values[$0]!)")" }.joined(separator: " ")
    }

    /// The raw value; nil when absent or null.
    subscript(key: String) -> Any? {
        guard let v = values[key], !(v is NSNull) else { return nil }
        return v
    }

    func has(_ key: String) -> Bool { self[key] != nil }

    private func optional<T>(_ key: String, _ what: String, _ read: (Any) -> T?) throws -> T? {
        guard let v = self[key] else { return nil }
        guard let value = read(v) else { throw FixtureError.bad("param \(key) = \(v) is not \(what)") }
        return value
    }

    private func required<T>(_ key: String, _ what: String, _ read: (Any) -> T?) throws -> T {
        guard let value = try optional(key, what, read) else {
            throw FixtureError.bad("param \(key) is missing (\(what))")
        }
        return value
    }

    private static func int(_ v: Any) -> Int? {
        if let i = v as? Int { return i }
        return (v as? NSNumber).flatMap { Int(exactly: $0.doubleValue) }
    }

    private static func bool(_ v: Any) -> Bool? { v as? Bool }
    private static func double(_ v: Any) -> Double? { (v as? NSNumber)?.doubleValue }

    func int(_ key: String) throws -> Int { try required(key, "an int", Self.int) }
    func optionalInt(_ key: String) throws -> Int? { try optional(key, "an int", Self.int) }
    /// Integers beyond Int.max (random seeds).
    func uint64(_ key: String) throws -> UInt64 { try required(key, "a number") { ($0 as? NSNumber)?.uint64Value } }
    func double(_ key: String) throws -> Double { try required(key, "a number", Self.double) }
    func optionalDouble(_ key: String) throws -> Double? { try optional(key, "a number", Self.double) }
    func bool(_ key: String) throws -> Bool { try required(key, "a bool", Self.bool) }
    func optionalBool(_ key: String) throws -> Bool? { try optional(key, "a bool", Self.bool) }
    func string(_ key: String) throws -> String { try required(key, "a string") { $0 as? String } }
    func optionalString(_ key: String) throws -> String? { try optional(key, "a string") { $0 as? String } }
    func ints(_ key: String) throws -> [Int] { try required(key, "a list of ints") { $0 as? [Int] } }
    func optionalInts(_ key: String) throws -> [Int]? { try optional(key, "a list of ints") { $0 as? [Int] } }
    func intLists(_ key: String) throws -> [[Int]] { try required(key, "a list of int lists") { $0 as? [[Int]] } }

    func dtype(_ key: String) throws -> DType {
        try required(key, "a dtype name") { ($0 as? String).flatMap { DType(name: $0) } }
    }

    func optionalDType(_ key: String) throws -> DType? {
        try optional(key, "a dtype name") { ($0 as? String).flatMap { DType(name: $0) } }
    }

    /// A Swift scalar of the kind the case names (`scalar_kind`, or `value_kind` for `value`): Int, Double or Bool.
    func scalar(_ key: String) throws -> (any TensorOperand)? {
        guard let v = try optional(key, "a number", { $0 as? NSNumber }) else { return nil }
        switch try optionalString(key == "value" ? "value_kind" : "scalar_kind") {
        case "int": return v.intValue
        case "float": return v.doubleValue
        case "bool": return v.boolValue
        case let kind: throw FixtureError.bad("param \(key) has scalar kind \(kind ?? "nil")")
        }
    }

    /// Subscript entries: `"newaxis"`, `"ellipsis"`, `{"index"|"int": i}`, `{"slice": [start, stop, step]}`,
    /// `{"newaxis": _}`, `{"ellipsis": _}` or `{"tensor": k}` (the k-th of `tensors`).
    func indices(_ key: String, tensors: [Tensor] = []) throws -> [TensorIndex] {
        let list = try required(key, "a list") { $0 as? [Any] }
        return try list.map { entry -> TensorIndex in
            if let s = entry as? String {
                switch s {
                case "newaxis": return .newAxis
                case "ellipsis": return .ellipsis
                default: throw FixtureError.bad("index \(s)")
                }
            }
            guard let d = entry as? [String: Any] else { throw FixtureError.bad("index \(entry)") }
            if let i = (d["index"] ?? d["int"]).flatMap(Self.int) { return .index(i) }
            if let s = d["slice"] { return try sliceIndex(s) }
            if d["newaxis"] != nil { return .newAxis }
            if d["ellipsis"] != nil { return .ellipsis }
            if let k = d["tensor"].flatMap(Self.int), tensors.indices.contains(k) { return tensors[k].tensorIndex }
            throw FixtureError.bad("index \(entry)")
        }
    }
}

// MARK: - Comparison

/// How close a value must be to its reference: `|actual - expected| <= atol + rtol * |expected|`.
struct Tolerance: CustomStringConvertible {
    var rtol: Double
    var atol: Double

    /// The per-dtype table every suite shares; nil means exact (integers and bool).
    /// complex64 applies float32's figures to each part.
    static func table(_ dtype: DType) -> Tolerance? {
        switch dtype {
        case .float32, .complex64: return Tolerance(rtol: 1e-5, atol: 1e-6)
        case .float16: return Tolerance(rtol: 1e-3, atol: 1e-3)
        case .bfloat16: return Tolerance(rtol: 1e-2, atol: 1e-2)
        case .float64: return Tolerance(rtol: 1e-12, atol: 1e-12)
        case .bool, .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64: return nil
        }
    }

    var description: String { "rtol \(rtol), atol \(atol)" }
}

/// What counts as a match. Every comparison also requires equal dtype and shape.
enum FixtureComparison {
    /// Within `Tolerance.table` of the dtype; integers and bool exactly; NaN matches NaN.
    case table
    /// Floating-point values within the given tolerance (an explicit, commented override
    /// at the call site); integers and bool exactly; NaN matches NaN.
    case within(Tolerance)
    /// Identical bytes (bit for bit, so -0 differs from 0 and NaN payloads count).
    case bitwise
}

/// How `actual` differs from `expected`, or nil when it matches: the dtype, the shape, or the
/// first mismatching element by multi-index with both values (and how many elements differ).
func fixtureMismatch(_ actual: Tensor, _ expected: Tensor, _ comparison: FixtureComparison = .table) -> String? {
    let dtype = expected.dtype
    if actual.dtype != dtype { return "dtype \(actual.dtype), expected \(dtype)" }
    if actual.shape != expected.shape { return "shape \(actual.shape), expected \(expected.shape)" }
    let gotBytes = actual.bytes(), wantBytes = expected.bytes()
    if gotBytes.count != wantBytes.count { return "\(gotBytes.count) bytes, expected \(wantBytes.count)" }
    let got = decodeElements(gotBytes, dtype), want = decodeElements(wantBytes, dtype)
    // complex64 decodes to two parts per element.
    let parts = dtype == .complex64 ? 2 : 1
    let size = dtype.size / parts

    let tolerance: Tolerance?
    switch comparison {
    case .table: tolerance = Tolerance.table(dtype)
    case .within(let t): tolerance = t
    case .bitwise: tolerance = nil
    }
    func matches(_ i: Int) -> Bool {
        if case .bitwise = comparison {
            return gotBytes[(i * size)..<((i + 1) * size)] == wantBytes[(i * size)..<((i + 1) * size)]
        }
        switch (got[i], want[i]) {
        case (.exact(let a), .exact(let b)): return a == b
        case (.real(let a), .real(let b)):
            if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
            if a == b { return true }
            guard let tolerance else { return false }
            return Swift.abs(a - b) <= tolerance.atol + tolerance.rtol * Swift.abs(b)
        default: return false
        }
    }

    guard let first = got.indices.first(where: { !matches($0) }) else { return nil }
    let differing = got.indices[first...].lazy.filter { !matches($0) }.count
    let index = unflatten(first / parts, expected.shape)
    let part = parts == 2 ? (first % 2 == 0 ? " (real part)" : " (imaginary part)") : ""
    var values = "got \(got[first]), expected \(want[first])"
    if case .bitwise = comparison, dtype.isInexact {
        func bits(_ b: [UInt8]) -> String {
            "0x" + b[(first * size)..<((first + 1) * size)].reversed().map { String(format: "%02x", $0) }.joined()
        }
        values = "got \(got[first]) (\(bits(gotBytes))), expected \(want[first]) (\(bits(wantBytes)))"
    }
    let rule: String
    switch comparison {
    case .bitwise: rule = "bitwise"
    case .table, .within: rule = tolerance.map { "\($0)" } ?? "exact"
    }
    return "first mismatch at \(index)\(part): \(values) (\(differing) of \(got.count) values differ; \(rule))"
}

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

/// One decoded element (or complex part): integers and bool exactly, floating point as Double.
private enum FixtureValue: CustomStringConvertible {
    case exact(String)
    case real(Double)

    var description: String {
        switch self {
        case .exact(let s): return s
        case .real(let x): return "\(x)"
        }
    }
}

private func decodeElements(_ bytes: [UInt8], _ dtype: DType) -> [FixtureValue] {
    let n = bytes.count / dtype.size
    return bytes.withUnsafeBytes { raw -> [FixtureValue] in
        func load<T>(_ i: Int, _: T.Type) -> T {
            raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)
        }
        switch dtype {
        case .bool: return (0..<n).map { .exact(load($0, UInt8.self) != 0 ? "true" : "false") }
        case .uint8: return (0..<n).map { .exact(String(load($0, UInt8.self))) }
        case .uint16: return (0..<n).map { .exact(String(load($0, UInt16.self))) }
        case .uint32: return (0..<n).map { .exact(String(load($0, UInt32.self))) }
        case .uint64: return (0..<n).map { .exact(String(load($0, UInt64.self))) }
        case .int8: return (0..<n).map { .exact(String(load($0, Int8.self))) }
        case .int16: return (0..<n).map { .exact(String(load($0, Int16.self))) }
        case .int32: return (0..<n).map { .exact(String(load($0, Int32.self))) }
        case .int64: return (0..<n).map { .exact(String(load($0, Int64.self))) }
        case .float16: return (0..<n).map { .real(Double(Float16(bitPattern: load($0, UInt16.self)))) }
        case .bfloat16: return (0..<n).map { .real(Double(BFloat16(bitPattern: load($0, UInt16.self)).float)) }
        case .float32: return (0..<n).map { .real(Double(load($0, Float.self))) }
        case .float64: return (0..<n).map { .real(load($0, Double.self)) }
        case .complex64: return (0..<(2 * n)).map { .real(Double(load($0, Float.self))) }
        }
    }
}

/// The multi-index of flat position `i` in a row-major `shape`.
private func unflatten(_ i: Int, _ shape: [Int]) -> [Int] {
    var rest = i
    var index = [Int](repeating: 0, count: shape.count)
    for axis in shape.indices.reversed() where shape[axis] > 0 {
        index[axis] = rest % shape[axis]
        rest /= shape[axis]
    }
    return index
}
