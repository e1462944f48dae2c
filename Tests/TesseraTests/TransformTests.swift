// grad/jvp/vmap of every primitive against finite differences and loops; nested
// transforms and Hessian-vector products.

import Foundation
import XCTest

@testable import Tessera

/// A small deterministic generator for test inputs.
struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Double {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(state >> 11) / Double(1 << 53)
    }
    mutating func values(_ n: Int, in range: ClosedRange<Double>) -> [Double] {
        (0..<n).map { _ in range.lowerBound + (range.upperBound - range.lowerBound) * next() }
    }
    mutating func tensor(_ shape: [Int], in range: ClosedRange<Double> = -1...1) -> Tensor {
        Tensor(values(shape.reduce(1, *), in: range), shape: shape)
    }
}

/// One differentiable case: a function of float64 tensors, its input shapes and domain.
struct GradCase: Sendable {
    let name: String
    let shapes: [[Int]]
    var domain: ClosedRange<Double> = -1...1
    /// Finite-difference step and tolerance (larger where float32 sits in between).
    var step = 1e-6
    var tolerance = 1e-5
    let f: @Sendable ([Tensor]) -> Tensor
}

/// Every differentiable primitive, through the public ops that produce it.
let gradCases: [GradCase] = {
    var cases: [GradCase] = []
    let unaries: [(String, @Sendable (Tensor) -> Tensor, ClosedRange<Double>)] = [
        ("abs", abs, 0.1...1), ("negative", negative, -1...1), ("square", square, -1...1),
        ("sqrt", sqrt, 0.2...2), ("rsqrt", rsqrt, 0.2...2), ("reciprocal", reciprocal, 0.3...2),
        ("exp", exp, -1...1), ("expm1", expm1, -1...1), ("log", log, 0.2...2), ("log2", log2, 0.2...2),
        ("log10", log10, 0.2...2), ("log1p", log1p, -0.5...1), ("sin", sin, -2...2), ("cos", cos, -2...2),
        ("tan", tan, -1...1), ("arcsin", arcsin, -0.8...0.8), ("arccos", arccos, -0.8...0.8),
        ("arctan", arctan, -2...2), ("sinh", sinh, -1...1), ("cosh", cosh, -1...1), ("tanh", tanh, -2...2),
        ("arcsinh", arcsinh, -2...2), ("arccosh", arccosh, 1.2...3), ("arctanh", arctanh, -0.8...0.8),
        ("sigmoid", sigmoid, -3...3), ("erf", erf, -1.5...1.5), ("erfinv", erfinv, -0.8...0.8)
    ]
    for (name, op, domain) in unaries {
        cases.append(GradCase(name: name, shapes: [[2, 3]], domain: domain) { op($0[0]) })
    }
    let binaries: [(String, @Sendable (Tensor, Tensor) -> Tensor)] = [
        ("add", { $0 + $1 }), ("subtract", { $0 - $1 }), ("multiply", { $0 * $1 }), ("divide", { $0 / $1 }),
        ("power", { power($0, $1) }), ("maximum", { maximum($0, $1) }), ("minimum", { minimum($0, $1) }),
        ("arctan2", { arctan2($0, $1) }), ("logAddExp", { logAddExp($0, $1) }), ("remainder", { $0 % $1 })
    ]
    for (name, op) in binaries {
        for shapes in [[[2, 3], [2, 3]], [[2, 3], [3]], [[2, 1], [1, 3]]] {
            cases.append(GradCase(name: "\(name)\(shapes)", shapes: shapes, domain: 0.5...2) { op($0[0], $0[1]) })
        }
    }
    cases += [
        GradCase(name: "which", shapes: [[2, 3], [2, 3], [3]]) { which($0[0] .> 0, $0[1], $0[2]) },
        GradCase(name: "asType", shapes: [[3]], step: 1e-2, tolerance: 1e-4) {
            ($0[0].asType(.float32) * 3).asType(.float64)
        },
        GradCase(name: "sum", shapes: [[2, 3, 2]]) { $0[0].sum(axes: [0, 2]) },
        GradCase(name: "prod", shapes: [[2, 3]], domain: 0.5...1.5) { $0[0].prod(axis: 1) },
        GradCase(name: "max", shapes: [[3, 4]]) { $0[0].max(axis: 0) },
        GradCase(name: "min", shapes: [[3, 4]]) { $0[0].min(axes: nil) },
        GradCase(name: "mean", shapes: [[3, 4]]) { $0[0].mean(axis: -1) },
        GradCase(name: "variance", shapes: [[3, 4]]) { $0[0].variance(axis: 1, ddof: 1) },
        GradCase(name: "logSumExp", shapes: [[3, 4]]) { $0[0].logSumExp(axis: 1) },
        GradCase(name: "reshape", shapes: [[2, 6]]) {
            $0[0].reshaped([3, 4]) * Tensor.arange(0.0, 12).reshaped([3, 4])
        },
        GradCase(name: "transpose", shapes: [[2, 3, 4]]) { $0[0].transposed(axes: [2, 0, 1]) },
        GradCase(name: "broadcast", shapes: [[3, 1]]) { $0[0].broadcast(to: [2, 3, 4]) },
        GradCase(name: "slice", shapes: [[4, 5]]) { $0[0][1..., .stride(by: -2)] },
        GradCase(name: "copy", shapes: [[2, 3]]) { $0[0].T.contiguous() },
        GradCase(name: "concatenate", shapes: [[2, 3], [1, 3]]) { concatenated([$0[0], $0[1]], axis: 0) },
        GradCase(name: "stack", shapes: [[2, 3], [2, 3]]) { stacked([$0[0], $0[1]], axis: 2) },
        GradCase(name: "matmul", shapes: [[2, 3], [3, 4]]) { matmul($0[0], $0[1]) },
        GradCase(name: "batchedMatmul", shapes: [[2, 2, 3], [3, 2]]) { matmul($0[0], $0[1]) },
        GradCase(name: "matvec", shapes: [[3], [3, 2]]) { matmul($0[0], $0[1]) },
        GradCase(name: "sliceUpdate", shapes: [[4, 3], [2, 3]]) {
            sliceUpdate($0[0], $0[1], start: [1, 0], stride: [2, 1])
        },
        GradCase(name: "clip", shapes: [[2, 3]]) { $0[0].clip(min: -0.5, max: 0.5) },
        // Fused ops (differentiated through their fallback graphs), quantized and linear algebra.
        GradCase(name: "softmax", shapes: [[2, 5]]) { softmax($0[0]) },
        GradCase(name: "logSoftmax", shapes: [[2, 5]]) { logSoftmax($0[0]) },
        GradCase(name: "rmsNorm", shapes: [[2, 6], [6]]) { Fast.rmsNorm($0[0], weight: $0[1], eps: 1e-5) },
        GradCase(name: "layerNorm", shapes: [[2, 6], [6], [6]]) {
            Fast.layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5)
        },
        GradCase(name: "rope", shapes: [[2, 3, 4]]) {
            Fast.rope($0[0], dimensions: 4, traditional: false, base: 10000, offset: 2)
        },
        GradCase(name: "ropeTraditional", shapes: [[2, 3, 4]]) {
            Fast.rope($0[0], dimensions: 4, traditional: true, base: 100)
        },
        GradCase(name: "sdpaCausalGQA", shapes: [[1, 2, 3, 4], [1, 1, 3, 4], [1, 1, 3, 4]]) {
            Fast.scaledDotProductAttention(queries: $0[0], keys: $0[1], values: $0[2], scale: 0.5, mask: .causal)
        },
        GradCase(name: "quantizedMatmul", shapes: [[3, 64]]) { x in
            let (wq, s, b) = quantize(Tensor.linspace(-1, 1, count: 4 * 64).reshaped([4, 64]), groupSize: 32, bits: 4)
            return quantizedMatmul(x[0], wq, scales: s, biases: b, groupSize: 32, bits: 4)  // float64 out
        },
        GradCase(name: "quantizedMatmulBatchedX", shapes: [[2, 3, 64]]) { x in
            let (wq, s, b) = quantize(Tensor.linspace(-1, 1, count: 4 * 64).reshaped([4, 64]), groupSize: 32, bits: 4)
            return quantizedMatmul(x[0], wq, scales: s, biases: b, groupSize: 32, bits: 4)  // shared 2-D weights
        },
        // Scales and biases are at most float32: linear, so a large step is exact up to float32 rounding.
        GradCase(name: "dequantize", shapes: [[4, 2], [4, 2]], step: 1e-2, tolerance: 1e-4) { sb in
            let (wq, _, _) = quantize(Tensor.linspace(-1, 1, count: 4 * 64).reshaped([4, 64]), groupSize: 32, bits: 4)
            return dequantize(
                wq, scales: sb[0].asType(.float32), biases: sb[1].asType(.float32), groupSize: 32, bits: 4
            ).asType(.float64)
        },
        GradCase(name: "inverse", shapes: [[3, 3]]) { Linalg.inv($0[0] + Tensor.eye(3, dtype: .float64) * 3) },
        GradCase(name: "solve", shapes: [[3, 3], [3, 2]]) {
            Linalg.solve($0[0] + Tensor.eye(3, dtype: .float64) * 3, $0[1])
        },
        GradCase(name: "gather", shapes: [[3, 4]]) { $0[0][0..., Tensor([2, 0, 2])] },
        GradCase(name: "takeAlongAxis", shapes: [[3, 4]]) {
            $0[0].takeAlongAxis(Tensor([3, 0, 1, 1, 2, 0], shape: [3, 2]), axis: 1)
        },
        GradCase(name: "scatterAdd", shapes: [[3, 2], [3, 2]]) { $0[0].at[Tensor([1, 1, 0])].add($0[1]) },
        GradCase(name: "scatterSet", shapes: [[3, 2], [2, 2]]) {
            var y = $0[0]
            y[Tensor([2, 0])] = $0[1]
            return y
        },
        GradCase(name: "sort", shapes: [[3, 4]]) { $0[0].sorted(axis: 1) },
        GradCase(name: "partition", shapes: [[4, 3]]) { $0[0].partitioned(kth: 1, axis: 0) },
        GradCase(name: "cumsum", shapes: [[3, 4]]) { $0[0].cumsum(axis: 1, reverse: true, inclusive: false) },
        GradCase(name: "cumprod", shapes: [[3, 4]], domain: 0.5...1.5) { $0[0].cumprod(axis: 0) },
        GradCase(name: "cumprodExclusive", shapes: [[3, 4]], domain: 0.5...1.5) {
            $0[0].cumprod(axis: 1, reverse: true, inclusive: false)
        },
        GradCase(name: "conv2d", shapes: [[1, 4, 3, 2], [2, 2, 2, 1]]) {
            conv2d($0[0], $0[1], stride: [2, 1], padding: 1, groups: 2)
        },
        GradCase(name: "convTransposed1d", shapes: [[1, 3, 2], [2, 2, 2]]) {
            convTransposed1d($0[0], $0[1], stride: 2, padding: 1, outputPadding: 1)
        },
        GradCase(name: "einsum", shapes: [[2, 3], [3, 2]]) { einsum("ij,jk->ik", $0[0], $0[1]) },
        GradCase(name: "padEdge", shapes: [[2, 3]]) { $0[0].padded([(1, 2)], mode: .edge) }
    ]
    return cases
}()

/// Primitives with no gradient (integer/bool results, piecewise constants):
/// still batched by vmap.
let vmapOnlyCases: [GradCase] = [
    GradCase(name: "sign", shapes: [[2, 3]]) { sign($0[0]) },
    GradCase(name: "floor", shapes: [[2, 3]]) { floor($0[0] * 3) },
    GradCase(name: "round", shapes: [[2, 3]]) { round($0[0] * 3) },
    GradCase(name: "isNaN", shapes: [[2, 3]]) { isNaN(log($0[0])).asType(.float64) },
    GradCase(name: "less", shapes: [[2, 3], [3]]) { ($0[0] .< $0[1]).asType(.float64) },
    GradCase(name: "floorDivide", shapes: [[2, 3], [2, 3]], domain: 0.5...3) { floorDivide($0[0], $0[1]) },
    GradCase(name: "bitwiseXor", shapes: [[2, 3], [2, 3]], domain: 0...100) {
        bitwiseXor($0[0].asType(.int32), $0[1].asType(.int32)).asType(.float64)
    },
    GradCase(name: "argMax", shapes: [[3, 4]]) { $0[0].argMax(axis: 1).asType(.float64) },
    GradCase(name: "argMin", shapes: [[3, 4]]) { $0[0].argMin(axis: 0, keepDims: true).asType(.float64) },
    GradCase(name: "any", shapes: [[3, 4]]) { ($0[0] .> 0.5).any(axes: [1]).asType(.float64) },
    GradCase(name: "all", shapes: [[3, 4]]) { ($0[0] .> -0.5).all(axes: [0]).asType(.float64) },
    GradCase(name: "stopGradient", shapes: [[2, 3]]) { stopGradient($0[0]) * 2 },
    GradCase(name: "arangePlus", shapes: [[4]]) { $0[0] + Tensor.arange(0.0, 4, dtype: .float64) },
    GradCase(name: "argSort", shapes: [[3, 4]]) { $0[0].argSort(axis: 1).asType(.float64) },
    GradCase(name: "cummax", shapes: [[3, 4]]) { $0[0].cummax(axis: 1) },
    GradCase(name: "scatterMax", shapes: [[3, 2], [2, 2]]) { $0[0].at[Tensor([2, 2])].maximum($0[1]) }
]

final class TransformTests: XCTestCase {
    /// A random weighting makes every output element matter to the scalar loss.
    private func scalarLoss(_ c: GradCase, weights: Tensor) -> ([Tensor]) -> Tensor {
        { (c.f($0) * weights).sum() }
    }

    func testEveryDifferentiablePrimitiveAgainstFiniteDifferences() {
        var rng = TestRNG(1)
        for c in gradCases {
            let inputs = c.shapes.map { rng.tensor($0, in: c.domain) }
            let outShape = c.f(inputs).shape
            let weights = rng.tensor(outShape)
            let loss = scalarLoss(c, weights: weights)
            let grads = grad(loss, argumentNumbers: Array(inputs.indices))(inputs)
            let h = c.step
            for (k, input) in inputs.enumerated() {
                let x = input.toArray(Double.self)
                let analytic = grads[k].toArray(Double.self)
                XCTAssertEqual(grads[k].shape, input.shape, c.name)
                for i in x.indices {
                    var plus = x, minus = x
                    plus[i] += h
                    minus[i] -= h
                    var argsPlus = inputs, argsMinus = inputs
                    argsPlus[k] = Tensor(plus, shape: input.shape)
                    argsMinus[k] = Tensor(minus, shape: input.shape)
                    let numeric = (loss(argsPlus).item(Double.self) - loss(argsMinus).item(Double.self)) / (2 * h)
                    XCTAssertEqual(
                        analytic[i], numeric, accuracy: c.tolerance * (1 + Swift.abs(numeric)),
                        "\(c.name): d/d input\(k)[\(i)]")
                }
            }
        }
    }

    func testJVPAgreesWithFiniteDifferences() {
        var rng = TestRNG(2)
        for c in gradCases {
            let inputs = c.shapes.map { rng.tensor($0, in: c.domain) }
            let tangents = c.shapes.map { rng.tensor($0) }
            let (outputs, jvps) = jvp({ [c.f($0)] }, primals: inputs, tangents: tangents)
            let h = c.step
            let plus = c.f(zip(inputs, tangents).map { $0 + $1 * h })
            let minus = c.f(zip(inputs, tangents).map { $0 - $1 * h })
            let numeric = ((plus - minus) / (2 * h)).toArray(Double.self)
            XCTAssertEqual(jvps[0].shape, outputs[0].shape, c.name)
            for (i, (a, n)) in zip(jvps[0].toArray(Double.self), numeric).enumerated() {
                XCTAssertEqual(a, n, accuracy: c.tolerance * (1 + Swift.abs(n)), "\(c.name) jvp[\(i)]")
            }
        }
    }

    func testVmapOfEveryPrimitiveMatchesALoop() {
        var rng = TestRNG(3)
        let batch = 3
        for c in gradCases + vmapOnlyCases {
            // Map argument 0 over a batch axis placed at position 1 (or 0 for 1-D), others unmapped.
            let inAxis = c.shapes[0].count >= 1 ? 1 : 0
            var batchedShape = c.shapes[0]
            batchedShape.insert(batch, at: inAxis)
            let mapped = rng.tensor(batchedShape, in: c.domain)
            let rest = c.shapes.dropFirst().map { rng.tensor($0, in: c.domain) }
            let outAxis = c.f([mapped[.slice(), 0]] + rest).ndim >= 1 ? 1 : 0
            let out = vmap({ [c.f($0)] }, inAxes: [inAxis] + rest.map { _ in nil }, outAxes: [outAxis])(
                [mapped] + rest)[0]
            for b in 0..<batch {
                var index = [TensorIndex](repeating: .slice(), count: mapped.ndim)
                index[inAxis] = .index(b)
                let expected = c.f([mapped[index]] + Array(rest))
                var outIndex = [TensorIndex](repeating: .slice(), count: out.ndim)
                outIndex[outAxis] = .index(b)
                let got = out[outIndex]
                XCTAssertEqual(got.shape, expected.shape, c.name)
                for (g, e) in zip(got.toArray(Double.self), expected.toArray(Double.self)) {
                    XCTAssertEqual(g, e, accuracy: 1e-12 + 1e-12 * Swift.abs(e), "vmap \(c.name) batch \(b)")
                }
            }
        }
    }

    func testNestedVmapAndAllInputsMapped() {
        let x = Tensor.arange(0.0, 24, dtype: .float64).reshaped([2, 3, 4])
        let y = Tensor.arange(0.0, 4, dtype: .float64)
        // Inner over axis 0 of a [3, 4] slice, outer over axis 0 of x: row sums of x * y.
        let inner = vmap({ [($0[0] * $0[1]).sum()] }, inAxes: [0, nil])
        let outer = vmap({ inner([$0[0], $0[1]]) }, inAxes: [0, nil])
        let result = outer([x, y])[0]
        XCTAssertEqual(result.shape, [2, 3])
        XCTAssertEqual(result.toArray(Double.self), (x * y).sum(axis: 2).toArray(Double.self))
        // Both arguments mapped, on different axes.
        let m = vmap({ [matmul($0[0], $0[1])] }, inAxes: [0, 2], outAxes: [1])
        let a = Tensor.arange(0.0, 12, dtype: .float64).reshaped([2, 2, 3])
        let b = Tensor.arange(0.0, 12, dtype: .float64).reshaped([3, 2, 2])
        let r = m([a, b])[0]
        XCTAssertEqual(r.shape, [2, 2, 2])
        for i in 0..<2 {
            XCTAssertEqual(r[0..., i].toArray(Double.self), matmul(a[i], b[0..., 0..., i]).toArray(Double.self))
        }
    }

    func testGradOfGradAndVmapOfGrad() {
        let x = Tensor([0.3, -1.2, 2.0] as [Double])
        let d2 = grad(grad { sin($0).sum() })
        // d/dx of cos(x) summed per element is -sin(x).
        let second = grad { grad { sin($0).sum() }($0).sum() }(x)
        XCTAssertEqual(second.toArray(Double.self), (-sin(x)).toArray(Double.self))
        _ = d2
        let perRow = vmap(grad { (square($0) * 3).sum() })
        let rows = Tensor([1.0, 2, 3, 4, 5, 6], shape: [2, 3])
        XCTAssertEqual(perRow(rows).toArray(Double.self), (rows * 6).toArray(Double.self))
        // grad of vmap.
        let g = grad { vmap({ square($0).sum() })($0).sum() }(rows)
        XCTAssertEqual(g.toArray(Double.self), (rows * 2).toArray(Double.self))
    }

    func testHessianVectorProductOfAQuadratic() {
        var rng = TestRNG(4)
        let n = 5
        let a = rng.tensor([n, n])
        let x = rng.tensor([n]), v = rng.tensor([n])
        let f = { (x: Tensor) in (matmul(matmul(x, a), x) * 0.5) }
        let hvp = jvp({ [grad(f)($0[0])] }, primals: [x], tangents: [v]).jvps[0]
        let expected = matmul((a + a.T) * 0.5, v)
        for (h, e) in zip(hvp.toArray(Double.self), expected.toArray(Double.self)) {
            XCTAssertEqual(h, e, accuracy: 1e-12)
        }
    }

    func testHessianVectorProductOfSoftmaxCrossEntropy() {
        var rng = TestRNG(5)
        let z = rng.tensor([6]), v = rng.tensor([6])
        let y = Tensor([0, 0, 1, 0, 0, 0] as [Double])
        let loss = { (z: Tensor) in -(y * (z - z.logSumExp(axis: 0, keepDims: true))).sum() }
        let hvp = jvp({ [grad(loss)($0[0])] }, primals: [z], tangents: [v]).jvps[0]
        // H = diag(p) - p pᵀ for p = softmax(z).
        let p = exp(z - z.logSumExp(axis: 0, keepDims: true))
        let expected = p * v - p * (p * v).sum()
        for (h, e) in zip(hvp.toArray(Double.self), expected.toArray(Double.self)) {
            XCTAssertEqual(h, e, accuracy: 1e-12)
        }
    }

    func testValueAndGradWithAuxAndSeveralArguments() {
        let x = Tensor([1.0, 2, 3]), w = Tensor([0.5, -1, 2.0])
        let vg = valueAndGrad(
            { args -> [Tensor] in
                let y = args[0] * args[1]
                return [y.sum(), y]  // loss, then an auxiliary output
            }, argumentNumbers: [0, 1])
        let (values, grads) = vg([x, w])
        XCTAssertEqual(values[0].item(Double.self), 0.5 - 2 + 6)
        XCTAssertEqual(values[1].toArray(Double.self), [0.5, -2, 6])
        XCTAssertEqual(grads[0].toArray(Double.self), w.toArray(Double.self))
        XCTAssertEqual(grads[1].toArray(Double.self), x.toArray(Double.self))
        let (a, b) = grad { ($0 * $1).sum() }(x, w)
        XCTAssertEqual(a.toArray(Double.self), w.toArray(Double.self))
        XCTAssertEqual(b.toArray(Double.self), x.toArray(Double.self))
        let (value, g) = valueAndGrad { exp($0).sum() }(x)
        XCTAssertEqual(value.item(Double.self), exp(x).sum().item(Double.self))
        XCTAssertEqual(g.toArray(Double.self), exp(x).toArray(Double.self))
    }

    func testStopGradientAndNonDifferentiableOutputs() {
        let x = Tensor([1.0, -2, 3])
        let g = grad { ($0 * stopGradient($0)).sum() }(x)
        XCTAssertEqual(g.toArray(Double.self), x.toArray(Double.self), "only the first factor is differentiated")
        let h = grad { (floor($0) + $0.argMax().asType(.float64) + ($0 .> 0).asType(.float64)).sum() }(x)
        XCTAssertEqual(h.toArray(Double.self), [0, 0, 0])
    }

    func testCustomFunctionRules() {
        // Straight-through: round forward, identity backward.
        let ste = customFunction({ [round($0[0])] }, vjp: { _, cotangents, _ in cotangents })
        let x = Tensor([0.2, 1.7, -0.6])
        XCTAssertEqual(ste([x])[0].toArray(Double.self), [0, 2, -1])
        XCTAssertEqual(grad { ste([$0])[0].sum() }(x).toArray(Double.self), [1, 1, 1])
        // Defaults transform the function itself.
        let plain = customFunction({ [sin($0[0])] })
        XCTAssertEqual(grad { plain([$0])[0].sum() }(x).toArray(Double.self), cos(x).toArray(Double.self))
        XCTAssertEqual(
            jvp({ plain($0) }, primals: [x], tangents: [Tensor.onesLike(x)]).jvps[0].toArray(Double.self),
            cos(x).toArray(Double.self))
        XCTAssertEqual(vmap({ plain([$0])[0] })(x).toArray(Double.self), sin(x).toArray(Double.self))
        // A custom jvp and vmap are used when given.
        let twice = customFunction(
            { [$0[0] * 2] }, jvp: { _, t, _ in [t[0] * 100] },
            vmap: { inputs, axes in ([inputs[0] * 3], [axes[0] ?? 0]) })
        XCTAssertEqual(
            jvp({ twice($0) }, primals: [x], tangents: [Tensor.onesLike(x)]).jvps[0].toArray(Double.self),
            [100, 100, 100])
        XCTAssertEqual(vmap({ twice([$0])[0] })(x).toArray(Double.self), (x * 3).toArray(Double.self))
    }

    func testCheckpointGivesIdenticalGradientsWithLessMemory() {
        let n = 1 << 16  // 512 KiB of float64 per intermediate
        let x = Tensor.linspace(-1, 1, count: n, dtype: .float64)
        eval(x)
        // The backward pass of a product needs both factors: without checkpoint
        // every block's factors stay in memory until the backward pass reaches it.
        func block(_ t: Tensor) -> Tensor { sin(t) * cos(t) + t * 0.5 }
        let depth = 8
        let plain = { (t: Tensor) -> Tensor in
            var y = t
            for _ in 0..<depth { y = block(y) }
            return y.sum()
        }
        let checkpointedBlock = checkpoint(block)
        let saving = { (t: Tensor) -> Tensor in
            var y = t
            for _ in 0..<depth { y = checkpointedBlock(y) }
            return y.sum()
        }
        Memory.clearCache()
        Memory.resetPeak()
        let base = Memory.activeBytes
        let g1 = grad(plain)(x)
        eval(g1)
        let plainPeak = Memory.peakBytes - base
        Memory.resetPeak()
        let base2 = Memory.activeBytes
        let g2 = grad(saving)(x)
        eval(g2)
        let checkpointPeak = Memory.peakBytes - base2
        print("checkpoint: peak \(checkpointPeak) bytes vs \(plainPeak) without")
        XCTAssertEqual(g1.toArray(Double.self), g2.toArray(Double.self))
        XCTAssertLessThan(checkpointPeak, plainPeak, "checkpoint peak \(checkpointPeak) vs plain \(plainPeak)")
    }
}
