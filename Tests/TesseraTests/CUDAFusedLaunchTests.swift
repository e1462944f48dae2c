// compile's fused kernels on the GPU, the parts that run without one: the
// generated CUDA for a spread of fused graphs (dtypes incl. float16 and
// bfloat16, broadcasting, scalar inputs, several outputs) compiles with NVRTC
// for sm_75, sm_80 and sm_90a with no error or warning and defines both entry
// points; the launch plan (entry point, collapsed strides, fallback past 8
// axes), the argument block in the kernels' parameter order, and the CUBIN
// cache path.

import Foundation
import XCTest

@testable import Tessera

/// The fused kernel computing `t` (its node, or the stacked node it slices), read before evaluation.
private func kernel(of t: Tensor) -> FusedKernel? {
    if case .compiled(let k) = t.primitive { return k }
    if case .reshape = t.primitive, let slice = t.inputs.first, case .slice = slice.primitive,
        let node = slice.inputs.first, case .compiled(let k) = node.primitive
    {
        return k
    }
    return nil
}

/// The distinct fused kernels of `f` compiled at `inputs`.
private func fusedKernels(_ inputs: [Tensor], _ f: @escaping ([Tensor]) -> [Tensor]) -> [FusedKernel] {
    var seen: [FusedKernel] = []
    for out in compile(f)(inputs) {
        if let k = kernel(of: out), !seen.contains(where: { $0 === k }) { seen.append(k) }
    }
    return seen
}

final class CUDAFusedLaunchTests: XCTestCase {
    override func setUp() {
        Compile.isEnabled = true
        Compile.compilerPath = "cc"
    }

    /// Fused graphs covering the code generator's cases, with what each must show.
    private func sampleKernels() -> [(name: String, kernel: FusedKernel)] {
        var rng = TestRNG(31)
        let x = rng.tensor([4, 6]), row = rng.tensor([6]), col = rng.tensor([4, 1])
        var out: [(String, FusedKernel)] = []
        func add(_ name: String, _ inputs: [Tensor], _ f: @escaping ([Tensor]) -> [Tensor]) {
            let ks = fusedKernels(inputs, f)
            XCTAssertFalse(ks.isEmpty, "\(name): nothing fused")
            out += ks.map { (name, $0) }
        }
        for dtype in [DType.float32, .float16, .bfloat16, .float64] {
            // Broadcast row and column, transcendental ops, a comparison and `which`.
            add("broadcast \(dtype)", [x.asType(dtype), row.asType(dtype), col.asType(dtype)]) { a in
                let y = tanh(a[0] * a[1]) + sigmoid(a[2]) * 0.5
                return [which(y .> 0, exp(y), logAddExp(y, a[1]) - 1)]
            }
            // Several outputs: an Adam-style update writes p, m and v.
            add("adam \(dtype)", [x, x * 0.5, abs(x), row].map { $0.asType(dtype) }) { a in
                let m = 0.9 * a[1] + 0.1 * a[3]
                let v = 0.999 * a[2] + 0.001 * square(a[3])
                return [a[0] - 1e-3 * m / (sqrt(v) + 1e-8), m, v]
            }
        }
        // Integer, bool and mixed-dtype chains; a scalar input read once.
        let i = Tensor((0..<24).map { Int32($0 - 12) }).reshaped([4, 6])
        add("int32/bool", [i, x, Tensor(Int32(3))]) { a in
            let m = (a[0] * a[2] + 7) .> 2
            return [m .&& (a[1] .< 0.25), (a[0] * 5 - a[2]).asType(.float16) * 2, remainder(a[1], 0.3) * 4]
        }
        add("scalar input", [x, Tensor(Float(3))]) { a in [exp(a[0]) * a[1] + 1] }
        add("asType chain", [x]) { a in [((a[0] * 100).asType(.int32) + 1).asType(.bfloat16) * 2] }
        return out
    }

    func testGeneratedCUDACompilesWithNVRTCWithoutWarnings() throws {
        let nvrtc: NVRTC
        switch CUDALibrary.nvrtc.open() {
        case .success(let library):
            nvrtc = try NVRTC(library)
        case .failure(let failure):
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_NVRTC"] == "1" {
                XCTFail("TESSERA_REQUIRE_NVRTC=1 but \(failure)")
            }
            throw XCTSkip("no NVRTC, fused kernels not compiled: \(failure)")
        }
        let samples = sampleKernels()
        XCTAssertTrue(samples.contains { $0.kernel.outputCount == 3 }, "a three-output kernel is among the samples")
        XCTAssertTrue(samples.contains { $0.kernel.inputModes.contains(.broadcast) })
        XCTAssertTrue(samples.contains { $0.kernel.inputModes.contains(.scalar) })
        for (name, kernel) in samples {
            let source = try XCTUnwrap(CUDAFusedSource.source(kernel), name)
            for arch in CUDAKernelCompileTests.architectures {
                do {
                    let output = try nvrtc.compile(
                        source: source, name: "fused.cu", headers: [:], architecture: arch, verbose: true)
                    let problems = output.log.split(separator: "\n").filter {
                        $0.localizedCaseInsensitiveContains("warning") || $0.localizedCaseInsensitiveContains("error")
                    }
                    XCTAssertEqual(problems, [], "\(name) for \(arch):\n\(source)")
                    let text = String(decoding: output.cubin.map { $0 < 128 ? $0 : 0 }, as: UTF8.self)
                    for entry in ["tk_contig", "tk_strided"] {
                        XCTAssertTrue(text.contains("\u{0}\(entry)\u{0}"), "\(name) \(arch): no \(entry) in the CUBIN")
                    }
                } catch {
                    XCTFail("\(name) for \(arch): \(error)\n\(source)")
                }
            }
        }
    }

    // MARK: Launch plan and arguments

    private func adamKernel() -> FusedKernel {
        let p = Tensor.zeros([8, 5]), g = Tensor.zeros([5])
        let ks = fusedKernels([p, p, p, g]) { a in
            let m = 0.9 * a[1] + 0.1 * a[3]
            let v = 0.999 * a[2] + 0.001 * square(a[3])
            return [a[0] - 1e-3 * m / (sqrt(v) + 1e-8), m, v]
        }
        XCTAssertEqual(ks.count, 1)
        return ks[0]
    }

    func testPlanTakesTheContiguousEntryOnlyForContiguousOrScalarInputs() throws {
        var rng = TestRNG(32)
        let x = rng.tensor([4, 6]), s = Tensor(Float(2))
        let k = try XCTUnwrap(fusedKernels([x, s]) { a in [exp(a[0]) * a[1] + 1] }.first)
        XCTAssertEqual(k.program.inputShapes, [[4, 6], []])
        XCTAssertEqual(k.inputModes, [.full, .scalar])
        let plan = try XCTUnwrap(FusedLaunchPlan.make(k, inputs: [x.view(), s.view()], shape: [4, 6]))
        XCTAssertEqual(plan, FusedLaunchPlan(entry: .contiguous, count: 24, outputCount: 1))
        XCTAssertEqual(plan.functionName, "tk_contig")

        // The same kernel on a transposed input: strided, with its strides.
        let xt = rng.tensor([6, 4]).transposed(axes: [1, 0])
        let strided = try XCTUnwrap(FusedLaunchPlan.make(k, inputs: [xt.view(), s.view()], shape: [4, 6]))
        XCTAssertEqual(strided.functionName, "tk_strided")
        XCTAssertEqual(strided.entry, .strided(StridedLayout(shape: [4, 6], strides: [[1, 4], [0, 0], [6, 1]])))
    }

    func testPlanCollapsesBroadcastsAndFallsBackPastEightAxes() throws {
        let k = adamKernel()
        XCTAssertEqual(k.outputCount, 3)
        // p, m, v read in full; g (and g², computed at g's shape) broadcast along the rows.
        XCTAssertEqual(k.inputModes.filter { $0 == .full }.count, 3)
        XCTAssertEqual(k.inputModes.filter { $0 == .broadcast }.count, k.program.inputCount - 3)
        let p = Tensor.zeros([8, 5]), g = Tensor.zeros([5])
        eval(p, g)
        // The kernel's inputs in its own order: g is the one of shape [5].
        let views = k.program.inputShapes.map { $0 == [5] ? g.view() : p.view() }
        let plan = try XCTUnwrap(FusedLaunchPlan.make(k, inputs: views, shape: [3, 8, 5]))
        XCTAssertEqual(plan.count, 40)
        XCTAssertEqual(plan.outputCount, 3)
        // g is read with stride 0 along the rows; the outputs' row is contiguous.
        let strides = k.program.inputShapes.map { $0 == [5] ? [0, 1] : [5, 1] } + [[5, 1]]
        XCTAssertEqual(plan.entry, .strided(StridedLayout(shape: [8, 5], strides: strides)))

        // Nine axes that no neighbour merges with (alternating broadcast): the CPU runs it.
        let shape = [2, 3, 2, 3, 2, 3, 2, 3, 2]
        let a = Tensor.zeros(shape), b = Tensor.zeros(shape.enumerated().map { $0.offset % 2 == 0 ? $0.element : 1 })
        let wide = try XCTUnwrap(fusedKernels([a, b]) { x in [exp(x[0]) + x[1] * 2] }.first)
        eval(a, b)
        XCTAssertNil(FusedLaunchPlan.make(wide, inputs: [a.view(), b.view()], shape: shape))
    }

    func testArgumentsFollowTheKernelsParameterOrder() throws {
        let k = adamKernel()
        let p = Tensor.zeros([8, 5]), g = Tensor.zeros([5])
        eval(p, g)
        let views = k.program.inputShapes.map { $0 == [5] ? g.view() : p.view() }
        let gIndex = try XCTUnwrap(k.program.inputShapes.firstIndex(of: [5]))
        let plan = try XCTUnwrap(FusedLaunchPlan.make(k, inputs: views, shape: [3, 8, 5]))
        let base: UInt64 = 0x7000_0000
        let n = k.program.inputCount  // p, m, v, g and g² (computed at g's shape)
        let inputPointers = (0..<n).map { UInt64(0x1000 * ($0 + 1)) }
        let args = plan.arguments(inputs: inputPointers, outputBase: base, elementSize: 4)
        // n, ndim, shape, a stride row per input and one for the outputs, the input and 3 output pointers.
        XCTAssertEqual(args.count, 1 + 1 + 1 + (n + 1) + n + 3)
        args.withPointers { params in
            XCTAssertEqual(params[0]!.load(as: Int64.self), 40)
            XCTAssertEqual(params[1]!.load(as: Int32.self), 2)
            let dims = (0..<8).map { params[2]!.load(fromByteOffset: $0 * 8, as: Int64.self) }
            XCTAssertEqual(dims, [8, 5, 1, 1, 1, 1, 1, 1])
            let gStrides = (0..<2).map { params[3 + gIndex]!.load(fromByteOffset: $0 * 8, as: Int64.self) }
            XCTAssertEqual(gStrides, [0, 1])
            let pointers = ((4 + n)..<(4 + 2 * n + 3)).map { params[$0]!.load(as: UInt64.self) }
            XCTAssertEqual(pointers, inputPointers + [base, base + 160, base + 320])
        }
        // The contiguous entry has no layout arguments.
        let contiguous = FusedLaunchPlan(entry: .contiguous, count: 10, outputCount: 2)
        let c = contiguous.arguments(inputs: [0x10], outputBase: 0x100, elementSize: 2)
        XCTAssertEqual(c.count, 4)
        c.withPointers { params in
            XCTAssertEqual(params[0]!.load(as: Int64.self), 10)
            XCTAssertEqual((1..<4).map { params[$0]!.load(as: UInt64.self) }, [0x10, 0x100, 0x114])
        }
    }

    func testCUBINCachePathKeysSourceArchitectureAndNVRTC() {
        let env = ["TESSERA_CUDA_CACHE": "/tmp/tessera-cuda-test"]
        let a = FusedCUBINCache.path(source: "A", architecture: "sm_90a", nvrtcVersion: "12.9", environment: env)
        XCTAssertTrue(a.hasPrefix("/tmp/tessera-cuda-test/fused-"), a)
        XCTAssertTrue(a.hasSuffix("-sm_90a-nvrtc12.9.cubin"), a)
        let others = [
            FusedCUBINCache.path(source: "B", architecture: "sm_90a", nvrtcVersion: "12.9", environment: env),
            FusedCUBINCache.path(source: "A", architecture: "sm_80", nvrtcVersion: "12.9", environment: env),
            FusedCUBINCache.path(source: "A", architecture: "sm_90a", nvrtcVersion: "12.8", environment: env)
        ]
        XCTAssertEqual(Set(others + [a]).count, 4)
    }

    func testTheGPUDispatchHasSourceForCompiled() {
        let k = adamKernel()
        XCTAssertNotNil(CUDAFusedSource.source(k))
    }
}
