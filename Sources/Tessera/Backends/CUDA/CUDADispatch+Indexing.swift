// GPU dispatch for randomBits, gather/scatter, sort, scan and linear algebra
// (kernels: random.cu, gather.cu, scatter.cu, sort.cu, scan.cu, linalg.cu).
// Returns nil where no kernel fits (a dtype without a kernel, more than 8
// axes after merging, matrices larger than CUDAKernelNames.linalgMaxSize);
// the caller then falls back to the CPU with a warning.

extension CUDABackend {
    static func hasIndexingKernels(_ primitive: Primitive) -> Bool {
        switch primitive {
        case .randomBits, .gather, .scatter, .sort, .scan, .inverse, .solve, .cholesky, .qr, .svd, .eigh: return true
        default: return false
        }
    }
}

/// Launch plans of the indexing kernels: pure, unit-tested without a GPU.
enum IndexingPlan {
    static let sortChunk = 2048  // SORT_CHUNK in sort.cu
    static let maxGridY = 65535
    static let scanThreads = 256  // SCAN_THREADS in scan.cu

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

    /// Scans: a block per row for long rows that are few enough to leave
    /// blocks idle otherwise; a thread per row (the CPU's order) else.
    static func scanUsesBlock(rowLength n: Int, rows: Int, multiprocessors: Int) -> Bool {
        n > 64 && rows < max(1, multiprocessors) * 256
    }

    /// The kept axes of a row-wise op along `axis` (shape and per-operand
    /// strides merged), or nil when more than 8 remain.
    static func rows(shape: [Int], axis: Int, strides: [[Int]]) -> StridedLayout? {
        var kept = shape
        kept.remove(at: axis)
        let keptStrides = strides.map { s -> [Int] in
            var s = s
            s.remove(at: axis)
            return s
        }
        let layout = StridedLayout.collapse(shape: kept, strides: keptStrides, linear: false)
        return layout.rank <= StridedLayout.maxRank ? layout : nil
    }

    static let linalgThreads = 128

    /// A linear-algebra launch: the kernel's part/flag/rhs arguments, its
    /// dynamic shared memory, and the error a nonzero status means.
    struct Linalg: Equatable {
        var part = 0
        var flag = 0
        var rhs = 0
        var sharedBytes: Int
        var failure: Failure?

        struct Failure: Equatable {
            let op: String
            let reason: String
        }
    }

    /// nil when the matrices are larger than CUDAKernelNames.linalgMaxSize
    /// (or the primitive is not a factorization): those run on the CPU.
    static func linalg(_ primitive: Primitive, shape: [Int], rhs: Int) -> Linalg? {
        guard shape.count >= 2 else { return nil }
        let m = shape[shape.count - 2], n = shape[shape.count - 1]
        let limit = CUDAKernelNames.linalgMaxSize
        guard m <= limit, n <= limit else { return nil }
        let p = max(m, n), q = min(m, n)
        switch primitive {
        case .inverse:
            return Linalg(sharedBytes: (2 * n * n + n) * 8, failure: .init(op: "inv", reason: "singular"))
        case .solve:
            return Linalg(rhs: rhs, sharedBytes: (n * n + n) * 8, failure: .init(op: "solve", reason: "singular"))
        case .cholesky(let upper):
            return Linalg(flag: upper ? 1 : 0, sharedBytes: n * n * 8,
                          failure: .init(op: "cholesky", reason: "not positive definite"))
        case .qr(let part):
            return Linalg(part: part, sharedBytes: (m * n + q) * 8)
        case .svd(let part):
            return Linalg(part: part, sharedBytes: (p * q + q * q + p * p + q) * 8 + q * 4)
        case .eigh(let part, let upper):
            return Linalg(part: part, flag: upper ? 1 : 0, sharedBytes: 2 * n * n * 8 + n * 4)
        default:
            return nil
        }
    }
}

extension CUDADispatch {
    func evaluateIndexing(_ primitive: Primitive, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        switch primitive {
        case .randomBits:
            return try randomBits(inputs[0], shape: shape, dtype: dtype)
        case .gather(let axes, let sliceSizes):
            return try gather(inputs, axes: axes, sliceSizes: sliceSizes, shape: shape, dtype: dtype)
        case .scatter(let op, let axes):
            return try scatter(op, inputs, axes: axes, shape: shape, dtype: dtype)
        case .sort(let op, let axis):
            return try sort(op, inputs[0], axis: axis, shape: shape, dtype: dtype)
        case .scan(let op, let axis, let reverse, let inclusive):
            return try scan(op, inputs[0], axis: axis, reverse: reverse, inclusive: inclusive, dtype: dtype)
        case .inverse, .solve, .cholesky, .qr, .svd, .eigh:
            return try linalg(primitive, inputs, shape: shape, dtype: dtype)
        default:
            return nil
        }
    }

    private func elementwiseGeometry(_ count: Int) -> LaunchGeometry {
        LaunchGeometry.elementwise(count: count, multiprocessors: device.multiprocessors)
    }

    // MARK: random

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

    // MARK: gather / scatter

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

    func gather(_ inputs: [ArrayView], axes: [Int], sliceSizes: [Int], shape: [Int], dtype: DType) throws -> ArrayView? {
        let x = inputs[0], indices = Array(inputs.dropFirst())
        guard let name = CUDAKernelNames.gather(x.dtype), x.dtype == dtype,
              indices.allSatisfy({ CUDAKernelNames.gatherStarts(index: $0.dtype) != nil }) else { return nil }
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
              indices.allSatisfy({ CUDAKernelNames.gatherStarts(index: $0.dtype) != nil }) else { return nil }
        let windowShape = Array(updates.shape.suffix(x.shape.count))
        let batch = updates.shape.dropLast(x.shape.count).reduce(1, *), window = windowShape.reduce(1, *)
        let updateLayout = StridedLayout.collapse(shape: updates.shape, strides: [updates.strides])
        guard updateLayout.rank <= StridedLayout.maxRank, batch < Int(Int32.max),
              let out = try contiguousCopy(x) else { return nil }
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

    // MARK: sort / scan

    func sort(_ op: SortOp, _ x: ArrayView, axis: Int, shape: [Int], dtype: DType) throws -> ArrayView? {
        let wantsIndices: Bool
        switch op {
        case .sort, .partition: wantsIndices = false
        case .argSort, .argPartition: wantsIndices = true
        }
        guard let blockName = CUDAKernelNames.sortBlock(x.dtype), let emitName = CUDAKernelNames.sortEmit(x.dtype),
              dtype == (wantsIndices ? .uint32 : x.dtype) else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        let n = x.shape[axis]
        guard out.count > 0, n > 0 else { return out }
        guard n < Int(UInt32.max), let rows = IndexingPlan.rows(shape: x.shape, axis: axis, strides: [x.strides, out.strides])
        else { return nil }
        let rowCount = out.count / n
        let plan = IndexingPlan.sort(rowLength: n)
        var scratch: [ArrayView] = []
        if plan.chunks > 1 {
            scratch = [ArrayView.allocate(shape: [rowCount * n], dtype: .uint64),
                       ArrayView.allocate(shape: [rowCount * n], dtype: .uint64)]
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
        try launch(blockName, grid: (plan.chunks, min(rowCount, IndexingPlan.maxGridY), 1), block: (plan.threads, 1, 1),
                   sharedBytes: plan.sharedBytes, block)
        guard plan.chunks > 1 else { return out }
        var width = IndexingPlan.sortChunk
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

    func scan(_ op: ScanOp, _ x: ArrayView, axis: Int, reverse: Bool, inclusive: Bool, dtype: DType) throws -> ArrayView? {
        guard x.dtype == dtype else { return nil }
        let out = ArrayView.allocate(shape: x.shape, dtype: dtype)
        let n = x.shape[axis]
        guard out.count > 0, n > 0 else { return out }
        let rowCount = out.count / n
        let block = IndexingPlan.scanUsesBlock(rowLength: n, rows: rowCount, multiprocessors: device.multiprocessors)
        guard let name = CUDAKernelNames.scan(op, dtype, block: block),
              let rows = IndexingPlan.rows(shape: x.shape, axis: axis, strides: [x.strides, out.strides]) else { return nil }
        let args = KernelArguments()
        args.addPointer(try inputPointer(x))
        args.addPointer(try outputPointer(out))
        args.add(int64: n)
        args.add(int64: rowCount)
        args.add(int32: rows.rank)
        args.add(dims: rows.shape)
        args.add(dims: rows.strides[0])
        args.add(dims: rows.strides[1])
        args.add(int64: x.strides[axis])
        args.add(int64: out.strides[axis])
        args.add(int32: reverse ? 1 : 0)
        args.add(int32: inclusive ? 1 : 0)
        if block {
            try launch(name, grid: (rowCount, 1, 1), block: (IndexingPlan.scanThreads, 1, 1), sharedBytes: 0, args)
        } else {
            try launch(name, elementwiseGeometry(rowCount), args)
        }
        return out
    }

    // MARK: linear algebra

    func linalg(_ primitive: Primitive, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        let a = inputs[0], nd = a.shape.count
        guard let name = CUDAKernelNames.linalg(primitive), dtype == .float64, inputs.allSatisfy({ $0.dtype == .float64 })
        else { return nil }
        guard let plan = IndexingPlan.linalg(primitive, shape: a.shape, rhs: inputs.count > 1 ? inputs[1].shape.last! : 0)
        else {
            let limit = CUDAKernelNames.linalgMaxSize
            return try fallback(primitive, inputs, shape, dtype, "of matrices larger than \(limit)×\(limit) has no CUDA kernel")
        }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        let batchShape = Array(a.shape.prefix(nd - 2))
        let batch = batchShape.reduce(1, *)
        guard out.count > 0, batch > 0 else { return out }
        let b = inputs.count > 1 ? inputs[1] : a
        let layout = StridedLayout.collapse(
            shape: batchShape, strides: [Array(a.strides.prefix(nd - 2)), Array(b.strides.prefix(nd - 2))], linear: false)
        guard layout.rank <= StridedLayout.maxRank else { return nil }
        let status = ArrayView.allocate(shape: [batch], dtype: .int32)
        let args = KernelArguments()
        args.addPointer(try inputPointer(a))
        args.addPointer(try inputPointer(b))
        args.addPointer(try outputPointer(out))
        args.addPointer(try outputPointer(status))
        args.add(int64: batch)
        args.add(int32: a.shape[nd - 2])
        args.add(int32: a.shape[nd - 1])
        args.add(int32: plan.rhs)
        args.add(int32: plan.part)
        args.add(int32: plan.flag)
        args.add(int32: layout.rank)
        args.add(dims: layout.shape)
        args.add(dims: layout.strides[0])
        args.add(dims: layout.strides[1])
        args.add(int64: a.strides[nd - 2])
        args.add(int64: a.strides[nd - 1])
        args.add(int64: b.strides[nd - 2])
        args.add(int64: b.strides[nd - 1])
        try launch(name, grid: (batch, 1, 1), block: (IndexingPlan.linalgThreads, 1, 1), sharedBytes: plan.sharedBytes, args)
        if let failure = plan.failure {
            let flags = try status.hostPointer(Int32.self)
            if let first = (0..<batch).first(where: { flags[$0] != 0 }) {
                throw TesseraError.invalidData(op: failure.op, reason: "matrix \(first) of the batch is \(failure.reason)")
            }
        }
        return out
    }
}
