// The fast family on the GPU (rows.cu, rope.cu): softmax, logSoftmax,
// rmsNorm and layerNorm as row kernels (a warp per row up to
// `CUDAGeometry.warpRowLimit` elements, else a block), and rope. Inputs at
// any strides. nil where no kernel fits: the dispatch then runs the
// primitive on the CPU.

extension CUDAKernelNames {
    enum RowOp: String, CaseIterable { case softmax, logsoftmax, norm }

    /// softmax/logSoftmax/rmsNorm/layerNorm rows: a warp per row up to
    /// `CUDAGeometry.warpRowLimit` elements, else a block.
    static func rows(_ op: RowOp, _ dtype: DType, rowLength: Int) -> String? {
        guard let s = floatSuffix(dtype) else { return nil }
        return "rows_\(op.rawValue)_\(rowLength <= CUDAGeometry.warpRowLimit ? "warp" : "block")_\(s)"
    }

    static func rope(_ dtype: DType) -> String? { floatSuffix(dtype).map { "rope_\($0)" } }

    static var fastNames: [String] {
        var names: [String] = []
        for t in [DType.float32, .float16, .bfloat16] {
            for op in RowOp.allCases {
                names += [1, CUDAGeometry.warpRowLimit + 1].compactMap { rows(op, t, rowLength: $0) }
            }
            names += rope(t).map { [$0] } ?? []
        }
        return names
    }
}

extension CUDAGeometry {
    /// Rows up to this length get one warp each (rows.cu).
    static let warpRowLimit = 1024

    static let rowsWarpThreads = 256  // ROWS_WARP_THREADS

    static let rowsBlockThreads = 512  // ROWS_BLOCK_THREADS

    /// Row kernels: 8 rows per block (warp teams) or one block per row.
    static func rows(rows: Int, rowLength: Int) -> Launch {
        if rowLength <= warpRowLimit {
            return Launch(grid: (blocks(rows, per: rowsWarpThreads / 32), 1, 1), block: (rowsWarpThreads, 1, 1))
        }
        return Launch(grid: (max(1, rows), 1, 1), block: (rowsBlockThreads, 1, 1))
    }
}

extension CUDADispatch {
    func rowKernel(
        _ op: CUDAKernelNames.RowOp, _ inputs: [ArrayView], dtype: DType, eps: Float = 0, center: Bool = false,
        weight: ArrayView? = nil, bias: ArrayView? = nil
    ) throws -> ArrayView? {
        let x = inputs[0]
        guard x.dtype == dtype, [weight, bias].allSatisfy({ $0 == nil || $0!.dtype == dtype }),
            let layout = RowLayout(shape: x.shape, strides: x.strides),
            let name = CUDAKernelNames.rows(op, dtype, rowLength: layout.length)
        else { return nil }
        let out = ArrayView.allocate(shape: x.shape, dtype: dtype)
        guard out.count > 0 else { return out }
        let args = KernelArguments()
        args.addPointer(try inputPointer(x))
        if op == .norm {
            for p in [weight, bias] {
                if let p {
                    args.addPointer(try inputPointer(p))
                    args.add(int64: p.strides.first ?? 1)
                } else {
                    addNull(args)
                    args.add(int64: 0)
                }
            }
        }
        args.addPointer(try outputPointer(out))
        if op == .norm {
            args.add(eps)
            args.add(int32: center ? 1 : 0)
        }
        args.add(int64: layout.rows)
        args.add(int64: layout.length)
        args.add(int64: layout.stride)
        layout.add(to: args)
        try launch(name, CUDAGeometry.rows(rows: layout.rows, rowLength: layout.length), args)
        return out
    }

    func rope(
        _ x: ArrayView, freqs: ArrayView?, dtype: DType, dims: Int, traditional: Bool, base: Float, scale: Float,
        offset: Int
    ) throws -> ArrayView? {
        guard x.dtype == dtype, x.shape.count >= 2, freqs == nil || freqs!.dtype == .float32,
            let name = CUDAKernelNames.rope(dtype), let layout = RowLayout(shape: x.shape, strides: x.strides)
        else { return nil }
        let out = ArrayView.allocate(shape: x.shape, dtype: dtype)
        let perRow = dims / 2 + (layout.length - dims)
        guard out.count > 0, perRow > 0 else { return out }
        let args = KernelArguments()
        args.addPointer(try inputPointer(x))
        args.addPointer(try outputPointer(out))
        if let freqs {
            args.addPointer(try inputPointer(freqs))
            args.add(int64: freqs.strides.first ?? 1)
        } else {
            addNull(args)
            args.add(int64: 0)
        }
        args.add(int64: layout.rows)
        args.add(int64: layout.length)
        args.add(int64: x.shape[x.shape.count - 2])
        args.add(int32: dims)
        args.add(int32: traditional ? 1 : 0)
        args.add(base)
        args.add(scale)
        args.add(int64: offset)
        args.add(int64: layout.stride)
        layout.add(to: args)
        try launch(name, .elementwise(count: layout.rows * perRow, multiprocessors: device.multiprocessors), args)
        return out
    }
}
