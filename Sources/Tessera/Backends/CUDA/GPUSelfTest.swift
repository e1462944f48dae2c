// `tessera selftest`: the cross-backend op table on the GPU, each op
// computed on gpu(0) and on the CPU from the same inputs and compared with
// the per-dtype tolerances (float32 1e-5 relative, float16 1e-3, bfloat16 1e-2).

/// Runs a table of ops on the GPU and the CPU and compares them.
public enum GPUSelfTest {
    public struct Row: Sendable, CustomStringConvertible {
        public let op: String
        public let dtype: DType
        public let maxError: Double
        public let tolerance: Double
        public var passed: Bool { maxError <= tolerance }
        public var description: String {
            "\(passed ? "ok  " : "FAIL") \(op) \(dtype): max relative error \(maxError) (tolerance \(tolerance))"
        }
    }

    static func tolerance(_ dtype: DType) -> Double {
        switch dtype {
        case .float16: return 1e-3
        case .bfloat16: return 1e-2
        default: return 1e-5
        }
    }

    /// nil when there is no GPU (with the reason); else one row per case.
    public static func run() -> Result<[Row], TesseraError> {
        guard CUDABackend.isAvailable else { return .failure(.deviceUnavailable(CUDABackend.unavailableReason)) }
        var rows: [Row] = []
        let x0 = Tensor((0..<96).map { Float($0 % 13) * 0.37 - 2.1 }, shape: [4, 6, 4])
        let y0 = Tensor((0..<24).map { Float($0 % 7) * 0.53 + 0.25 }, shape: [6, 4])
        let cases: [(String, (Tensor, Tensor) -> Tensor)] = [
            ("add (broadcast)", { $0 + $1 }), ("multiply", { $0 * $1 }), ("divide", { $0 / $1 }),
            ("maximum", { maximum($0, $1) }), ("exp", { a, _ in exp(a) }), ("tanh", { a, _ in tanh(a) }),
            ("sigmoid", { a, _ in sigmoid(a) }), ("less", { $0 .< $1 }), ("which", { which($0 .< $1, $0, $1) }),
            ("sum axis 2 (row)", { a, _ in a.sum(axes: [2]) }), ("sum axis 0", { a, _ in a.sum(axes: [0]) }),
            ("max all", { a, _ in a.max() }), ("transposed copy", { a, _ in a.transposed().contiguous() }),
            ("concatenate", { a, b in concatenated([a, a], axis: 1) }),
        ]
        for dtype in [DType.float32, .float16, .bfloat16] {
            for (name, f) in cases {
                let (x, y) = (x0.asType(dtype), y0.asType(dtype))
                eval(x, y)
                let expected = withDevice(.cpu) { f(x, y).asType(.float32) }
                let gpuResult = withDevice(.gpu(0)) { f(x, y) }
                let actual = withDevice(.cpu) { gpuResult.asType(.float32) }
                do {
                    try checkedEval([expected, actual])
                    let e = expected.toArray(Float.self), a = actual.toArray(Float.self)
                    let err = zip(e, a).map { Double(abs($0 - $1)) / max(1, Double(abs($0))) }.max() ?? 0
                    rows.append(Row(op: name, dtype: dtype, maxError: err, tolerance: tolerance(dtype)))
                } catch {
                    rows.append(Row(op: "\(name) (\(error))", dtype: dtype, maxError: .infinity, tolerance: 0))
                }
            }
        }
        return .success(rows)
    }
}
