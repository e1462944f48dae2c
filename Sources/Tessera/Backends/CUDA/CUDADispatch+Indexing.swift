// GPU dispatch for randomBits, gather/scatter, sort, scan, linear algebra.
// Returns nil where no kernel fits (the caller falls back to the CPU).

extension CUDABackend {
    static func hasIndexingKernels(_ primitive: Primitive) -> Bool {
        false
    }
}

extension CUDADispatch {
    func evaluateIndexing(_ primitive: Primitive, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        nil
    }
}
