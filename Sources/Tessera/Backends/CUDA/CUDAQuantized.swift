// The quantized family on the GPU (quantized.cu): affine quantization
// (parameters, packing, dequantization) and quantized products (qmv for M up
// to `CUDAGeometry.qmvMaxM`, qmm tiles above; the gather form reads batch
// index pairs). Operands they cannot read in place get contiguous copies.
// nil where no kernel fits: the dispatch then runs the primitive on the CPU.

extension CUDAKernelNames {
    enum QuantizedKernel: String, CaseIterable { case params, pack, dequant, qmvt, qmv, qmm }

    static func quantized(_ kernel: QuantizedKernel, _ dtype: DType) -> String? {
        floatSuffix(dtype).map { "quantized_\(kernel.rawValue)_\($0)" }
    }

    static var quantizedNames: [String] {
        [DType.float32, .float16, .bfloat16].flatMap { t in QuantizedKernel.allCases.compactMap { quantized($0, t) } }
    }
}

extension CUDAGeometry {
    static let qmvMaxM = 8  // QMV_MAX_M

    static let qmmTile = 32  // QMM_TILE

    /// Quantized products: qmv (transposed: a warp per column; else a thread per column) for M <= 8, else qmm tiles.
    static func quantizedMatmul(m: Int, n: Int, batches: Int, transposed: Bool) -> (
        CUDAKernelNames.QuantizedKernel, Launch
    ) {
        if m <= qmvMaxM {
            let kernel: CUDAKernelNames.QuantizedKernel = transposed ? .qmvt : .qmv
            return (
                kernel,
                Launch(
                    grid: (blocks(n, per: transposed ? 8 : 256), min(max(1, batches), maxGridY), 1),
                    block: (256, 1, 1))
            )
        }
        return (
            .qmm,
            Launch(
                grid: (blocks(n, per: qmmTile), blocks(m, per: qmmTile), min(max(1, batches), maxGridY)),
                block: (qmmTile, 8, 1))
        )
    }
}

extension CUDADispatch {
    func quantizeParameters(_ w: ArrayView, shape: [Int], groupSize: Int, bits: Int) throws -> ArrayView? {
        guard let name = CUDAKernelNames.quantized(.params, w.dtype),
            let w = try innerContiguous(w, axes: w.shape.count)
        else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: .float32)
        let groups = w.count / groupSize
        guard groups > 0 else { return out }
        let args = KernelArguments()
        args.addPointer(try inputPointer(w))
        args.addPointer(try outputPointer(out))
        args.add(int64: groups)
        args.add(int32: groupSize)
        args.add(int32: bits)
        try launch(name, .elementwise(count: groups, multiprocessors: device.multiprocessors), args)
        return out
    }

    func quantizePack(_ w: ArrayView, _ parameters: ArrayView, shape: [Int], groupSize: Int, bits: Int) throws
        -> ArrayView?
    {
        guard parameters.dtype == .float32, let name = CUDAKernelNames.quantized(.pack, w.dtype),
            let w = try innerContiguous(w, axes: w.shape.count),
            let p = try innerContiguous(parameters, axes: parameters.shape.count)
        else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: .uint32)
        guard out.count > 0 else { return out }
        let args = KernelArguments()
        args.addPointer(try inputPointer(w))
        args.addPointer(try inputPointer(p))
        args.addPointer(try outputPointer(out))
        args.add(int64: out.count)
        args.add(int64: w.count)
        args.add(int32: groupSize)
        args.add(int32: bits)
        try launch(name, .elementwise(count: out.count, multiprocessors: device.multiprocessors), args)
        return out
    }

    func dequantize(_ inputs: [ArrayView], shape: [Int], dtype: DType, groupSize: Int, bits: Int) throws -> ArrayView? {
        guard inputs[0].dtype == .uint32, inputs[1].dtype == dtype, inputs[2].dtype == dtype,
            let name = CUDAKernelNames.quantized(.dequant, dtype)
        else { return nil }
        var ops: [ArrayView] = []
        for view in inputs.prefix(3) {
            guard let c = try innerContiguous(view, axes: view.shape.count) else { return nil }
            ops.append(c)
        }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }
        let args = KernelArguments()
        for op in ops { args.addPointer(try inputPointer(op)) }
        args.addPointer(try outputPointer(out))
        args.add(int64: out.count)
        args.add(int32: groupSize)
        args.add(int32: bits)
        try launch(name, .elementwise(count: out.count, multiprocessors: device.multiprocessors), args)
        return out
    }

    /// quantizedMatmul (inputs x, then w, scales, biases broadcast to the
    /// output's batch axes or 2-D) and gatherQuantizedMatmul (x [Bx, M, K], w/scales/biases
    /// [Bw, ...], then lhs/rhs uint32 indices of the output's batch shape).
    func quantizedMatmul(
        _ inputs: [ArrayView], shape: [Int], dtype: DType, groupSize: Int, bits: Int, transpose: Bool, gather: Bool
    ) throws -> ArrayView? {
        var inputs = gather ? inputs : ShapeKernels.batchedQuantizedOperands(inputs, rank: shape.count)
        // Half scales under float32 x (a GGUF's, as stored) are widened on the device first.
        for i in 2...3 where inputs[i].dtype != dtype {
            guard let name = CUDAKernelNames.asType(from: inputs[i].dtype, to: dtype),
                let wide = try elementwise(name, [inputs[i]], shape: inputs[i].shape, dtype: dtype)
            else { return nil }
            inputs[i] = wide
        }
        guard inputs[0].dtype == dtype, inputs[1].dtype == .uint32, inputs[2].dtype == dtype, inputs[3].dtype == dtype,
            CUDAKernelNames.floatSuffix(dtype) != nil, bits >= 1, bits <= 8
        else { return nil }
        var ops: [ArrayView] = []
        for view in inputs.prefix(4) {
            guard let c = try innerContiguous(view, axes: gather ? view.shape.count : 2) else { return nil }
            ops.append(c)
        }
        let nd = shape.count
        let m = shape[nd - 2], n = shape[nd - 1], k = ops[0].shape[ops[0].shape.count - 1]
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }
        let batchShape = Array(shape.prefix(nd - 2))
        let batches = batchShape.reduce(1, *)
        var indices: [ArrayView] = []
        var batch = StridedLayout(shape: [], strides: [[], [], [], []])
        if gather {
            for view in inputs[4...5] {
                guard view.dtype == .uint32, let c = try innerContiguous(view, axes: view.shape.count) else {
                    return nil
                }
                indices.append(c)
            }
            try checkGatherIndices(indices[0], indices[1], xBatches: ops[0].shape[0], wBatches: ops[1].shape[0])
            batch.strides = ops.map { op in [op.shape.dropFirst().reduce(1, *)] }
        } else {
            batch = StridedLayout.collapse(
                shape: batchShape, strides: ops.map { Array($0.strides.prefix(nd - 2)) }, linear: false)
            guard batch.rank <= StridedLayout.maxRank else { return nil }
        }
        let (kernel, launch) = CUDAGeometry.quantizedMatmul(m: m, n: n, batches: batches, transposed: transpose)
        guard launch.grid.1 <= CUDAGeometry.maxGridY, let name = CUDAKernelNames.quantized(kernel, dtype) else {
            return nil
        }
        let args = KernelArguments()
        if kernel == .qmm { args.add(int32: transpose ? 1 : 0) }
        for op in ops { args.addPointer(try inputPointer(op)) }
        args.addPointer(try outputPointer(out))
        for value in [m, n, k] { args.add(int64: value) }
        args.add(int32: groupSize)
        args.add(int32: bits)
        args.add(int64: batches)
        if gather {
            args.addPointer(try inputPointer(indices[0]))
            args.addPointer(try inputPointer(indices[1]))
        } else {
            addNull(args)
            addNull(args)
        }
        args.add(int32: batch.rank)
        args.add(dims: batch.shape)
        for strides in batch.strides { args.add(dims: strides) }
        try self.launch(name, launch, args)
        return out
    }

    /// The CPU's check, on the host copies of the indices (small: one per product).
    private func checkGatherIndices(_ lhs: ArrayView, _ rhs: ArrayView, xBatches: Int, wBatches: Int) throws {
        try device.synchronize(stream: stream)
        let pl = try lhs.hostPointer(UInt32.self), pr = try rhs.hostPointer(UInt32.self)
        for i in 0..<lhs.count {
            let xi = Int(pl[i]), wi = Int(pr[i])
            guard xi < xBatches, wi < wBatches else {
                throw TesseraError.invalidData(
                    op: "gatherQuantizedMatmul",
                    reason: "index pair (\(xi), \(wi)) is out of range for \(xBatches) x batches and "
                        + "\(wBatches) weight batches")
            }
        }
    }
}
