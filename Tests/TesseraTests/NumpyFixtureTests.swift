// Checks every op against numpy references stored by Tools/gen_fixtures.py
// (Tests/Fixtures/<family>.json): dtype, shape and values, with the shared
// per-dtype tolerance table (Support/FixtureSupport.swift). Set
// TESSERA_FIXTURE_TRACE=1 to print each case before it runs (to find the case
// behind a crash).

import Foundation
import TesseraTestSupport
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
        let cases = try loadFixtureCases("\(family).json")
        var checked = 0
        for c in cases {
            if fixtureTrace { print("[\(family)] \(c.name)") }
            let inputs = c.inputs
            guard let run = fixtureOps[c.op] else {
                XCTFail("\(c.name): no runner for op \(c.op)", file: file, line: line)
                continue
            }
            let results = try run(c.params, inputs)
            let expected = c.expected
            if results.count != expected.count {
                XCTFail(
                    "\(c.name) [\(c.op)]: \(results.count) results, expected \(expected.count)", file: file, line: line)
                continue
            }
            for (i, (actual, want)) in zip(results, expected).enumerated() {
                if let problem = fixtureMismatch(actual, want) {
                    let which = expected.count > 1 ? " piece \(i)" : ""
                    let ins = zip(c.storedInputs, inputs).map { stored, t in
                        "\(t.dtype)\(t.shape)" + (stored.view == nil ? "" : " (view of \(stored.shape))")
                    }
                    XCTFail(
                        "\(c.name) [\(c.op)]\(which) inputs \(ins.joined(separator: ", ")) params \(c.params.text): \(problem)",
                        file: file, line: line)
                }
            }
            if try sharesInputBuffer(c), let input = inputs.first {
                for (i, r) in results.enumerated() where r.size > 0 {
                    XCTAssertTrue(
                        r.view().buffer === input.view().buffer,
                        "\(c.name) [\(c.op)]: result \(i) is a copy, expected a view of the input", file: file,
                        line: line)
                }
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0, "no cases in \(family).json", file: file, line: line)
        XCTAssertEqual(checked, cases.count, file: file, line: line)
    }
}

/// Whether the case's op must return a view of its (first) input rather than a copy.
private func sharesInputBuffer(_ c: FixtureCase) throws -> Bool {
    switch c.op {
    case "transposed", "swappedAxes", "movedAxis", "broadcast", "squeezed", "expandedDimensions", "splitParts",
        "splitIndices":
        return true
    case "index": return try c.params.optionalString("then") == nil
    case "reshaped", "flattened": return c.storedInputs[0].view == nil
    default: return false
    }
}

// MARK: - The ops, by fixture name

private typealias FixtureOp = @Sendable (FixtureParams, [Tensor]) throws -> [Tensor]

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
    "conjugate": { conjugate($0) }
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
    "logAddExp": { logAddExp($0, $1) }
]

private let fixtureOps: [String: FixtureOp] = {
    var ops: [String: FixtureOp] = [:]
    for (name, f) in unaryOps { ops[name] = { _, x in [f(x[0])] } }
    for (name, f) in binaryOps {
        ops[name] = { p, x in
            // A weak Swift scalar on one side, or two tensors.
            guard let scalar = try p.scalar("scalar") else { return [f(x[0], x[1])] }
            return [try p.optionalString("scalar_side") == "left" ? f(scalar, x[0]) : f(x[0], scalar)]
        }
    }

    // Reductions.
    let reductions: [String: @Sendable (Tensor, [Int]?, Bool) -> Tensor] = [
        "sum": { $0.sum(axes: $1, keepDims: $2) }, "prod": { $0.prod(axes: $1, keepDims: $2) },
        "max": { $0.max(axes: $1, keepDims: $2) }, "min": { $0.min(axes: $1, keepDims: $2) },
        "mean": { $0.mean(axes: $1, keepDims: $2) }, "all": { $0.all(axes: $1, keepDims: $2) },
        "any": { $0.any(axes: $1, keepDims: $2) }, "logSumExp": { $0.logSumExp(axes: $1, keepDims: $2) }
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
        switch try p.optionalString("then") {
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
        if try p.optionalString("bounds") == "arrays" { return [x[0].clip(min: x[1], max: x[2])] }
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
        [
            Tensor.linspace(
                try p.double("start"), try p.double("stop"), count: try p.int("count"), dtype: try p.dtype("dtype"))
        ]
    }
    ops["eye"] = { p, _ in
        [Tensor.eye(try p.int("n"), try p.optionalInt("m"), k: try p.int("k"), dtype: try p.dtype("dtype"))]
    }
    ops["identity"] = { p, _ in [Tensor.identity(try p.int("n"), dtype: try p.dtype("dtype"))] }
    ops["zeros"] = { p, _ in [Tensor.zeros(try p.ints("shape"), dtype: try p.dtype("dtype"))] }
    ops["ones"] = { p, _ in [Tensor.ones(try p.ints("shape"), dtype: try p.dtype("dtype"))] }
    ops["full"] = { p, _ in
        guard let value = try p.scalar("value") else { throw FixtureError.bad("full needs a value") }
        let dtype = try p.optionalDType("dtype")
        return [Tensor.full(try p.ints("shape"), value: value, dtype: dtype)]
    }
    return ops
}()
