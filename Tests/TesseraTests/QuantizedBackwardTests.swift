// The quantized product the other way round (x · W with W stored along its
// outputs, `quantizedMatmul(transpose: false)`), which the backward pass of a
// quantized layer runs for dx = g · W: the tiled dequantize + GEMM kernel
// (Backends/CPU/Quantized/CPUQuantized+Backward.swift) against a double-precision product of the
// dequantized weight computed here, on every ISA the dispatch can pick, with
// the native GEMM and with OpenBLAS where it is loaded, and through vjp.

import CTesseraKernels
import XCTest

@testable import Tessera

final class QuantizedBackwardTests: XCTestCase {
    override func tearDown() {
        _ = tk_set_isa(tk_isa_supported())
        tk_blas_force(0, -1)
    }

    /// out [m, n] = x [m, k] · W [k, n] in double, W from `CPUKernelTests.quantizedOperands(n: k, k: n)`
    /// (stored [k, n]; its `w` is laid out [n, k]); and the sum of |terms| per output.
    static func reference(_ x: [Float], _ w: [Float], m: Int, n: Int, k: Int) -> (value: [Double], scale: [Double]) {
        var out = [Double](repeating: 0, count: m * n), scale = out
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0, mag = 0.0
                for p in 0..<k {
                    let t = Double(x[i * k + p]) * Double(w[j * k + p])
                    acc += t
                    mag += abs(t)
                }
                out[i * n + j] = acc
                scale[i * n + j] = mag
            }
        }
        return (out, scale)
    }

    /// Shapes that hit a partial tile of W's rows (k past one 2 MiB tile at
    /// n = 32 is k > 16384: 16400), rows split over the pool (m ≥ 48) and
    /// not, groups of 32/64/128, 4 and 8 bits, float32 and float16 scales.
    func testUntransposedMatmulMatchesDoubleReference() throws {
        let cases: [(m: Int, n: Int, k: Int, group: Int, bits: Int)] = [
            (1, 32, 5, 32, 4), (7, 64, 40, 32, 4), (50, 96, 33, 32, 8), (64, 128, 70, 64, 4), (30, 256, 19, 128, 8),
            (48, 32, 16400, 32, 4)
        ]
        let blasChoices = GEMM.blasAvailable ? [0, 1] : [0]
        for c in cases {
            for scaleType in [DType.float32, .float16] {
                let ops = CPUKernelTests.quantizedOperands(
                    bits: c.bits, group: c.group, n: c.k, k: c.n, seed: UInt64(c.m * 31 + c.n + c.k), dtype: scaleType)
                let xv = CPUKernelTests.values(c.m * c.k, seed: UInt64(c.k + 7), lo: -1, hi: 1)
                let (want, scale) = Self.reference(xv, ops.w, m: c.m, n: c.n, k: c.k)
                let x = Tensor(xv, shape: [c.m, c.k])
                let wq = Tensor(ops.wq, shape: [c.k, c.n * c.bits / 32])
                let s = Tensor(ops.scales, shape: [c.k, c.n / c.group]).asType(scaleType)
                let b = Tensor(ops.biases, shape: [c.k, c.n / c.group]).asType(scaleType)
                for isa in 0...Int(tk_isa_supported()) {
                    _ = tk_set_isa(Int32(isa))
                    for blas in blasChoices {
                        tk_blas_force(0, Int32(blas))
                        let got = quantizedMatmul(
                            x, wq, scales: s, biases: b, transpose: false, groupSize: c.group, bits: c.bits
                        ).toArray(Float.self)
                        let tag = "isa \(isa) blas \(blas) \(c) scales \(scaleType)"
                        XCTAssertEqual(got.count, want.count, tag)
                        for i in 0..<min(got.count, want.count)
                        where abs(Double(got[i]) - want[i]) > 1e-5 * max(scale[i], 1e-30) {
                            XCTFail("\(tag)[\(i)]: got \(got[i]), want \(want[i])")
                            break
                        }
                    }
                }
            }
        }
    }

    /// The gradient of x · Wᵀ with respect to x (what QLoRA's base layers pass
    /// back) equals g · W of the dequantized weight, batched x [2, 40, k].
    func testVJPOfQuantizedProductIsDequantizedProduct() throws {
        let (n, k, group) = (96, 64, 32)
        let ops = CPUKernelTests.quantizedOperands(bits: 4, group: group, n: n, k: k, seed: 3, dtype: .float16)
        let wq = Tensor(ops.wq, shape: [n, k / 8])
        let s = Tensor(ops.scales, shape: [n, k / group]).asType(.float16)
        let b = Tensor(ops.biases, shape: [n, k / group]).asType(.float16)
        let x = Tensor(CPUKernelTests.values(2 * 40 * k, seed: 9, lo: -1, hi: 1), shape: [2, 40, k])
        let gv = CPUKernelTests.values(2 * 40 * n, seed: 10, lo: -1, hi: 1)
        let (_, grads) = vjp(
            { [quantizedMatmul($0[0], wq, scales: s, biases: b, transpose: true, groupSize: group, bits: 4)] },
            primals: [x], cotangents: [Tensor(gv, shape: [2, 40, n])])
        // ops.w is W [n, k] laid out [k, n]: dx[i, p] = sum_j g[i, j] W[j, p] = sum_j g[i, j] w[p * n + j].
        let (want, scale) = Self.reference(gv, ops.w, m: 80, n: k, k: n)
        let got = grads[0].toArray(Float.self)
        XCTAssertEqual(grads[0].shape, [2, 40, k])
        for i in 0..<got.count where abs(Double(got[i]) - want[i]) > 1e-5 * max(scale[i], 1e-30) {
            XCTFail("dx[\(i)]: got \(got[i]), want \(want[i])")
            break
        }
    }
}
