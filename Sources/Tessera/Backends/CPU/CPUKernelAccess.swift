// `_CPUKernels`: eager entry points to the CPU kernels that have no public op
// of their own yet (the fused-op rows, quantized matmul), and facts about the
// kernel setup, for benchmarks and tools. Not public API (underscored): the
// ops that use these kernels are the API.

import CTesseraKernels

public enum _CPUKernels {
    /// The instruction set the SIMD kernels use: "avx512", "avx2" or "baseline".
    public static var isa: String { ["baseline", "avx2", "avx512"][Int(tk_isa())] }
    /// Whether OpenBLAS is loaded.
    public static var blasAvailable: Bool { GEMM.blasAvailable }

    /// Where float32 GEMM and matrix-vector products go, and why: the
    /// once-per-process measurement of BLAS against the native kernel.
    public static var blasChoice: String {
        guard GEMM.blasAvailable else { return "native (no OpenBLAS loaded)" }
        var t = [Double](repeating: 0, count: 4)
        _ = tk_blas_measurement(&t)
        func side(_ name: String, _ native: Double, _ blas: Double, _ use: Bool) -> String {
            func ms(_ t: Double) -> Double { (t * 1e5).rounded() / 100 }
            return "\(name) \(use ? "OpenBLAS" : "native") (1 thread: native \(ms(native)) ms, OpenBLAS \(ms(blas)) ms)"
        }
        return side("GEMM", t[0], t[1], GEMM.blasForGEMM) + "; " + side("gemv", t[2], t[3], GEMM.blasForGEMV)
    }

    /// Sends float32 GEMM (`vector` false) or matrix-vector products to OpenBLAS
    /// (true), to the native kernel (false) or back to the measured choice (nil).
    public static func forceBLAS(_ use: Bool?, vector: Bool) {
        tk_blas_force(vector ? 1 : 0, use.map { $0 ? 1 : 0 } ?? -1)
    }
    /// Threads in the CPU pool (the caller included).
    public static var threadCount: Int { ThreadPool.shared.threadCount }
    /// Whether kernels may split work over the pool (on by default).
    public static var parallel: Bool {
        get { ThreadPool.shared.enabled.load(ordering: .relaxed) }
        set { ThreadPool.shared.enabled.store(newValue, ordering: .relaxed) }
    }

    /// Whether 4- and 8-bit qmv use the AVX-512 VNNI kernels (where the CPU
    /// has them and TESSERA_NO_VNNI is unset); off, the float kernel runs.
    public static var qmvVNNI: Bool {
        get { tk_qmv_vnni() != 0 }
        set { _ = tk_set_qmv_vnni(newValue ? 1 : 0) }
    }

    private static func run(_ shape: [Int], _ dtype: DType, _ body: (ArrayView) throws -> Void) -> Tensor {
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        do { try body(out) } catch { fatalError("[_CPUKernels] \(error)") }
        return Tensor(evaluated: out)
    }

    /// Softmax over the last axis, computed now.
    public static func softmax(_ x: Tensor) -> Tensor {
        run(x.shape, x.dtype) { try RowKernels.softmax(x.view(), into: $0) }
    }

    /// RMS normalisation over the last axis, computed now.
    public static func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) -> Tensor {
        run(x.shape, x.dtype) { try RowKernels.rmsNorm(x.view(), weight: weight?.view(), eps: eps, into: $0) }
    }

    /// Layer normalisation over the last axis, computed now.
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        run(x.shape, x.dtype) {
            try RowKernels.layerNorm(x.view(), weight: weight?.view(), bias: bias?.view(), eps: eps, into: $0)
        }
    }

    /// x [..., K] times the MLX-quantized w [N, K] transposed, computed now.
    public static func quantizedMatmul(
        _ x: Tensor, wq: Tensor, scales: Tensor, biases: Tensor, groupSize: Int, bits: Int
    ) -> Tensor {
        run(Array(x.shape.dropLast()) + [wq.shape[0]], x.dtype) {
            try QuantizedKernels.matmul(
                x: x.view(), wq: wq.view(), scales: scales.view(), biases: biases.view(), groupSize: groupSize,
                bits: bits, into: $0)
        }
    }

    /// The 2-D product through the native SIMD GEMM (never BLAS), computed now.
    public static func nativeMatmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        run([a.shape[0], b.shape[1]], a.dtype) { out in
            _ = try GEMM.matmul(a.view(), b.view(), out, useBLAS: false)
        }
    }
}
