// The one fixture layer every suite shares (no XCTest here; `assertMatches`
// lives in each test target that wants it): reading Tests/Fixtures (arrays with
// their views, cases in either file layout, typed parameters, keyed accessors
// for the NN and optimizer cases) and comparing results with one per-dtype
// tolerance table (`Tolerance.table`) and detailed failure messages.
//
// Set TESSERA_FIXTURE_TRACE=1 to print each fixture file's case count as it loads.

import Foundation
import Tessera

// MARK: - Files

/// Tests/Fixtures, found from this file's location (Package.swift declares no resources).
public let fixtureRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

/// The same directory (the name the NN and optimizer tests use).
public var fixturesDirectory: URL { fixtureRoot }

/// Whether TESSERA_FIXTURE_TRACE is set (suites may also print each case before running it).
public let fixtureTrace = ProcessInfo.processInfo.environment["TESSERA_FIXTURE_TRACE"] != nil

/// A malformed fixture.
public enum FixtureError: Error, CustomStringConvertible {
    case bad(String)

    public var description: String {
        switch self {
        case .bad(let s): return "bad fixture: \(s)"
        }
    }
}

/// A fixture JSON file's top-level value (path relative to Tests/Fixtures).
public func loadFixtureJSON(_ relativePath: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureRoot.appendingPathComponent(relativePath)))
}

// MARK: - Arrays

/// A stored array: `{"dtype", "shape", "data": base64 of little-endian row-major bytes, "view"?}`,
/// where the optional view is a list of steps applied in order:
/// `{"transpose": axes}`, `{"slice": [[start, stop, step], ...]}` (null bounds allowed) or `{"broadcast_to": shape}`.
public struct FixtureArray {
    public let dtype: DType
    public let shape: [Int]
    public let bytes: [UInt8]
    public let view: [[String: Any]]?

    public init(_ json: Any) throws {
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
    public func tensor() throws -> Tensor {
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
public func fixtureTensor(_ json: Any) throws -> Tensor { try FixtureArray(json).tensor() }

/// `[start, stop, step]` with null bounds (and a null step meaning 1).
private func sliceIndex(_ triple: Any) throws -> TensorIndex {
    guard let t = triple as? [Any], t.count == 3 else { throw FixtureError.bad("slice \(triple)") }
    return .slice(start: t[0] as? Int, end: t[1] as? Int, step: t[2] as? Int ?? 1)
}

// MARK: - Cases

/// One case of a fixture file. Op cases (`layout: .op`, the array-framework suites):
/// `{"name", "op", "params"?, "inputs"?, "expected" | "expected_list"}`, read into the typed
/// fields below. Keyed cases (`layout: .keyed`, the NN and optimizer suites): any JSON object,
/// read through the keyed accessors (`tensor(_:)`, `double(_:)`, ...); their `op` is empty and
/// `params`, `inputs` and `expected` are empty. Both keep the raw `object`.
public struct FixtureCase {
    /// The case as read.
    public let object: [String: Any]
    public let name: String
    public let op: String
    public let params: FixtureParams
    /// The stored inputs (with their views), as read.
    public let storedInputs: [FixtureArray]
    /// The inputs as tensors, views applied.
    public let inputs: [Tensor]
    /// The expected results: one for `expected`, all of `expected_list`, none when the case has neither.
    public let expected: [Tensor]

    /// A keyed case over a JSON object (its `name`, or "?" when it has none).
    public init(_ object: [String: Any]) {
        self.object = object
        name = object["name"] as? String ?? "?"
        op = ""
        params = FixtureParams([:])
        storedInputs = []
        inputs = []
        expected = []
    }

    /// An op case: `name` and `op` required, inputs and expected arrays decoded.
    init(opCase c: [String: Any], file: String) throws {
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
        object = c
        self.name = name
        self.op = op
        params = FixtureParams(c["params"] as? [String: Any] ?? [:])
        storedInputs = stored
        inputs = try stored.map { try $0.tensor() }
        self.expected = try expected.map(fixtureTensor)
    }

    // MARK: Keyed accessors (NN and optimizer cases)

    /// The stored array at `key` (view applied).
    public func tensor(_ key: String) throws -> Tensor {
        guard let o = object[key] as? [String: Any] else { throw FixtureError.bad("\(name): no array \(key)") }
        return try fixtureTensor(o)
    }

    /// The stored arrays under the dictionary `key` (e.g. parameters by dotted key).
    public func tensors(_ key: String) throws -> [String: Tensor] {
        guard let d = object[key] as? [String: Any] else { throw FixtureError.bad("\(name): no dictionary \(key)") }
        var out: [String: Tensor] = [:]
        for (k, v) in d {
            guard v is [String: Any] else { throw FixtureError.bad("\(name): \(key).\(k)") }
            out[k] = try fixtureTensor(v)
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

/// How a fixture file's cases are read (see `FixtureCase`).
public enum FixtureLayout: Sendable {
    /// Op cases: `name` and `op` required, arrays decoded up front.
    case op
    /// Keyed cases: any objects, read through the keyed accessors.
    case keyed
}

/// The cases of `Tests/Fixtures/<file>`, stored either as a top-level list or as `{"cases": [...]}`.
public func loadFixtureCases(_ file: String, layout: FixtureLayout = .op) throws -> [FixtureCase] {
    let json = try loadFixtureJSON(file)
    guard let list = json as? [[String: Any]] ?? (json as? [String: Any])?["cases"] as? [[String: Any]] else {
        throw FixtureError.bad("\(file) holds neither a list of cases nor {\"cases\": [...]}")
    }
    let cases: [FixtureCase]
    switch layout {
    case .op: cases = try list.map { try FixtureCase(opCase: $0, file: file) }
    case .keyed: cases = list.map(FixtureCase.init)
    }
    if fixtureTrace { print("[fixtures] \(file): \(cases.count) cases") }
    return cases
}

// MARK: - Parameters

/// A case's parameters, read by key and type. JSON null reads as absent; a present
/// value of the wrong type throws (optional accessors included).
public struct FixtureParams {
    public let values: [String: Any]

    public init(_ values: [String: Any]) { self.values = values }

    /// `key=value` pairs, sorted by key (for failure messages).
    public var text: String {
        values.keys.sorted().map { "\($0)=\(values[$0] is NSNull ? "nil" : "\(values[$0]!)")" }.joined(separator: " ")
    }

    /// The raw value; nil when absent or null.
    public subscript(key: String) -> Any? {
        guard let v = values[key], !(v is NSNull) else { return nil }
        return v
    }

    public func has(_ key: String) -> Bool { self[key] != nil }

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

    public func int(_ key: String) throws -> Int { try required(key, "an int", Self.int) }
    public func optionalInt(_ key: String) throws -> Int? { try optional(key, "an int", Self.int) }
    /// Integers beyond Int.max (random seeds).
    public func uint64(_ key: String) throws -> UInt64 {
        try required(key, "a number") { ($0 as? NSNumber)?.uint64Value }
    }
    public func double(_ key: String) throws -> Double { try required(key, "a number", Self.double) }
    public func optionalDouble(_ key: String) throws -> Double? { try optional(key, "a number", Self.double) }
    public func bool(_ key: String) throws -> Bool { try required(key, "a bool", Self.bool) }
    public func optionalBool(_ key: String) throws -> Bool? { try optional(key, "a bool", Self.bool) }
    public func string(_ key: String) throws -> String { try required(key, "a string") { $0 as? String } }
    public func optionalString(_ key: String) throws -> String? { try optional(key, "a string") { $0 as? String } }
    public func ints(_ key: String) throws -> [Int] { try required(key, "a list of ints") { $0 as? [Int] } }
    public func optionalInts(_ key: String) throws -> [Int]? { try optional(key, "a list of ints") { $0 as? [Int] } }
    public func intLists(_ key: String) throws -> [[Int]] {
        try required(key, "a list of int lists") { $0 as? [[Int]] }
    }

    public func dtype(_ key: String) throws -> DType {
        try required(key, "a dtype name") { ($0 as? String).flatMap { DType(name: $0) } }
    }

    public func optionalDType(_ key: String) throws -> DType? {
        try optional(key, "a dtype name") { ($0 as? String).flatMap { DType(name: $0) } }
    }

    /// A Swift scalar of the kind the case names (`scalar_kind`, or `value_kind` for `value`): Int, Double or Bool.
    public func scalar(_ key: String) throws -> (any TensorOperand)? {
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
    public func indices(_ key: String, tensors: [Tensor] = []) throws -> [TensorIndex] {
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
public struct Tolerance: CustomStringConvertible, Sendable {
    public var rtol: Double
    public var atol: Double

    public init(rtol: Double, atol: Double) {
        self.rtol = rtol
        self.atol = atol
    }

    /// Exact equality (what the table gives integers and bool).
    public static let exact = Tolerance(rtol: 0, atol: 0)

    /// The per-dtype table every suite shares; nil means exact (integers and bool).
    /// complex64 applies float32's figures to each part.
    public static func table(_ dtype: DType) -> Tolerance? {
        switch dtype {
        case .float32, .complex64: return Tolerance(rtol: 1e-5, atol: 1e-6)
        case .float16: return Tolerance(rtol: 1e-3, atol: 1e-3)
        case .bfloat16: return Tolerance(rtol: 1e-2, atol: 1e-2)
        case .float64: return Tolerance(rtol: 1e-12, atol: 1e-12)
        case .bool, .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64: return nil
        }
    }

    public var description: String { "rtol \(rtol), atol \(atol)" }
}

/// What counts as a match. Every comparison also requires equal dtype and shape.
public enum FixtureComparison: Sendable {
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
public func fixtureMismatch(_ actual: Tensor, _ expected: Tensor, _ comparison: FixtureComparison = .table) -> String? {
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

/// Whether `actual` matches `expected` within `tolerance` (elementwise, after converting both to
/// float64: |a - e| <= atol + rtol |e|, NaN only against NaN); nil if so, else a message naming the
/// worst element. The NN and optimizer tests pass their per-test bounds (commented where they
/// differ from `Tolerance.table`).
public func mismatch(_ actual: Tensor, _ expected: Tensor, _ tolerance: Tolerance) -> String? {
    if actual.shape != expected.shape { return "shape \(actual.shape), expected \(expected.shape)" }
    let a = actual.asType(.float64).toArray(Double.self), e = expected.asType(.float64).toArray(Double.self)
    var worst: (index: Int, excess: Double)? = nil
    for i in a.indices {
        let bound = tolerance.atol + tolerance.rtol * Swift.abs(e[i])
        let diff = Swift.abs(a[i] - e[i])
        if !(diff <= bound) || a[i].isNaN != e[i].isNaN {
            let excess = diff - bound
            if let w = worst, !(excess > w.excess || excess.isNaN) { continue }
            worst = (i, excess)
        }
    }
    guard let w = worst else { return nil }
    return "element \(w.index): \(a[w.index]) vs expected \(e[w.index]) (\(tolerance))"
}

/// `mismatch` with the bounds spelled out at the call site.
public func mismatch(_ actual: Tensor, _ expected: Tensor, rtol: Double, atol: Double) -> String? {
    mismatch(actual, expected, Tolerance(rtol: rtol, atol: atol))
}
