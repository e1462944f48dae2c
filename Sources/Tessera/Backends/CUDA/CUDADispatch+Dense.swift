// GPU dispatch for argReduce, matmul (cuBLASLt and gemv), quantization, softmax/logSoftmax, rmsNorm/layerNorm, rope, attention.
// Returns nil where no kernel fits (the caller falls back to the CPU).

extension CUDABackend {
    static func hasDenseKernels(_ primitive: Primitive) -> Bool {
        false
    }
}

extension CUDADispatch {
    func evaluateDense(_ primitive: Primitive, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        nil
    }
}
