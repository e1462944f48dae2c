// The shape family on the GPU (copy.cu): reshape, transpose, broadcast and
// slice stay views (Backends/Common/ShapeKernels.swift); reshape of a view
// the strides cannot express, copy, concatenate and sliceUpdate run the copy
// kernels; arange fills a range. Each returns nil where no kernel fits (the
// dispatch then runs the primitive on the CPU).

extension CUDAKernelNames {
    /// Copies work on raw elements of 1, 2, 4 or 8 bytes.
    static func copy(_ dtype: DType) -> String? { [1, 2, 4, 8].contains(dtype.size) ? "copy_\(dtype.size)" : nil }

    static func arange(_ dtype: DType) -> String? {
        dtype == .float32 ? "arange_f32" : dtype == .int32 ? "arange_i32" : nil
    }

    static var shapeNames: [String] {
        [1, 2, 4, 8].map { "copy_\($0)" } + [DType.float32, .int32].compactMap(arange)
    }
}

extension CUDADispatch {
    func reshape(_ input: ArrayView, shape: [Int]) throws -> ArrayView? {
        if input.count == 0 { return ArrayView.allocate(shape: shape, dtype: input.dtype) }
        if let strides = ShapeKernels.reshapedStrides(input, to: shape) {
            return input.with(shape: shape, offset: input.offset, strides: strides)
        }
        return try contiguousCopy(input)?.with(shape: shape, offset: 0, strides: contiguousStrides(shape))
    }

    /// Every input copied into its window of a fresh output; nil (before any
    /// launch) when a dtype differs or a window's layout has too many axes.
    func concatenate(_ inputs: [ArrayView], axis: Int, shape: [Int], dtype: DType) throws -> ArrayView? {
        guard inputs.allSatisfy({ $0.dtype == dtype }), CUDAKernelNames.copy(dtype) != nil else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        var regions: [ArrayView] = []
        var start = 0
        for input in inputs {
            let region = out.with(shape: input.shape, offset: start * out.strides[axis], strides: out.strides)
            let layout = StridedLayout.collapse(shape: input.shape, strides: [input.strides, region.strides])
            guard layout.rank <= StridedLayout.maxRank else { return nil }
            regions.append(region)
            start += input.shape[axis]
        }
        for (input, region) in zip(inputs, regions) where try !copy(input, into: region) { return nil }
        return out
    }

    func sliceUpdate(_ inputs: [ArrayView], start: [Int], stride: [Int], dtype: DType) throws -> ArrayView? {
        guard inputs[1].dtype == dtype, let out = try contiguousCopy(inputs[0]) else { return nil }
        let window = ShapeKernels.slice(out, start: start, stride: stride, shape: inputs[1].shape)
        return try copy(inputs[1], into: window) ? out : nil
    }

    func arange(start: Double, step: Double, shape: [Int], dtype: DType) throws -> ArrayView? {
        guard let name = CUDAKernelNames.arange(dtype) else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }
        let args = KernelArguments()
        args.addPointer(try outputPointer(out))
        args.add(int64: out.count)
        args.add(start)
        args.add(step)
        try launch(name, elementwiseGeometry(out.count), args)
        return out
    }

    /// A row-contiguous copy of `input`, or nil when no copy kernel fits.
    func contiguousCopy(_ input: ArrayView) throws -> ArrayView? {
        guard CUDAKernelNames.copy(input.dtype) != nil else { return nil }
        let out = ArrayView.allocate(shape: input.shape, dtype: input.dtype)
        return try copy(input, into: out) ? out : nil
    }

    /// Writes `input` into `output` (same shape, any strides); false when the layout has too many axes.
    func copy(_ input: ArrayView, into output: ArrayView) throws -> Bool {
        guard let name = CUDAKernelNames.copy(input.dtype) else { return false }
        let layout = StridedLayout.collapse(shape: input.shape, strides: [input.strides, output.strides])
        guard layout.rank <= StridedLayout.maxRank else { return false }
        guard input.count > 0 else { return true }
        let args = KernelArguments()
        args.addPointer(try inputPointer(input))
        args.addPointer(try outputPointer(output))
        args.add(int64: input.count)
        args.add(int32: layout.rank)
        args.add(dims: layout.shape)
        args.add(dims: layout.strides[0])
        args.add(dims: layout.strides[1])
        try launch(name, .elementwise(count: input.count, multiprocessors: device.multiprocessors), args)
        return true
    }
}
