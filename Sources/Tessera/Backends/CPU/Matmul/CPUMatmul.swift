// CPU matmul: out[..., m, n] = sum_k a[..., m, k] * b[..., k, n], inputs
// already broadcast in the batch axes (stride 0 where broadcast). A plain
// i-k-j loop accumulating rows in the compute type (float32 for half types),
// used for float64 and as the reference; float32/float16/bfloat16 take the
// BLAS or native SIMD GEMM in CPUMatmul+GEMM.swift.

struct MatmulKernel: KindVisitor {
    let a: ArrayView
    let b: ArrayView
    let output: ArrayView

    func visitFloat<T: FloatElement>(_: T.Type) throws {
        if try GEMM.matmul(a, b, output) { return }
        guard a.dtype == output.dtype, b.dtype == output.dtype else {
            throw TesseraError.invalidData(
                op: "matmul", reason: "\(a.dtype) x \(b.dtype) into \(output.dtype) needs the fast kernel's layouts")
        }
        let nd = output.shape.count
        let m = output.shape[nd - 2], n = output.shape[nd - 1], k = a.shape[nd - 1]
        let pa = try a.hostPointer(T.self), pb = try b.hostPointer(T.self)
        let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: T.self)
        let sam = a.strides[nd - 2], sak = a.strides[nd - 1]
        let sbk = b.strides[nd - 2], sbn = b.strides[nd - 1]
        var row = [T.Math](repeating: 0, count: n)
        for (batch, o) in matmulBatchOffsets(a, b, output).enumerated() {
            let baseA = pa + o.a, baseB = pb + o.b
            let out = dst + batch * m * n
            row.withUnsafeMutableBufferPointer { acc in
                for i in 0..<m {
                    for j in 0..<n { acc[j] = 0 }
                    for p in 0..<k {
                        let x = baseA[i * sam + p * sak].math
                        let br = baseB + p * sbk
                        if sbn == 1 {
                            for j in 0..<n { acc[j] += x * br[j].math }
                        } else {
                            for j in 0..<n { acc[j] += x * br[j * sbn].math }
                        }
                    }
                    for j in 0..<n { out[i * n + j] = T(math: acc[j]) }
                }
            }
        }
    }

    func visitBool() throws { unsupported("matmul", .bool) }
    func visitInteger<T: IntegerElement>(_: T.Type) throws { unsupported("matmul", T.dtype) }
    func visitComplex() throws { unsupported("matmul", .complex64) }
}

/// Element offsets of each matrix of `a` and `b` for the batch axes of
/// `output` (all but the last two), in row-major batch order.
func matmulBatchOffsets(_ a: ArrayView, _ b: ArrayView, _ output: ArrayView) -> [(a: Int, b: Int)] {
    let nd = output.shape.count
    let shape = Array(output.shape[0..<(nd - 2)])
    let count = shape.reduce(1, *)
    return (0..<count).map { index in
        var rem = index, oa = 0, ob = 0
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            let i = rem % shape[axis]
            rem /= shape[axis]
            oa += i * a.strides[axis]
            ob += i * b.strides[axis]
        }
        return (oa, ob)
    }
}
