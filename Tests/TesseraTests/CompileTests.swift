// compile(): fusion into one kernel, simplification, fusion boundaries, random graphs
// and random bits, all against eager evaluation.

import Foundation
import TesseraTestSupport
import XCTest

@testable import Tessera

/// Tolerances of compiled against eager results: `Tolerance.table`. Fused kernels round half
/// types after every op and use the same libm, so they mostly agree exactly; the table leaves
/// room for compiler differences in the last bits. Override: complex64 compares exactly here
/// (as before the shared table, which would give it float32's bounds).
private func tolerance(_ dtype: DType) -> Tolerance {
    dtype == .complex64 ? .exact : Tolerance.table(dtype) ?? .exact
}

private func assertSame(
    _ a: Tensor, _ b: Tensor, _ message: String = "", file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(a.shape, b.shape, "shape \(message)", file: file, line: line)
    XCTAssertEqual(a.dtype, b.dtype, "dtype \(message)", file: file, line: line)
    guard a.shape == b.shape, a.dtype == b.dtype else { return }
    let x = a.toArray(Double.self), y = b.toArray(Double.self)
    let t = tolerance(a.dtype)
    for i in x.indices {
        if x[i].isNaN && y[i].isNaN { continue }
        if x[i] == y[i] { continue }
        if Swift.abs(x[i] - y[i]) <= t.atol + t.rtol * Swift.abs(y[i]) { continue }
        XCTFail("\(message) element \(i): compiled \(x[i]) vs eager \(y[i]) (\(a.dtype))", file: file, line: line)
        return
    }
}

private func isFused(_ t: Tensor) -> Bool { fusedKernel(of: t) != nil }

/// The kernel that computes `t`: its node, or the kernel whose stacked
/// outputs `t` is a slice of (multi-output kernels).
private func fusedKernel(of t: Tensor) -> FusedKernel? {
    if case .compiled(let kernel) = t.primitive { return kernel }
    // (Evaluated nodes have let go of their inputs: ask before evaluating.)
    if case .reshape = t.primitive, let slice = t.inputs.first, case .slice = slice.primitive,
        let node = slice.inputs.first, case .compiled(let kernel) = node.primitive, kernel.outputCount > 1
    {
        return kernel
    }
    return nil
}

/// The traced program of `f` at `inputs`, simplified (and fused when asked).
private func traceProgram(_ inputs: [Tensor], fuse: Bool = false, _ f: ([Tensor]) -> [Tensor]) -> Program {
    let placeholders = tracedPrimals(inputs)
    let outputs = Tracing.with(true) { f(placeholders) }
    let program = Program(placeholders: placeholders, outputs: outputs).simplified()
    return fuse ? program.fused() : program
}

final class CompileTests: XCTestCase {
    override func setUp() {
        Compile.isEnabled = true
        Compile.compilerPath = "cc"
    }

    func testChainFusesIntoOneKernelAndMatchesEager() {
        var rng = TestRNG(1)
        let x = rng.tensor([4, 5]).asType(.float32), y = rng.tensor([5]).asType(.float32)
        let f = { (a: [Tensor]) in [exp(a[0]) * 2 + sin(a[1]) - a[0] / 3] }
        let out = compile(f)([x, y])[0]
        XCTAssertTrue(isFused(out))
        assertSame(out, f([x, y])[0])
        // One kernel reads x and sin(y) (computed on y's shape, then broadcast);
        // the scalars are literals in the code.
        guard case .compiled(let kernel) = out.primitive else { return }
        XCTAssertEqual(kernel.program.inputCount, 2)
        XCTAssertEqual(Set(kernel.inputModes), [.full, .broadcast])
        XCTAssertEqual(kernel.opCount, 5)
    }

    func testUnaryForm() {
        let gelu = compile { (x: Tensor) in 0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x))) }
        let x = Tensor.linspace(-4, 4, count: 101)
        let eager = 0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)))
        assertSame(gelu(x), eager)
    }

    /// tanh and sigmoid have vectorisable float forms in the kernels (within
    /// 2 ulp of libm): checked over a wide range and at the special values.
    func testFastTanhAndSigmoidStayWithinTolerance() {
        let special: [Float] = [0, -0.0, 1e-30, -1e-8, .infinity, -.infinity, .nan, 100, -100, 0.625, 87, -87, -90]
        let x = concatenated([Tensor.linspace(-12, 12, count: 100_001), Tensor(special)])
        let f = { (a: [Tensor]) in [tanh(a[0]) * 1, sigmoid(a[0]) * 1] }
        let (c, e) = (compile(f)([x]), f([x]))
        XCTAssertTrue(isFused(c[0]) && isFused(c[1]))
        assertSame(c[0], e[0], "tanh")
        assertSame(c[1], e[1], "sigmoid")
        let signs = c[0].toArray(Float.self).suffix(special.count).map { $0.sign }
        XCTAssertEqual(signs[1], .minus, "tanh(-0) is -0")
    }

    // MARK: Simplification

    func testSimplifyMergesConstantsRemovesNoOpsAndSharesSubexpressions() {
        let x = Tensor([1, 2, 3] as [Float])
        let program = traceProgram([x]) { a in
            let e1 = exp(a[0]) * 2, e2 = exp(a[0]) * 2  // two exps, two literal 2s
            return [e1 + e2 + a[0].reshaped([3]).asType(.float32)]
        }
        XCTAssertEqual(program.constants.count, 1, "the two literals merge")
        let names = program.instructions.map(\.primitive.name)
        XCTAssertEqual(names.filter { $0 == "exp" }.count, 1, "\(names)")
        XCTAssertEqual(names.filter { $0 == "multiply" }.count, 1, "\(names)")
        XCTAssertFalse(names.contains("identity"), "\(names)")
        XCTAssertEqual(
            program.replay([x], shapeless: false)[0].toArray(Float.self), [1, 2, 3].map { 4 * Foundation.exp($0) + $0 })
    }

    func testFusionStopsAtValuesUsedOutsideAndAtReductions() {
        var rng = TestRNG(2)
        let x = rng.tensor([3, 4]).asType(.float32)
        let f = { (a: [Tensor]) -> [Tensor] in
            let centered = a[0] - a[0].mean(axis: -1, keepDims: true)
            let normalized = centered * rsqrt((centered * centered).mean(axis: -1, keepDims: true) + 1e-5)
            return [normalized * 2 + 1, centered]
        }
        let program = traceProgram([x], fuse: true, f)
        let kinds = program.instructions.map(\.primitive.name)
        XCTAssertTrue(kinds.contains("compiled"), "\(kinds)")
        XCTAssertEqual(kinds.filter { $0 == "sum" }.count, 2, "\(kinds)")
        let outs = compile(f)([x])
        let eager = f([x])
        assertSame(outs[0], eager[0])
        assertSame(outs[1], eager[1])
    }

    // MARK: Property test

    /// Random element-wise DAGs over broadcast inputs of several dtypes give
    /// the same results compiled and eager.
    func testRandomElementwiseGraphsMatchEager() {
        var rng = TestRNG(42)
        let dtypes: [DType] = [.float32, .float16, .bfloat16, .float64]
        let shapesPool: [[[Int]]] = [
            [[17], [17], [1]], [[3, 5], [5], [3, 1]], [[2, 3, 4], [3, 1], [2, 1, 4]], [[64, 33], [64, 33], [33]]
        ]
        var fusedOutputs = 0, multiOutput = 0
        for trial in 0..<24 {
            let shapes = shapesPool[trial % shapesPool.count]
            let dtype = dtypes[Int(rng.next() * Double(dtypes.count))]
            let inputs = shapes.map { rng.tensor($0, in: -2...2).asType(dtype) }
            eval(inputs)
            let ops = (0..<(4 + Int(rng.next() * 10))).map { _ in rng.next() }
            let picks = (0..<40).map { _ in rng.next() }
            let f = { (a: [Tensor]) -> [Tensor] in randomGraph(a, ops: ops, picks: picks) }
            let compiled = compile(f)(inputs)
            let eager = f(inputs)
            fusedOutputs += compiled.filter(isFused).count
            multiOutput += compiled.compactMap(fusedKernel).filter { $0.outputCount > 1 }.count
            for (c, e) in zip(compiled, eager) { assertSame(c, e, "trial \(trial) \(dtype)") }
        }
        XCTAssertGreaterThan(fusedOutputs, 24, "most random graphs fuse")
        XCTAssertGreaterThan(multiOutput, 4, "shared intermediates are written by the kernel that computes them")
    }

    // MARK: Random

    func testRandomBitsWithAKeyInputTraceAndReplayAsEager() {
        // The key is an input: each call hashes its own key, as eager does.
        let f = { (a: [Tensor]) -> [Tensor] in
            let (k1, k2) = Random.split(a[0])
            return [
                Random.bits([3, 5], key: k1), Random.bits([7], width: 2, key: k2),
                Random.bits([9], width: 1, key: a[0]),
                Random.normal([4, 3], key: k2) * 2 + 1, Random.uniform(low: -1, high: 1, [6], key: k1)
            ]
        }
        let cf = compile(f)
        let traces = Compile.traceCount
        for seed in [UInt64(0), 7, 1 << 40] {
            let key = Random.key(seed)
            for (c, e) in zip(cf([key]), f([key])) {
                XCTAssertEqual(c.dtype, e.dtype)
                XCTAssertEqual(c.toArray(Double.self), e.toArray(Double.self), "seed \(seed)")
            }
        }
        XCTAssertEqual(Compile.traceCount - traces, 1, "one trace replayed for every key")
    }

    // MARK: Multi-output kernels

    func testAdamUpdateIsOneKernelWithThreeOutputs() {
        var rng = TestRNG(21)
        let p = rng.tensor([6, 7]), m = rng.tensor([6, 7]), v = abs(rng.tensor([6, 7])), g = rng.tensor([6, 7])
        let f = { (a: [Tensor]) -> [Tensor] in
            let m1 = 0.9 * a[1] + 0.1 * a[3]
            let v1 = 0.999 * a[2] + 0.001 * square(a[3])
            return [a[0] - 1e-3 * m1 / (sqrt(v1) + 1e-8), m1, v1]
        }
        let program = traceProgram([p, m, v, g], fuse: true, f)
        let kernels = program.instructions.compactMap { ins -> FusedKernel? in
            if case .compiled(let k) = ins.primitive { return k }
            return nil
        }
        XCTAssertEqual(kernels.count, 1, "\(program.instructions.map(\.primitive.name))")
        XCTAssertEqual(kernels.first?.outputCount, 3)
        let outs = compile(f)([p, m, v, g]), eager = f([p, m, v, g])
        XCTAssertTrue(outs.allSatisfy { fusedKernel(of: $0) === fusedKernel(of: outs[0]) })
        let kernel = fusedKernel(of: outs[0])!  // before evaluation lets go of the graph
        for (c, e) in zip(outs, eager) { assertSame(c, e) }
        // The C source writes all three through one loop.
        let source = FusedKernels.cSource(kernel)!
        XCTAssertTrue(source.contains("out[2]"), source)
    }

    func testIntermediateUsedByAReductionIsAnExtraOutput() {
        var rng = TestRNG(22)
        let x = rng.tensor([5, 9]).asType(.float16), b = rng.tensor([9]).asType(.float16)
        let f = { (a: [Tensor]) -> [Tensor] in
            let y = tanh(a[0] + a[1]) * 2
            let z = exp(y) - a[0]
            return [z * 0.5, y.sum(axis: -1)]
        }
        let outs = compile(f)([x, b]), eager = f([x, b])
        let kernel = try! XCTUnwrap(fusedKernel(of: outs[0]))
        XCTAssertEqual(kernel.outputCount, 2, "y is written by the kernel that computes it")
        let node = outs[0].inputs[0].inputs[0], nodeInputs = node.inputs
        for (c, e) in zip(outs, eager) { assertSame(c, e) }
        // The interpreter (compiler failed) stacks the outputs the same way.
        let views = nodeInputs.map { $0.view() }
        let stackedOut = try! FusedKernels.interpret(
            kernel, inputs: views, output: ArrayView.allocate(shape: node.shape, dtype: node.dtype))
        assertSame(Tensor(evaluated: stackedOut), node)
    }

    func testExtraOutputThatFeedsTheRegionStaysOutside() {
        // y's external user (its sum) is upstream of the sink: writing y from
        // the sink's kernel would need the kernel's own output.
        var rng = TestRNG(23)
        let x = rng.tensor([4, 6])
        let f = { (a: [Tensor]) -> [Tensor] in
            let y = sin(a[0]) * 2 + 1
            let s = y.sum(axis: -1, keepDims: true)
            return [exp(y - s) * 3 + y]
        }
        let program = traceProgram([x], fuse: true, f)
        for ins in program.instructions {
            if case .compiled(let k) = ins.primitive { XCTAssertEqual(k.outputCount, 1) }
        }
        assertSame(compile(f)([x])[0], f([x])[0])
    }

    func testTransformsOfAMultiOutputKernel() {
        var rng = TestRNG(24)
        let x = rng.tensor([3, 4]), w = rng.tensor([4])
        let f = { (a: [Tensor]) -> [Tensor] in
            let h = sigmoid(a[0] * a[1]) + a[0]
            return [(h * h + 1).sum() + h.max()]
        }
        let compiled = compile(f)
        XCTAssertTrue(
            traceProgram([x, w], fuse: true, f).instructions.contains {
                if case .compiled(let k) = $0.primitive { return k.outputCount == 2 }
                return false
            })
        let gc = grad({ (a: [Tensor]) in compiled(a)[0] }, argumentNumbers: [0, 1])([x, w])
        let ge = grad({ (a: [Tensor]) in f(a)[0] }, argumentNumbers: [0, 1])([x, w])
        for (c, e) in zip(gc, ge) { assertSame(c, e) }
        let vc = vmap({ (a: [Tensor]) in compiled(a) }, inAxes: [0, nil])([stacked([x, x * 2]), w])[0]
        let ve = vmap({ (a: [Tensor]) in f(a) }, inAxes: [0, nil])([stacked([x, x * 2]), w])[0]
        assertSame(vc, ve)
    }

    func testShapelessReplaysMultiOutputKernels() {
        // The outputs' slices follow the stacked value's shape on other inputs.
        let f = { (a: [Tensor]) -> [Tensor] in
            let y = a[0] * 2 + a[1]
            return [exp(y) - a[1], y]
        }
        let g = compile(shapeless: true, f)
        let traces = Compile.traceCount
        for (rows, cols) in [(2, 3), (5, 7), (1, 4)] {
            let x = Tensor((0..<(rows * cols)).map { Float($0) / 8 }, shape: [rows, cols])
            let b = Tensor((0..<cols).map { Float($0) / 3 - 1 })
            let outs = g([x, b]), eager = f([x, b])
            XCTAssertEqual(fusedKernel(of: outs[0])?.outputCount, 2)
            for (c, e) in zip(outs, eager) { assertSame(c, e, "\(rows)x\(cols)") }
        }
        XCTAssertEqual(Compile.traceCount - traces, 1)
    }

    // MARK: Transforms

    func testGradOfCompiledEqualsGrad() {
        var rng = TestRNG(3)
        let x = rng.tensor([3, 4]), w = rng.tensor([4])
        let f = { (a: [Tensor]) -> Tensor in (tanh(a[0] * a[1] + 1) * sigmoid(a[0]) - square(a[1])).sum() }
        let compiled = compile { [f($0)] }
        let gc = grad({ compiled($0)[0] }, argumentNumbers: [0, 1])([x, w])
        let ge = grad(f, argumentNumbers: [0, 1])([x, w])
        for (c, e) in zip(gc, ge) { assertSame(c, e) }
        // Second order through the fused kernel's program.
        let hc = grad({ grad({ compiled($0)[0] })($0)[0].sum() })([x, w])[0]
        let he = grad({ grad(f)($0)[0].sum() })([x, w])[0]
        assertSame(hc, he)
    }

    func testCompiledGradEqualsGrad() {
        var rng = TestRNG(4)
        let x = rng.tensor([5, 3])
        let f = { (x: Tensor) -> Tensor in (exp(x) * x - x / 2).sum() }
        let cg = compile(grad(f))
        assertSame(cg(x), grad(f)(x))
        assertSame(cg(x + 1), grad(f)(x + 1))
        XCTAssertTrue(isFused(cg(x)))
    }

    func testJvpAndVmapCompose() {
        var rng = TestRNG(5)
        let x = rng.tensor([4, 3]), t = rng.tensor([4, 3])
        let f = { (a: [Tensor]) -> [Tensor] in [exp(a[0]) * cos(a[0]) + a[0]] }
        let cf = compile(f)
        assertSame(jvp(cf, primals: [x], tangents: [t]).jvps[0], jvp(f, primals: [x], tangents: [t]).jvps[0])
        assertSame(vmap(cf, inAxes: [1])([x])[0], vmap(f, inAxes: [1])([x])[0])
        assertSame(compile(vmap(f, inAxes: [1]))([x])[0], vmap(f, inAxes: [1])([x])[0])
    }

    // MARK: Caching

    func testCacheHitsRetracesAndShapeless() {
        let f = { (a: [Tensor]) in [a[0] * 3 + exp(a[0])] }
        let cf = compile(f)
        let traces = Compile.traceCount, hits = Compile.cacheHitCount
        let a = Tensor([1, 2, 3] as [Float]), b = Tensor([4, 5, 6] as [Float])
        assertSame(cf([a])[0], f([a])[0])
        assertSame(cf([b])[0], f([b])[0])
        XCTAssertEqual(Compile.traceCount - traces, 1)
        XCTAssertEqual(Compile.cacheHitCount - hits, 1)
        let c = Tensor([1, 2, 3, 4] as [Float])
        assertSame(cf([c])[0], f([c])[0])
        XCTAssertEqual(Compile.traceCount - traces, 2, "a new shape traces again")
        _ = cf([a.asType(.float16)])
        XCTAssertEqual(Compile.traceCount - traces, 3, "a new dtype traces again")

        let g = { (a: [Tensor]) in [a[0] * a[1] + 1] }
        let sg = compile(shapeless: true, g)
        let before = Compile.traceCount
        for n in [3, 7, 100] {
            var rng = TestRNG(UInt64(n))
            let x = rng.tensor([2, n]).asType(.float32), y = rng.tensor([n]).asType(.float32)
            assertSame(sg([x, y])[0], g([x, y])[0])
        }
        let x1 = Tensor([2] as [Float]).reshaped([1, 1]), y1 = Tensor([1, 2, 3, 4, 5] as [Float])
        assertSame(sg([x1, y1])[0], g([x1, y1])[0])
        XCTAssertEqual(Compile.traceCount - before, 1, "one trace for every shape")
    }

    func testKernelsAreCachedOnDisk() throws {
        let dir = NSTemporaryDirectory() + "tessera-kernels-\(UUID().uuidString)"
        setenv("TESSERA_KERNEL_CACHE", dir, 1)
        defer {
            unsetenv("TESSERA_KERNEL_CACHE")
            try? FileManager.default.removeItem(atPath: dir)
        }
        let f = { (a: [Tensor]) in [cosh(a[0]) * 1.25 - sinh(a[0]) * 0.75] }
        let x = Tensor([0.5, 1, 2] as [Float])
        let runs = Compile.compilerRunCount, disk = Compile.diskCacheHitCount
        assertSame(compile(f)([x])[0], f([x])[0])
        XCTAssertEqual(Compile.compilerRunCount - runs, 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        XCTAssertEqual(files.filter { $0.hasSuffix(".so") }.count, 1, "\(files)")
        XCTAssertFalse(files.contains { $0.hasPrefix(".") }, "no temporary files left: \(files)")
        CCompiler.forgetLoadedKernels()
        assertSame(compile(f)([x])[0], f([x])[0])
        XCTAssertEqual(Compile.compilerRunCount - runs, 1, "the second process-level load reads the disk")
        XCTAssertEqual(Compile.diskCacheHitCount - disk, 1)
    }

    func testManyTasksCallOneCompiledFunction() async throws {
        // Two outputs: one kernel writes both (its C is built once, under its lock).
        let f: @Sendable ([Tensor]) -> [Tensor] = { a in
            let s = sigmoid(a[0]) * a[0]
            return [s + a[0] * a[0] / 7, s]
        }
        let cf = compile(f)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    let n = 8 + task % 3  // three shapes traced concurrently
                    let x = Tensor.arange(Double(task), Double(task + n))
                    let outs = cf([x])
                    XCTAssertEqual(fusedKernel(of: outs[0])?.outputCount, 2)
                    for (y, expected) in zip(outs, f([x])) {
                        let value = try await y.evaluated()
                        XCTAssertEqual(value.toArray(Float.self), expected.toArray(Float.self))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    // MARK: Switches and fallbacks

    func testConcurrentStatefulCallsAreSerialized() async throws {
        // A counter in compile state and keyless draws: 16 concurrent calls
        // lose no update and draw 16 distinct keys, the same as 16 eager draws.
        Random.seed(5)
        let eagerDraws = Set((0..<16).map { _ in Random.bits([2]).toArray(UInt32.self) })
        Random.seed(5)
        let counter = State([Tensor(Int32(0))])
        let step = compile(inputs: [counter, Random.state], outputs: [counter, Random.state]) { (a: [Tensor]) in
            counter.innerState = [counter.innerState[0] + 1]
            return [counter.innerState[0], Random.bits([2]) + a[0]]
        }
        let results = try await withThrowingTaskGroup(of: (Int32, [UInt32]).self) { group in
            for _ in 0..<16 {
                group.addTask {
                    let out = step([Tensor(UInt32(0))])
                    return (
                        try await out[0].evaluated().item(Int32.self), try await out[1].evaluated().toArray(UInt32.self)
                    )
                }
            }
            var all: [(Int32, [UInt32])] = []
            for try await r in group { all.append(r) }
            return all
        }
        XCTAssertEqual(results.map(\.0).sorted(), (1...16).map(Int32.init))
        XCTAssertEqual(counter.innerState[0].item(Int32.self), 16)
        XCTAssertEqual(Set(results.map(\.1)), eagerDraws)
    }

    func testDisabledCompileCallsTheFunction() {
        let f = { (a: [Tensor]) in [exp(a[0]) + 1] }
        let cf = compile(f)
        disableCompile()
        defer { enableCompile() }
        let traces = Compile.traceCount
        let x = Tensor([1, 2] as [Float])
        let y = cf([x])[0]
        XCTAssertFalse(isFused(y))
        XCTAssertEqual(Compile.traceCount, traces)
        assertSame(y, f([x])[0])
    }

    func testMissingCompilerRunsUnfused() {
        Compile.compilerPath = "/nonexistent/bin/cc"
        defer { Compile.compilerPath = "cc" }
        XCTAssertFalse(CCompiler.isAvailable)
        let f = { (a: [Tensor]) in [exp(a[0]) * 2 + tanh(a[0])] }
        let x = Tensor([0.1, 0.2, 0.3] as [Float])
        let y = compile(f)([x])[0]
        XCTAssertFalse(isFused(y))
        assertSame(y, f([x])[0])
    }

    func testInterpretedKernelMatches() throws {
        // The fallback a kernel takes when its C fails to build.
        var rng = TestRNG(6)
        let x = rng.tensor([3, 4]).asType(.float16), b = rng.tensor([4]).asType(.float16)
        let f = { (a: [Tensor]) in [maximum(a[0] + a[1], 0) * 3] }
        let out = compile(f)([x, b])[0]
        guard case .compiled(let kernel) = out.primitive else { return XCTFail("not fused") }
        let views = out.inputs.map { $0.view() }
        let result = try FusedKernels.interpret(
            kernel, inputs: views, output: ArrayView.allocate(shape: [3, 4], dtype: .float16))
        assertSame(Tensor(evaluated: result), f([x, b])[0])
    }

    // MARK: Layouts

    func testStridedAndBroadcastInputs() {
        var rng = TestRNG(7)
        let x = rng.tensor([6, 5]).asType(.float32)
        let xt = x.T  // a transposed view: the strided loop
        let bias = rng.tensor([6]).asType(.float32)
        let s = Tensor(Float(0.25))
        let f = { (a: [Tensor]) in [tanh(a[0] + a[1]) * a[2] - a[1]] }
        assertSame(compile(f)([xt, bias, s])[0], f([xt, bias, s])[0])
        assertSame(compile(f)([xt.contiguous(), bias, s])[0], f([xt.contiguous(), bias, s])[0])
        // Large enough to split across threads, both loops.
        let big = rng.tensor([300, 700]).asType(.float32)
        let row = rng.tensor([700]).asType(.float32)
        let g = { (a: [Tensor]) in [a[0] * 2 + exp(a[1]) - a[0] * a[0]] }
        assertSame(compile(g)([big, row])[0], g([big, row])[0])
        assertSame(compile(g)([big, big])[0], g([big, big])[0])
    }

    func testMixedDTypesSelectAndComparisons() {
        var rng = TestRNG(8)
        let x = rng.tensor([4, 4]).asType(.float16), y = rng.tensor([4, 4]).asType(.float32)
        let i = Tensor([1, -2, 3, -4] as [Int32])
        let f = { (a: [Tensor]) -> [Tensor] in
            let m = which(a[0] .> 0, a[0].asType(.float32) * 2, a[1] - 1)
            let k = (a[2] * 3 - 1).asType(.float32) + abs(m)
            return [k, (m .< 0.5).asType(.int32) + a[2], m.asType(.bfloat16) * 3]
        }
        let c = compile(f)([x, y, i]), e = f([x, y, i])
        for (a, b) in zip(c, e) { assertSame(a, b) }
    }

    // MARK: Stateful compile

    final class State: Updatable {
        var innerState: [Tensor]
        init(_ tensors: [Tensor]) { innerState = tensors }
    }

    func testStatefulCompileReadsAndWritesState() {
        // A tiny SGD-with-momentum step: parameters and velocity are state.
        let model = State([Tensor([1, 2, 3] as [Float])])
        let optimizer = State([Tensor.zeros([3])])
        let step = compile(inputs: [model, optimizer], outputs: [model, optimizer]) { args in
            let p = model.innerState[0], v = optimizer.innerState[0]
            let g = grad { (p: Tensor) in (p * p * args[0]).sum() }(p)
            let newV = v * 0.9 + g
            model.innerState = [p - 0.1 * newV]
            optimizer.innerState = [newV]
            return [(p * p * args[0]).sum()]
        }
        var p: [Float] = [1, 2, 3], v: [Float] = [0, 0, 0]
        let scale = Tensor(Float(0.5))
        let traces = Compile.traceCount
        for _ in 0..<3 {
            let loss = step([scale])[0].item(Float.self)
            XCTAssertEqual(loss, zip(p, p).map { $0 * $1 * 0.5 }.reduce(0, +), accuracy: 1e-5)
            for k in 0..<3 {
                v[k] = v[k] * 0.9 + p[k]
                p[k] -= 0.1 * v[k]
            }
            let mp = model.innerState[0].toArray(Float.self), ov = optimizer.innerState[0].toArray(Float.self)
            for k in 0..<3 {
                XCTAssertEqual(mp[k], p[k], accuracy: 1e-5)
                XCTAssertEqual(ov[k], v[k], accuracy: 1e-5)
            }
        }
        XCTAssertEqual(Compile.traceCount - traces, 1)
    }

    // MARK: CUDA source

    func testCUDASourceIsWellFormed() {
        var rng = TestRNG(9)
        let x = rng.tensor([4, 3]).asType(.float16), y = rng.tensor([3]).asType(.bfloat16)
        let out = compile { (a: [Tensor]) in [(exp(a[0]) * 2 + a[1].asType(.float16)) .> 1] }([x, y])[0]
        guard case .compiled(let kernel) = out.primitive else { return XCTFail("not fused") }
        guard let source = CUDAFusedSource.source(kernel) else { return XCTFail("no CUDA source") }
        XCTAssertTrue(source.contains("extern \"C\" __global__ void tk_contig("), source)
        XCTAssertTrue(source.contains("extern \"C\" __global__ void tk_strided("), source)
        XCTAssertFalse(source.contains("#include"), "NVRTC needs no headers")
        XCTAssertFalse(source.contains("_Float16"), "C-only types stay out of CUDA")
        var depth = 0
        for ch in source {
            if ch == "{" || ch == "(" { depth += 1 }
            if ch == "}" || ch == ")" { depth -= 1 }
            XCTAssertGreaterThanOrEqual(depth, 0)
        }
        XCTAssertEqual(depth, 0, "balanced braces and parentheses")
    }
}

/// A random element-wise graph over `inputs`: each step applies a random op
/// to values picked from everything computed so far (so values are shared).
private func randomGraph(_ inputs: [Tensor], ops: [Double], picks: [Double]) -> [Tensor] {
    var values = inputs
    var p = 0
    func pick() -> Tensor {
        defer { p += 1 }
        return values[Int(picks[p % picks.count] * Double(values.count)) % values.count]
    }
    for r in ops {
        let a = pick()
        let v: Tensor
        switch Int(r * 14) {
        case 0: v = exp(a.clip(min: -3, max: 3))
        case 1: v = sin(a) * 0.5
        case 2: v = tanh(a) + a
        case 3: v = a * pick() - 1
        case 4: v = a + pick()
        case 5: v = maximum(a, pick())
        case 6: v = a / (abs(pick()) + 1)
        case 7: v = which(a .> pick(), a, pick() * 2)
        case 8: v = sigmoid(a) * 3
        case 9: v = sqrt(abs(a) + 0.5)
        case 10: v = log1p(square(a))
        case 11: v = (a.asType(.float32) * 1.5).asType(a.dtype)
        case 12: v = minimum(a, 0.25) - pick()
        default: v = negative(a) * a
        }
        values.append(v)
    }
    return [values[values.count - 1], values[inputs.count + (values.count - inputs.count) / 2]]
}
