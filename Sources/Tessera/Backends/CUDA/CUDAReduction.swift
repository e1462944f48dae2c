// The reduction family on the GPU (reduce.cu, argreduce.cu): sum/prod/max/
// min/all/any with one block per output element (kept and reduced axes
// collapsed separately), argMax/argMin with a warp per output. nil where no
// kernel fits: the dispatch then runs the primitive on the CPU.

extension CUDAKernelNames {
    static func reduce(_ op: ReduceOp, input: DType, output: DType) -> String? {
        guard input == output, let s = suffix(input) else { return nil }
        switch (op, input) {
        case (.all, .bool), (.any, .bool): return "reduce_\(op.rawValue)_b8"
        case (.sum, _), (.prod, _), (.max, _), (.min, _):
            return input == .bool ? nil : "reduce_\(op.rawValue)_\(s)"
        default: return nil
        }
    }

    /// argMax/argMin over float32/float16/bfloat16/int32 (uint32 output).
    static func argReduce(_ op: ArgReduceOp, input: DType) -> String? {
        guard input == .int32 || floatSuffix(input) != nil, let s = suffix(input) else { return nil }
        return "argreduce_\(op == .argMax ? "max" : "min")_\(s)"
    }

    static var reductionNames: [String] {
        var names: [String] = []
        for t in [DType.float32, .float16, .bfloat16, .int32, .bool] {
            names += ReduceOp.allCases.compactMap { reduce($0, input: t, output: t) }
            names += ArgReduceOp.allCases.compactMap { argReduce($0, input: t) }
        }
        return names
    }
}

extension CUDAGeometry {
    /// argreduce: a warp per output, 8 per block.
    static func argReduce(outputs: Int) -> Launch {
        Launch(grid: (blocks(outputs, per: 8), 1, 1), block: (256, 1, 1))
    }
}

extension CUDADispatch {
    /// One block per output element; kept and reduced axes collapsed separately.
    func reduce(_ name: String, _ input: ArrayView, axes: [Int], shape: [Int], dtype: DType) throws -> ArrayView? {
        let reduced = Set(axes)
        let keptAxes = input.shape.indices.filter { !reduced.contains($0) }
        let reducedAxes = input.shape.indices.filter { reduced.contains($0) }
        let kept = StridedLayout.collapse(
            shape: keptAxes.map { input.shape[$0] }, strides: [keptAxes.map { input.strides[$0] }], linear: false)
        let red = StridedLayout.collapse(
            shape: reducedAxes.map { input.shape[$0] }, strides: [reducedAxes.map { input.strides[$0] }], linear: false)
        guard kept.rank <= StridedLayout.maxRank, red.rank <= StridedLayout.maxRank else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }
        let args = KernelArguments()
        args.addPointer(try inputPointer(input))
        args.addPointer(try outputPointer(out))
        args.add(int64: reducedAxes.reduce(1) { $0 * input.shape[$1] })
        args.add(int32: kept.rank)
        args.add(dims: kept.shape)
        args.add(dims: kept.strides[0])
        args.add(int32: red.rank)
        args.add(dims: red.shape)
        args.add(dims: red.strides[0])
        try launch(name, .reduction(outputs: out.count), args)
        return out
    }

    func argReduce(_ op: ArgReduceOp, axis: Int, _ x: ArrayView, shape: [Int]) throws -> ArrayView? {
        guard let name = CUDAKernelNames.argReduce(op, input: x.dtype),
            let layout = RowLayout(shape: x.shape, strides: x.strides, axis: axis)
        else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: .uint32)
        guard out.count > 0 else { return out }
        let args = KernelArguments()
        args.addPointer(try inputPointer(x))
        args.addPointer(try outputPointer(out))
        args.add(int64: out.count)
        args.add(int64: layout.length)
        args.add(int64: layout.stride)
        layout.add(to: args)
        try launch(name, CUDAGeometry.argReduce(outputs: out.count), args)
        return out
    }
}
