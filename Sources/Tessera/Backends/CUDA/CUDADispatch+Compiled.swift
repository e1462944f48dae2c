// GPU dispatch for compile()'s fused elementwise kernels.
// Returns nil where no kernel fits (the caller falls back to the CPU).

extension CUDABackend {
    static func hasCompiledKernels(_ primitive: Primitive) -> Bool {
        false
    }
}

extension CUDADispatch {
    func evaluateCompiled(_ primitive: Primitive, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        nil
    }
}
