// CPU matmul: out[..., m, n] = sum_k a[..., m, k] * b[..., k, n], inputs
// already broadcast in the batch axes (stride 0 where broadcast). A plain
// i-k-j loop accumulating rows in the compute type (float32 for half types);
// the fast BLAS/SIMD paths belong to the CPU performance work.

struct MatmulKernel: KindVisitor {
    let a: ArrayView
    let b: ArrayView
    let output: ArrayView

    func visitFloat<T: FloatElement>(_: T.Type) throws {
        let nd = output.shape.count
        let m = output.shape[nd - 2], n = output.shape[nd - 1], k = a.shape[nd - 1]
        let pa = try a.hostPointer(T.self), pb = try b.hostPointer(T.self)
        let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: T.self)
        let sam = a.strides[nd - 2], sak = a.strides[nd - 1]
        let sbk = b.strides[nd - 2], sbn = b.strides[nd - 1]
        let batchShape = Array(output.shape[0..<(nd - 2)])
        let batches = StridedIteration(
            shape: batchShape + [1],
            strides: [Array(a.strides[0..<(nd - 2)]) + [0], Array(b.strides[0..<(nd - 2)]) + [0]])
        var row = [T.Math](repeating: 0, count: n)
        var batch = 0
        // forEachRow visits collapsed rows of batches; step through each row's batches.
        let rowLength = batches.rowLength, rowStrideA = batches.innerStride(0), rowStrideB = batches.innerStride(1)
        batches.forEachRow { o in
            for r in 0..<rowLength {
                let baseA = pa + o[0] + r * rowStrideA, baseB = pb + o[1] + r * rowStrideB
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
                batch += 1
            }
        }
    }

    func visitBool() throws { unsupported("matmul", .bool) }
    func visitInteger<T: IntegerElement>(_: T.Type) throws { unsupported("matmul", T.dtype) }
    func visitComplex() throws { unsupported("matmul", .complex64) }
}
