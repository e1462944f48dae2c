// The random family on the GPU (random.cu): randomBits, the CPU's
// threefry bits for each key. nil where no kernel fits: the dispatch then
// runs the primitive on the CPU.

extension CUDAKernelNames {
    /// randomBits into uint8, uint16 or uint32 (bytes are bytes).
    static func randomBits(output: DType) -> String? {
        [.uint8, .uint16, .uint32].contains(output) ? "random_bits" : nil
    }

    static var randomNames: [String] { ["random_bits"] }
}

extension CUDADispatch {
    func randomBits(_ keys: ArrayView, shape: [Int], dtype: DType) throws -> ArrayView? {
        guard let name = CUDAKernelNames.randomBits(output: dtype), keys.dtype == .uint32 else { return nil }
        let keyCount = keys.count / 2
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0, keyCount > 0 else { return out }
        let batch = StridedLayout.collapse(
            shape: Array(keys.shape.dropLast()), strides: [Array(keys.strides.dropLast())], linear: false)
        guard batch.rank <= StridedLayout.maxRank else { return nil }
        let bytesPerKey = out.count / keyCount * dtype.size
        let words = (bytesPerKey + 3) / 4
        let args = KernelArguments()
        args.addPointer(try inputPointer(keys))
        args.addPointer(try outputPointer(out))
        args.add(int64: keyCount)
        args.add(int64: bytesPerKey)
        args.add(int32: batch.rank)
        args.add(dims: batch.shape)
        args.add(dims: batch.strides[0])
        args.add(int64: keys.strides.last ?? 1)
        try launch(name, elementwiseGeometry(keyCount * (words / 2 + words % 2)), args)
        return out
    }
}
