// `tessera selftest`: the cross-backend op table on the GPU. Each case is
// computed on gpu(0) and on the CPU from the same inputs and compared with
// per-dtype tolerances (float32 1e-5 relative, float16 1e-3, bfloat16 1e-2;
// integer and bool results exactly). The cases live by family in
// GPUSelfTest+<Family>.swift.

import Tessera

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

    /// One row family: `inputs` builds the operands for a dtype (on the CPU),
    /// `op` computes the result from them on whichever device is current.
    struct Case {
        let name: String
        let dtypes: [DType]
        let inputs: (DType) -> [Tensor]
        let op: ([Tensor]) -> Tensor
        /// nil: the dtype's default (`tolerance(_:)` of the result's dtype).
        var tolerance: ((DType) -> Double)? = nil
    }

    static func tolerance(_ dtype: DType) -> Double {
        switch dtype {
        case .float16: return 1e-3
        case .bfloat16: return 1e-2
        case .float32, .float64, .complex64: return 1e-5
        default: return 0
        }
    }

    static let floatTypes: [DType] = [.float32, .float16, .bfloat16]

    /// Every case, by family.
    static var cases: [Case] { elementwiseCases + denseCases + indexingCases + compiledCases }

    /// A deterministic float32 tensor of `shape` with values in about [-2, 2].
    static func sample(_ shape: [Int], seed: Int = 0) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor((0..<count).map { Float(($0 * 7 + seed * 13) % 29) * 0.14 - 2.0 }, shape: shape)
    }

    /// nil when there is no GPU (with the reason); else one row per case and
    /// dtype whose name contains `filter` (all without one).
    public static func run(filter: String? = nil) -> Result<[Row], TesseraError> {
        guard CUDABackend.isAvailable else { return .failure(.deviceUnavailable(CUDABackend.unavailableReason)) }
        var rows: [Row] = []
        for testCase in cases where filter.map({ testCase.name.contains($0) }) ?? true {
            for dtype in testCase.dtypes {
                rows.append(check(testCase, dtype))
            }
        }
        return .success(rows)
    }

    static func check(_ testCase: Case, _ dtype: DType) -> Row {
        let inputs = withDevice(.cpu) { testCase.inputs(dtype) }
        eval(inputs)
        let expectedRaw = withDevice(.cpu) { testCase.op(inputs) }
        let gpuResult = withDevice(.gpu(0)) { testCase.op(inputs) }
        let resultType = expectedRaw.dtype
        let tolerance = testCase.tolerance?(dtype) ?? Self.tolerance(resultType)
        let expected = withDevice(.cpu) { expectedRaw.asType(.float64) }
        let actual = withDevice(.cpu) { gpuResult.asType(.float64) }
        do {
            try checkedEval([expected, actual])
            guard expected.shape == actual.shape else {
                return Row(
                    op: "\(testCase.name) (shape \(actual.shape) ≠ \(expected.shape))", dtype: dtype,
                    maxError: .infinity, tolerance: tolerance)
            }
            let e = expected.toArray(Double.self), a = actual.toArray(Double.self)
            let err =
                zip(e, a).map { x, y -> Double in
                    if x.isNaN || y.isNaN { return x.isNaN && y.isNaN ? 0 : .infinity }
                    if x == y { return 0 }
                    return abs(x - y) / max(1, abs(x))
                }.max() ?? 0
            return Row(op: testCase.name, dtype: dtype, maxError: err, tolerance: tolerance)
        } catch {
            return Row(op: "\(testCase.name) (\(error))", dtype: dtype, maxError: .infinity, tolerance: 0)
        }
    }
}
