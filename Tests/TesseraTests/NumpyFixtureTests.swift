// Checks every op against numpy references stored by Tools/gen_fixtures.py
// (Tests/Fixtures/<family>.json): dtype, shape and values, with one per-dtype
// tolerance table. Set TESSERA_FIXTURE_TRACE=1 to print each case before it runs
// (to find the case behind a crash).

import Foundation
import XCTest

@testable import Tessera

final class NumpyFixtureTests: XCTestCase {
    func testUnary() throws { try runFixtures("unary") }
    func testBinary() throws { try runFixtures("binary") }
    func testReduction() throws { try runFixtures("reduction") }
    func testShape() throws { try runFixtures("shape") }
    func testIndexing() throws { try runFixtures("indexing") }
    func testMatmul() throws { try runFixtures("matmul") }
    func testMisc() throws { try runFixtures("misc") }

    private func runFixtures(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let cases = try loadFixtureCases(family)
        let trace = ProcessInfo.processInfo.environment["TESSERA_FIXTURE_TRACE"] != nil
        var checked = 0
        for c in cases {
            if trace { print("[\(family)] \(c.name)") }
            let inputs = try c.inputs.map { try $0.tensor() }
            guard let run = fixtureOps[c.op] else {
                XCTFail("\(c.name): no runner for op \(c.op)", file: file, line: line)
                continue
            }
            let results = try run(c.params, inputs)
            let expected = c.expected
            if results.count != expected.count {
                XCTFail("\(c.name) [\(c.op)]: \(results.count) results, expected \(expected.count)", file: file, line: line)
                continue
            }
            for (i, (actual, want)) in zip(results, expected).enumerated() {
                if let problem = mismatch(actual, want) {
                    let which = expected.count > 1 ? " piece \(i)" : ""
                    let ins = zip(c.inputs, inputs).map { stored, t in
                        "\(t.dtype)\(t.shape)" + (stored.view == nil ? "" : " (view of \(stored.shape))")
                    }
                    XCTFail(
                        "\(c.name) [\(c.op)]\(which) inputs \(ins.joined(separator: ", ")) params \(c.params.text): \(problem)",
                        file: file, line: line)
                }
            }
            if sharesInputBuffer(c), let input = inputs.first {
                for (i, r) in results.enumerated() where r.size > 0 {
                    XCTAssertTrue(
                        r.view().buffer === input.view().buffer,
                        "\(c.name) [\(c.op)]: result \(i) is a copy, expected a view of the input", file: file, line: line)
                }
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0, "no cases in \(family).json", file: file, line: line)
        XCTAssertEqual(checked, cases.count, file: file, line: line)
    }
}

/// Whether the case's op must return a view of its (first) input rather than a copy.
private func sharesInputBuffer(_ c: FixtureCase) -> Bool {
    switch c.op {
    case "transposed", "swappedAxes", "movedAxis", "broadcast", "squeezed", "expandedDimensions", "splitParts",
        "splitIndices":
        return true
    case "index": return c.params.string("then") == nil
    case "reshaped", "flattened": return c.inputs[0].view == nil
    default: return false
    }
}

// MARK: - The ops, by fixture name

private typealias FixtureOp = @Sendable (Params, [Tensor]) throws -> [Tensor]

private let unaryOps: [String: @Sendable (Tensor) -> Tensor] = [
    "abs": { abs($0) }, "negative": { negative($0) }, "sign": { sign($0) }, "square": { square($0) },
    "sqrt": { sqrt($0) }, "rsqrt": { rsqrt($0) }, "reciprocal": { reciprocal($0) }, "exp": { exp($0) },
    "expm1": { expm1($0) }, "log": { log($0) }, "log2": { log2($0) }, "log10": { log10($0) },
    "log1p": { log1p($0) }, "sin": { sin($0) }, "cos": { cos($0) }, "tan": { tan($0) },
    "arcsin": { arcsin($0) }, "arccos": { arccos($0) }, "arctan": { arctan($0) }, "sinh": { sinh($0) },
    "cosh": { cosh($0) }, "tanh": { tanh($0) }, "arcsinh": { arcsinh($0) }, "arccosh": { arccosh($0) },
    "arctanh": { arctanh($0) }, "sigmoid": { sigmoid($0) }, "erf": { erf($0) }, "erfinv": { erfinv($0) },
    "floor": { floor($0) }, "ceil": { ceil($0) }, "round": { round($0) }, "isNaN": { isNaN($0) },
    "isInf": { isInf($0) }, "isFinite": { isFinite($0) }, "logicalNot": { logicalNot($0) },
    "bitwiseInvert": { bitwiseInvert($0) }, "real": { real($0) }, "imag": { imag($0) },
    "conjugate": { conjugate($0) },
]

private let binaryOps: [String: @Sendable (any TensorOperand, any TensorOperand) -> Tensor] = [
    "add": { add($0, $1) }, "subtract": { subtract($0, $1) }, "multiply": { multiply($0, $1) },
    "divide": { divide($0, $1) }, "floorDivide": { floorDivide($0, $1) }, "remainder": { remainder($0, $1) },
    "power": { power($0, $1) }, "maximum": { maximum($0, $1) }, "minimum": { minimum($0, $1) },
    "equal": { equal($0, $1) }, "notEqual": { notEqual($0, $1) }, "less": { less($0, $1) },
    "lessEqual": { lessEqual($0, $1) }, "greater": { greater($0, $1) }, "greaterEqual": { greaterEqual($0, $1) },
    "logicalAnd": { logicalAnd($0, $1) }, "logicalOr": { logicalOr($0, $1) },
    "bitwiseAnd": { bitwiseAnd($0, $1) }, "bitwiseOr": { bitwiseOr($0, $1) }, "bitwiseXor": { bitwiseXor($0, $1) },
    "leftShift": { leftShift($0, $1) }, "rightShift": { rightShift($0, $1) }, "arctan2": { arctan2($0, $1) },
    "logAddExp": { logAddExp($0, $1) },
]

private let fixtureOps: [String: FixtureOp] = {
    var ops: [String: FixtureOp] = [:]
    for (name, f) in unaryOps { ops[name] = { _, x in [f(x[0])] } }
    for (name, f) in binaryOps {
        ops[name] = { p, x in
            // A weak Swift scalar on one side, or two tensors.
            guard let scalar = try p.scalar("scalar") else { return [f(x[0], x[1])] }
            return [p.string("scalar_side") == "left" ? f(scalar, x[0]) : f(x[0], scalar)]
        }
    }

    // Reductions.
    let reductions: [String: @Sendable (Tensor, [Int]?, Bool) -> Tensor] = [
        "sum": { $0.sum(axes: $1, keepDims: $2) }, "prod": { $0.prod(axes: $1, keepDims: $2) },
        "max": { $0.max(axes: $1, keepDims: $2) }, "min": { $0.min(axes: $1, keepDims: $2) },
        "mean": { $0.mean(axes: $1, keepDims: $2) }, "all": { $0.all(axes: $1, keepDims: $2) },
        "any": { $0.any(axes: $1, keepDims: $2) }, "logSumExp": { $0.logSumExp(axes: $1, keepDims: $2) },
    ]
    for (name, f) in reductions {
        ops[name] = { p, x in [f(x[0], try p.optionalInts("axes"), try p.bool("keepDims"))] }
    }
    ops["variance"] = { p, x in
        [x[0].variance(axes: try p.optionalInts("axes"), keepDims: try p.bool("keepDims"), ddof: try p.int("ddof"))]
    }
    ops["std"] = { p, x in
        [x[0].std(axes: try p.optionalInts("axes"), keepDims: try p.bool("keepDims"), ddof: try p.int("ddof"))]
    }
    ops["argMax"] = { p, x in [x[0].argMax(axis: try p.optionalInt("axis"), keepDims: try p.bool("keepDims"))] }
    ops["argMin"] = { p, x in [x[0].argMin(axis: try p.optionalInt("axis"), keepDims: try p.bool("keepDims"))] }

    // Shape.
    ops["reshaped"] = { p, x in [x[0].reshaped(try p.ints("shape"))] }
    ops["flattened"] = { p, x in [x[0].flattened(startAxis: try p.int("startAxis"), endAxis: try p.int("endAxis"))] }
    ops["squeezed"] = { p, x in [x[0].squeezed(axes: try p.optionalInts("axes"))] }
    ops["expandedDimensions"] = { p, x in [x[0].expandedDimensions(axes: try p.ints("axes"))] }
    ops["transposed"] = { p, x in [x[0].transposed(axes: try p.optionalInts("axes"))] }
    ops["swappedAxes"] = { p, x in [x[0].swappedAxes(try p.int("axis1"), try p.int("axis2"))] }
    ops["movedAxis"] = { p, x in
        [x[0].movedAxis(source: try p.int("source"), destination: try p.int("destination"))]
    }
    ops["broadcast"] = { p, x in [x[0].broadcast(to: try p.ints("shape"))] }
    ops["concatenated"] = { p, x in [concatenated(x, axis: try p.int("axis"))] }
    ops["stacked"] = { p, x in [stacked(x, axis: try p.int("axis"))] }
    ops["splitParts"] = { p, x in x[0].split(parts: try p.int("parts"), axis: try p.int("axis")) }
    ops["splitIndices"] = { p, x in x[0].split(indices: try p.ints("indices"), axis: try p.int("axis")) }

    // Indexing, optionally followed by an op on the view.
    ops["index"] = { p, x in
        let view = x[0][try p.indices("indices")]
        switch p.string("then") {
        case nil: return [view]
        case "sum": return [view.sum()]
        case "flatten": return [view.reshaped([-1])]
        case let name?:
            guard let f = unaryOps[name] else { throw FixtureError.bad("unknown follow-up op \(name)") }
            return [f(view)]
        }
    }

    ops["matmul"] = { _, x in [matmul(x[0], x[1])] }

    // which, clip, asType.
    ops["which"] = { p, x in
        if let scalar = try p.scalar("scalar") { return [which(x[0], x[1], scalar)] }
        return [which(x[0], x[1], x[2])]
    }
    ops["clip"] = { p, x in
        if p.string("bounds") == "arrays" { return [x[0].clip(min: x[1], max: x[2])] }
        return [x[0].clip(min: try p.scalar("min"), max: try p.scalar("max"))]
    }
    ops["asType"] = { p, x in [x[0].asType(try p.dtype("dtype"))] }

    // Creation.
    ops["arangeInt"] = { p, _ in
        [Tensor.arange(try p.int("start"), try p.int("stop"), step: try p.int("step"), dtype: try p.dtype("dtype"))]
    }
    ops["arangeDouble"] = { p, _ in
        [
            Tensor.arange(
                try p.double("start"), try p.double("stop"), step: try p.double("step"), dtype: try p.dtype("dtype"))
        ]
    }
    ops["linspace"] = { p, _ in
        [Tensor.linspace(try p.double("start"), try p.double("stop"), count: try p.int("count"), dtype: try p.dtype("dtype"))]
    }
    ops["eye"] = { p, _ in
        [Tensor.eye(try p.int("n"), try p.optionalInt("m"), k: try p.int("k"), dtype: try p.dtype("dtype"))]
    }
    ops["identity"] = { p, _ in [Tensor.identity(try p.int("n"), dtype: try p.dtype("dtype"))] }
    ops["zeros"] = { p, _ in [Tensor.zeros(try p.ints("shape"), dtype: try p.dtype("dtype"))] }
    ops["ones"] = { p, _ in [Tensor.ones(try p.ints("shape"), dtype: try p.dtype("dtype"))] }
    ops["full"] = { p, _ in
        guard let value = try p.scalar("value") else { throw FixtureError.bad("full needs a value") }
        let dtype = p.string("dtype").flatMap { DType(name: $0) }
        return [Tensor.full(try p.ints("shape"), value: value, dtype: dtype)]
    }
    return ops
}()

// MARK: - Comparison

/// (rtol, atol) per dtype; nil for exact comparison. complex64 uses float32's per part.
private func tolerance(_ dtype: DType) -> (rtol: Double, atol: Double)? {
    switch dtype {
    case .float32, .complex64: return (1e-5, 1e-6)
    case .float16: return (1e-3, 1e-3)
    case .bfloat16: return (1e-2, 1e-2)
    case .float64: return (1e-12, 1e-12)
    case .bool, .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64: return nil
    }
}

/// A description of how `actual` differs from `expected`, or nil when it matches.
private func mismatch(_ actual: Tensor, _ expected: FixtureArray) -> String? {
    guard let dtype = DType(name: expected.dtype) else { return "unknown expected dtype \(expected.dtype)" }
    if actual.dtype != dtype { return "dtype \(actual.dtype), expected \(dtype)" }
    if actual.shape != expected.shape { return "shape \(actual.shape), expected \(expected.shape)" }
    let got = decodeElements(actual.bytes(), dtype)
    let want = decodeElements(expected.bytes, dtype)
    if got.count != want.count { return "\(got.count) values, expected \(want.count)" }
    let tol = tolerance(dtype)
    // complex64 decodes to two parts per element.
    let parts = dtype == .complex64 ? 2 : 1
    for i in 0..<got.count {
        let ok: Bool
        switch (got[i], want[i]) {
        case (.exact(let a), .exact(let b)): ok = a == b
        case (.real(let a), .real(let b)):
            if a.isNaN || b.isNaN {
                ok = a.isNaN && b.isNaN
            } else if a == b {
                ok = true
            } else if let tol {
                ok = Swift.abs(a - b) <= tol.atol + tol.rtol * Swift.abs(b)
            } else {
                ok = false
            }
        default: ok = false
        }
        if !ok {
            let index = unflatten(i / parts, expected.shape)
            let part = parts == 2 ? (i % 2 == 0 ? " (real part)" : " (imaginary part)") : ""
            return "first mismatch at \(index)\(part): got \(got[i]), expected \(want[i])"
        }
    }
    return nil
}

private enum FixtureValue: Equatable, CustomStringConvertible {
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
        func load<T>(_ i: Int, _: T.Type) -> T { raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self) }
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

// MARK: - Fixture files

private enum FixtureError: Error, CustomStringConvertible {
    case bad(String)
    var description: String {
        switch self {
        case .bad(let s): return "bad fixture: \(s)"
        }
    }
}

private struct FixtureCase {
    let name: String
    let op: String
    let params: Params
    let inputs: [FixtureArray]
    let expected: [FixtureArray]
}

private struct FixtureArray {
    let dtype: String
    let shape: [Int]
    let bytes: [UInt8]
    let view: [[String: Any]]?

    init(_ json: Any) throws {
        guard let d = json as? [String: Any], let dtype = d["dtype"] as? String, let shape = d["shape"] as? [Int],
            let b64 = d["data"] as? String, let data = Data(base64Encoded: b64)
        else { throw FixtureError.bad("array \(json)") }
        self.dtype = dtype
        self.shape = shape
        bytes = [UInt8](data)
        view = d["view"] as? [[String: Any]]
    }

    /// The stored array as a Tensor, with its view applied.
    func tensor() throws -> Tensor {
        guard let dt = DType(name: dtype) else { throw FixtureError.bad("dtype \(dtype)") }
        var t = bytes.withUnsafeBytes { Tensor(bytes: $0, shape: shape, dtype: dt) }
        for step in view ?? [] {
            if let perm = step["transpose"] as? [Int] {
                t = t.transposed(axes: perm)
            } else if let triples = step["slice"] as? [[Any]] {
                t = t[triples.map { .slice(start: $0[0] as? Int, end: $0[1] as? Int, step: $0[2] as? Int ?? 1) }]
            } else if let shape = step["broadcast_to"] as? [Int] {
                t = t.broadcast(to: shape)
            } else {
                throw FixtureError.bad("view step \(step)")
            }
        }
        return t
    }
}

private func fixturesDirectory() -> URL {
    // Tests/TesseraTests/<this file> → Tests/Fixtures
    URL(fileURLWithPath: #filePath).appendingPathComponent("../../Fixtures").standardizedFileURL
}

private func loadFixtureCases(_ family: String) throws -> [FixtureCase] {
    let url = fixturesDirectory().appendingPathComponent("\(family).json")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    guard let list = json as? [[String: Any]] else { throw FixtureError.bad("\(url.path) is not a list of cases") }
    return try list.map { c in
        guard let name = c["name"] as? String, let op = c["op"] as? String, let inputs = c["inputs"] as? [Any] else {
            throw FixtureError.bad("case \(c["name"] ?? "?")")
        }
        let expected: [FixtureArray]
        if let list = c["expected_list"] as? [Any] {
            expected = try list.map(FixtureArray.init)
        } else if let one = c["expected"] {
            expected = [try FixtureArray(one)]
        } else {
            throw FixtureError.bad("case \(name) has no expected value")
        }
        return FixtureCase(
            name: name, op: op, params: Params(values: c["params"] as? [String: Any] ?? [:]),
            inputs: try inputs.map(FixtureArray.init), expected: expected)
    }
}

/// A case's parameters, read by key and type.
private struct Params {
    let values: [String: Any]

    var text: String {
        values.keys.sorted().map { "\($0)=\(values[$0] is NSNull ? "nil" : "\(values[$0]!)")" }.joined(separator: " ")
    }

    private func present(_ key: String) -> Any? {
        guard let v = values[key], !(v is NSNull) else { return nil }
        return v
    }

    func string(_ key: String) -> String? { present(key) as? String }

    func int(_ key: String) throws -> Int {
        guard let v = present(key) as? Int else { throw FixtureError.bad("param \(key) is not an int") }
        return v
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let v = present(key) else { return nil }
        guard let i = v as? Int else { throw FixtureError.bad("param \(key) is not an int") }
        return i
    }

    func double(_ key: String) throws -> Double {
        guard let v = present(key) as? NSNumber else { throw FixtureError.bad("param \(key) is not a number") }
        return v.doubleValue
    }

    func bool(_ key: String) throws -> Bool {
        guard let v = present(key) as? Bool else { throw FixtureError.bad("param \(key) is not a bool") }
        return v
    }

    func ints(_ key: String) throws -> [Int] {
        guard let v = present(key) as? [Int] else { throw FixtureError.bad("param \(key) is not a list of ints") }
        return v
    }

    func optionalInts(_ key: String) throws -> [Int]? {
        guard let v = present(key) else { return nil }
        guard let list = v as? [Int] else { throw FixtureError.bad("param \(key) is not a list of ints") }
        return list
    }

    func dtype(_ key: String) throws -> DType {
        guard let name = string(key), let dt = DType(name: name) else { throw FixtureError.bad("param \(key) dtype") }
        return dt
    }

    /// A Swift scalar of the kind the case names (`scalar_kind`/`value_kind`): Int, Double or Bool.
    func scalar(_ key: String) throws -> (any TensorOperand)? {
        guard let v = present(key) as? NSNumber else { return nil }
        switch string(key == "value" ? "value_kind" : "scalar_kind") {
        case "int": return v.intValue
        case "float": return v.doubleValue
        case "bool": return v.boolValue
        case let kind: throw FixtureError.bad("param \(key) has scalar kind \(kind ?? "nil")")
        }
    }

    func indices(_ key: String) throws -> [TensorIndex] {
        guard let list = present(key) as? [Any] else { throw FixtureError.bad("param \(key) is not a list") }
        return try list.map { entry -> TensorIndex in
            if let s = entry as? String {
                switch s {
                case "newaxis": return .newAxis
                case "ellipsis": return .ellipsis
                default: throw FixtureError.bad("index \(s)")
                }
            }
            guard let d = entry as? [String: Any] else { throw FixtureError.bad("index \(entry)") }
            if let i = d["index"] as? Int { return .index(i) }
            if let t = d["slice"] as? [Any], t.count == 3 {
                return .slice(start: t[0] as? Int, end: t[1] as? Int, step: t[2] as? Int ?? 1)
            }
            throw FixtureError.bad("index \(entry)")
        }
    }
}
