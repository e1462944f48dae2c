// The indexing family on the GPU (gather.cu, scatter.cu): gather and
// scatter through window starts computed on the device from the index
// arrays; scatter `set` with several updates of one target lets the last win,
// as on the CPU. nil where no kernel fits: the dispatch then runs the
// primitive on the CPU.

extension CUDAKernelNames {
    /// Suffixes of the integer dtypes an index array may have (gather_starts_*).
    static func indexSuffix(_ dtype: DType) -> String? {
        switch dtype {
        case .int8: return "i8"
        case .int16: return "i16"
        case .int32: return "i32"
        case .int64: return "i64"
        case .uint8: return "u8"
        case .uint16: return "u16"
        case .uint32: return "u32"
        case .uint64: return "u64"
        default: return nil
        }
    }

    static func gatherStarts(index: DType) -> String? { indexSuffix(index).map { "gather_starts_\($0)" } }

    static let gatherZeroStarts = "gather_zero_starts"

    /// Gathers move elements as bits of their width.
    static func gather(_ dtype: DType) -> String? { [1, 2, 4, 8].contains(dtype.size) ? "gather_\(dtype.size)" : nil }

    static let scatterFill = "scatter_fill_i32"

    static let scatterWinner = "scatter_winner"

    /// `set` by element width; add/prod/max/min for float64, float32, float16,
    /// bfloat16, int64, int32, uint32 and bool.
    static func scatter(_ op: ScatterOp, _ dtype: DType) -> String? {
        if op == .set { return [1, 2, 4, 8].contains(dtype.size) ? "scatter_set_\(dtype.size)" : nil }
        guard let s = dtype == .bool ? "b8" : accumulatingTypes[dtype] else { return nil }
        return "scatter_\(op.rawValue)_\(s)"
    }

    static var indexingNames: [String] {
        var names = [gatherZeroStarts, scatterFill, scatterWinner]
        for t in allDTypes {
            names += [gatherStarts(index: t), gather(t)].compactMap { $0 }
            names += ScatterOp.allCases.compactMap { scatter($0, t) }
        }
        return names
    }
}

extension CUDADispatch {
    /// Per position of the index shape, the element offset (under `strides`)
    /// of the window start, in a fresh int64 device array; nil if a kernel is missing.
    private func windowStarts(
        _ indices: [ArrayView], axes: [Int], shape: [Int], window: [Int], strides: [Int], count: Int
    ) throws -> ArrayView? {
        let starts = ArrayView.allocate(shape: [count], dtype: .int64)
        let startsPointer = try outputPointer(starts)
        if indices.isEmpty {
            let args = KernelArguments()
            args.addPointer(startsPointer)
            args.add(int64: count)
            try launch(CUDAKernelNames.gatherZeroStarts, elementwiseGeometry(count), args)
            return starts
        }
        for (j, (index, axis)) in zip(indices, axes).enumerated() {
            guard let name = CUDAKernelNames.gatherStarts(index: index.dtype), index.count == count else { return nil }
            let layout = StridedLayout.collapse(shape: index.shape, strides: [index.strides])
            guard layout.rank <= StridedLayout.maxRank else { return nil }
            let args = KernelArguments()
            args.addPointer(try inputPointer(index))
            args.addPointer(startsPointer)
            args.add(int64: count)
            args.add(int32: layout.rank)
            args.add(dims: layout.shape)
            args.add(dims: layout.strides[0])
            args.add(int64: shape[axis])
            args.add(int64: shape[axis] - window[axis])
            args.add(int64: strides[axis])
            args.add(int32: j == 0 ? 0 : 1)
            try launch(name, elementwiseGeometry(count), args)
        }
        return starts
    }

    func gather(_ inputs: [ArrayView], axes: [Int], sliceSizes: [Int], shape: [Int], dtype: DType) throws -> ArrayView?
    {
        let x = inputs[0], indices = Array(inputs.dropFirst())
        guard let name = CUDAKernelNames.gather(x.dtype), x.dtype == dtype,
            indices.allSatisfy({ CUDAKernelNames.gatherStarts(index: $0.dtype) != nil })
        else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        let window = sliceSizes.reduce(1, *)
        guard out.count > 0, window > 0 else { return out }
        let batch = out.count / window
        let windowLayout = StridedLayout.collapse(shape: sliceSizes, strides: [x.strides])
        guard windowLayout.rank <= StridedLayout.maxRank,
            let starts = try windowStarts(
                indices, axes: axes, shape: x.shape, window: sliceSizes, strides: x.strides, count: batch)
        else { return nil }
        let args = KernelArguments()
        args.addPointer(try inputPointer(x))
        args.addPointer(try inputPointer(starts))
        args.addPointer(try outputPointer(out))
        args.add(int64: out.count)
        args.add(int64: window)
        args.add(int32: windowLayout.rank)
        args.add(dims: windowLayout.shape)
        args.add(dims: windowLayout.strides[0])
        try launch(name, elementwiseGeometry(out.count), args)
        return out
    }

    func scatter(_ op: ScatterOp, _ inputs: [ArrayView], axes: [Int], shape: [Int], dtype: DType) throws -> ArrayView? {
        let x = inputs[0], updates = inputs[1], indices = Array(inputs.dropFirst(2))
        guard x.dtype == dtype, updates.dtype == dtype, let name = CUDAKernelNames.scatter(op, dtype),
            indices.allSatisfy({ CUDAKernelNames.gatherStarts(index: $0.dtype) != nil })
        else { return nil }
        let windowShape = Array(updates.shape.suffix(x.shape.count))
        let batch = updates.shape.dropLast(x.shape.count).reduce(1, *), window = windowShape.reduce(1, *)
        let updateLayout = StridedLayout.collapse(shape: updates.shape, strides: [updates.strides])
        guard updateLayout.rank <= StridedLayout.maxRank, batch < Int(Int32.max),
            let out = try contiguousCopy(x)
        else { return nil }
        guard batch > 0, window > 0, out.count > 0 else { return out }
        let windowLayout = StridedLayout.collapse(shape: windowShape, strides: [out.strides])
        guard windowLayout.rank <= StridedLayout.maxRank,
            let starts = try windowStarts(
                indices, axes: axes, shape: x.shape, window: windowShape, strides: out.strides, count: batch)
        else { return nil }
        let n = batch * window
        let startsPointer = try inputPointer(starts)
        func addPlacement(_ args: KernelArguments) {
            args.addPointer(startsPointer)
            args.add(int64: n)
            args.add(int64: window)
            args.add(int32: windowLayout.rank)
            args.add(dims: windowLayout.shape)
            args.add(dims: windowLayout.strides[0])
            args.add(int32: updateLayout.rank)
            args.add(dims: updateLayout.shape)
            args.add(dims: updateLayout.strides[0])
        }
        if op == .set && batch == 1 {
            // One window: no target is written twice.
            let args = KernelArguments()
            args.addPointer(try inputPointer(updates))
            args.add(UInt64(0))
            args.addPointer(try outputPointer(out))
            addPlacement(args)
            try launch(name, elementwiseGeometry(n), args)
        } else if op == .set {
            // The last update of each target wins, as on the CPU.
            let winner = ArrayView.allocate(shape: [out.count], dtype: .int32)
            let winnerPointer = try outputPointer(winner)
            let fill = KernelArguments()
            fill.addPointer(winnerPointer)
            fill.add(int64: out.count)
            fill.add(Int32(-1))
            try launch(CUDAKernelNames.scatterFill, elementwiseGeometry(out.count), fill)
            let mark = KernelArguments()
            mark.addPointer(winnerPointer)
            addPlacement(mark)
            try launch(CUDAKernelNames.scatterWinner, elementwiseGeometry(n), mark)
            let args = KernelArguments()
            args.addPointer(try inputPointer(updates))
            args.addPointer(winnerPointer)
            args.addPointer(try outputPointer(out))
            addPlacement(args)
            try launch(name, elementwiseGeometry(n), args)
        } else {
            let args = KernelArguments()
            args.addPointer(try inputPointer(updates))
            args.addPointer(try outputPointer(out))
            addPlacement(args)
            try launch(name, elementwiseGeometry(n), args)
        }
        return out
    }
}
