// The numerics edge cases of issue 18 against torch (values in
// Tests/Fixtures/numerics_edges.json, written by Tools/gen_numerics_edge_fixtures.py,
// which also checks them against MLX): prod/cumprod derivatives where an
// input is 0, logAddExp of infinities, sign(NaN), softmax rows holding +inf.
// Tolerance: the shared float32 row (rtol 1e-5, atol 1e-6); infinities exact, NaN matches NaN.

import TesseraTestSupport
import XCTest

@testable import Tessera

final class NumericsEdgeTests: XCTestCase {
    private func cases(_ op: String) throws -> [FixtureCase] {
        let all = try loadFixtureCases("numerics_edges.json").filter { $0.op == op }
        XCTAssertFalse(all.isEmpty, "no \(op) cases")
        return all
    }

    func testProdDerivativesWhereInputsAreZero() throws {
        for c in try cases("prod_grad") {
            let axes = try c.params.ints("axes"), cotangent = c.inputs[1]
            let dx = grad { x in (x.prod(axes: axes, keepDims: true) * cotangent).sum() }(c.inputs[0])
            assertMatches(dx, c.expected[0], c.name)
        }
        for c in try cases("prod_jvp") {
            let axes = try c.params.ints("axes")
            let out = jvp({ [$0[0].prod(axes: axes, keepDims: true)] }, primals: [c.inputs[0]], tangents: [c.inputs[1]])
            assertMatches(out.jvps[0], c.expected[0], c.name)
        }
    }

    func testCumprodDerivativesWhereInputsAreZero() throws {
        func scan(_ c: FixtureCase) throws -> (Tensor) -> Tensor {
            let axis = try c.params.int("axis"), reverse = try c.params.bool("reverse")
            let inclusive = try c.params.bool("inclusive")
            return { $0.cumprod(axis: axis, reverse: reverse, inclusive: inclusive) }
        }
        for c in try cases("cumprod_grad") {
            let f = try scan(c), cotangent = c.inputs[1]
            assertMatches(grad { (f($0) * cotangent).sum() }(c.inputs[0]), c.expected[0], c.name)
        }
        for c in try cases("cumprod_jvp") {
            let f = try scan(c)
            let out = jvp({ [f($0[0])] }, primals: [c.inputs[0]], tangents: [c.inputs[1]])
            assertMatches(out.jvps[0], c.expected[0], c.name)
        }
    }

    func testLogAddExpOfInfinitiesAndSignOfNaN() throws {
        for c in try cases("logaddexp") {
            let (a, b) = (c.inputs[0], c.inputs[1])
            assertMatches(logAddExp(a, b), c.expected[0], c.name)
            // The fused kernels carry their own copy of the function.
            assertMatches(
                compile { xs in [logAddExp(xs[0], xs[1]) * 1.0] }([a, b])[0], c.expected[0], "\(c.name) compiled")
            let wide = logAddExp(a.asType(.float64), b.asType(.float64))
            assertMatches(wide.asType(.float32), c.expected[0], "\(c.name) f64")
        }
        for c in try cases("sign") {
            let x = c.inputs[0]
            assertMatches(sign(x), c.expected[0], c.name)
            assertMatches(compile { sign($0) * 1.0 }(x), c.expected[0], "\(c.name) compiled")
            assertMatches(sign(x.asType(.float16)), c.expected[0].asType(.float16), "\(c.name) f16")
        }
    }

    func testSoftmaxOfRowsHoldingInfinity() throws {
        for c in try cases("log_softmax") {
            assertMatches(logSoftmax(c.inputs[0]), c.expected[0], c.name)
            assertMatches(
                try XCTUnwrap(fastFallback(.logSoftmax, inputs: c.inputs)), c.expected[0], "\(c.name) fallback")
        }
        for c in try cases("softmax") {
            assertMatches(softmax(c.inputs[0]), c.expected[0], c.name)
        }
    }
}
