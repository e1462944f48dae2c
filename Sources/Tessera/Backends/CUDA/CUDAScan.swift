// The scan family on the GPU (scan.cu): cumsum/cumprod/cummax/cummin along
// an axis, forwards or reversed: a block per row for few long rows, else a
// thread per row (the CPU's order). nil where no kernel fits: the dispatch
// then runs the primitive on the CPU.

extension CUDAKernelNames {
    /// cumsum/cumprod/cummax/cummin for float64, float32, float16, bfloat16,
    /// int64, int32, uint32; cummax/cummin for bool.
    static func scan(_ op: ScanOp, _ dtype: DType, block: Bool) -> String? {
        guard let s = dtype == .bool ? (op == .max || op == .min ? "b8" : nil) : accumulatingTypes[dtype] else {
            return nil
        }
        return "scan_\(block ? "block" : "row")_\(op.rawValue)_\(s)"
    }

    static var scanNames: [String] {
        allDTypes.flatMap { t in ScanOp.allCases.flatMap { op in [true, false].compactMap { scan(op, t, block: $0) } } }
    }
}

extension CUDAGeometry {
    static let scanThreads = 256  // SCAN_THREADS in scan.cu

    /// Scans: a block per row for long rows that are few enough to leave
    /// blocks idle otherwise; a thread per row (the CPU's order) else.
    static func scanUsesBlock(rowLength n: Int, rows: Int, multiprocessors: Int) -> Bool {
        n > 64 && rows < max(1, multiprocessors) * 256
    }
}

extension CUDADispatch {
    func scan(_ op: ScanOp, _ x: ArrayView, axis: Int, reverse: Bool, inclusive: Bool, dtype: DType) throws
        -> ArrayView?
    {
        guard x.dtype == dtype else { return nil }
        let out = ArrayView.allocate(shape: x.shape, dtype: dtype)
        let n = x.shape[axis]
        guard out.count > 0, n > 0 else { return out }
        let rowCount = out.count / n
        let block = CUDAGeometry.scanUsesBlock(rowLength: n, rows: rowCount, multiprocessors: device.multiprocessors)
        guard let name = CUDAKernelNames.scan(op, dtype, block: block),
            let rows = StridedLayout.rows(shape: x.shape, axis: axis, strides: [x.strides, out.strides])
        else { return nil }
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
            try launch(name, grid: (rowCount, 1, 1), block: (CUDAGeometry.scanThreads, 1, 1), sharedBytes: 0, args)
        } else {
            try launch(name, elementwiseGeometry(rowCount), args)
        }
        return out
    }
}
