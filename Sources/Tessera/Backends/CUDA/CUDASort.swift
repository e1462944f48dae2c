// The sort family on the GPU (sort.cu): sort, argSort, partition and
// argPartition along an axis: a bitonic sort per row in one block when the
// row fits a chunk, else sorted chunks merged pass by pass. nil where no
// kernel fits: the dispatch then runs the primitive on the CPU.

extension CUDAKernelNames {
    static let sortTypes: [DType: String] = [
        .float32: "f32", .float16: "f16", .bfloat16: "bf16", .int32: "i32", .uint32: "u32", .int16: "i16",
        .uint16: "u16", .int8: "i8", .uint8: "u8", .bool: "b8"
    ]

    static func sortBlock(_ dtype: DType) -> String? { sortTypes[dtype].map { "sort_block_\($0)" } }

    static let sortMerge = "sort_merge"

    static let sortEmitIndex = "sort_emit_index"

    static func sortEmit(_ dtype: DType) -> String? {
        sortTypes[dtype] != nil ? "sort_emit_\(dtype.size)" : nil
    }

    static var sortNames: [String] {
        [sortMerge, sortEmitIndex] + allDTypes.flatMap { [sortBlock($0), sortEmit($0)].compactMap { $0 } }
    }
}

extension CUDAGeometry {
    static let sortChunk = 2048  // SORT_CHUNK in sort.cu

    /// How a row of `n` keys is sorted: one block per row when it fits a
    /// chunk (`pow2` keys, the next power of two ≥ n), else chunks of
    /// `sortChunk` sorted by blocks and merged in `mergePasses` passes.
    struct Sort: Equatable {
        var pow2: Int
        var chunks: Int
        var threads: Int
        var mergePasses: Int
        var sharedBytes: Int { pow2 * 8 }
    }

    static func sort(rowLength n: Int) -> Sort {
        if n <= sortChunk {
            var p = 2
            while p < n { p <<= 1 }
            return Sort(pow2: p, chunks: 1, threads: min(1024, p / 2), mergePasses: 0)
        }
        let chunks = (n + sortChunk - 1) / sortChunk
        var passes = 0, width = sortChunk
        while width < n { width <<= 1; passes += 1 }
        return Sort(pow2: sortChunk, chunks: chunks, threads: min(1024, sortChunk / 2), mergePasses: passes)
    }
}

extension CUDADispatch {
    func sort(_ op: SortOp, _ x: ArrayView, axis: Int, shape: [Int], dtype: DType) throws -> ArrayView? {
        let wantsIndices: Bool
        switch op {
        case .sort, .partition: wantsIndices = false
        case .argSort, .argPartition: wantsIndices = true
        }
        guard let blockName = CUDAKernelNames.sortBlock(x.dtype), let emitName = CUDAKernelNames.sortEmit(x.dtype),
            dtype == (wantsIndices ? .uint32 : x.dtype)
        else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        let n = x.shape[axis]
        guard out.count > 0, n > 0 else { return out }
        guard n < Int(UInt32.max),
            let rows = StridedLayout.rows(shape: x.shape, axis: axis, strides: [x.strides, out.strides])
        else { return nil }
        let rowCount = out.count / n
        let plan = CUDAGeometry.sort(rowLength: n)
        var scratch: [ArrayView] = []
        if plan.chunks > 1 {
            scratch = [
                ArrayView.allocate(shape: [rowCount * n], dtype: .uint64),
                ArrayView.allocate(shape: [rowCount * n], dtype: .uint64)
            ]
        }
        let input = try inputPointer(x), output = try outputPointer(out)
        func addRows(_ args: KernelArguments, output: Bool = true, input: Bool = true) {
            args.add(int32: rows.rank)
            args.add(dims: rows.shape)
            if input { args.add(dims: rows.strides[0]) }
            if output { args.add(dims: rows.strides[1]) }
            if input { args.add(int64: x.strides[axis]) }
            if output { args.add(int64: out.strides[axis]) }
        }
        let block = KernelArguments()
        block.addPointer(input)
        block.addPointer(output)
        block.addPointer(output)
        block.addPointer(scratch.isEmpty ? output : try outputPointer(scratch[0]))
        block.add(int64: n)
        block.add(int64: rowCount)
        block.add(int32: plan.pow2)
        block.add(int32: wantsIndices ? 1 : 0)
        addRows(block)
        try launch(
            blockName, grid: (plan.chunks, min(rowCount, CUDAGeometry.maxGridY), 1), block: (plan.threads, 1, 1),
            sharedBytes: plan.sharedBytes, block)
        guard plan.chunks > 1 else { return out }
        var width = CUDAGeometry.sortChunk
        for _ in 0..<plan.mergePasses {
            let args = KernelArguments()
            args.addPointer(try inputPointer(scratch[0]))
            args.addPointer(try outputPointer(scratch[1]))
            args.add(int64: n)
            args.add(int64: width)
            args.add(int64: rowCount * n)
            try launch(CUDAKernelNames.sortMerge, elementwiseGeometry(rowCount * n), args)
            scratch.swapAt(0, 1)
            width *= 2
        }
        let emit = KernelArguments()
        emit.addPointer(try inputPointer(scratch[0]))
        if wantsIndices {
            emit.addPointer(output)
            emit.add(int64: n)
            emit.add(int64: rowCount * n)
            addRows(emit, input: false)
            try launch(CUDAKernelNames.sortEmitIndex, elementwiseGeometry(rowCount * n), emit)
        } else {
            emit.addPointer(input)
            emit.addPointer(output)
            emit.add(int64: n)
            emit.add(int64: rowCount * n)
            addRows(emit)
            try launch(emitName, elementwiseGeometry(rowCount * n), emit)
        }
        return out
    }
}
