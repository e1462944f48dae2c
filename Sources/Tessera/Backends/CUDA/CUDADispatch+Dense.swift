// GPU dispatch for argReduce, matmul (cuBLASLt and gemv), quantization, softmax/logSoftmax, rmsNorm/layerNorm, rope, attention.
// Returns nil where no kernel fits (the caller falls back to the CPU): float64
// and other dtypes, ranks above 8 after merging axes, attention value heads
// above 256. Inputs may have any strides: the row, rope, argreduce,
// attention and gemv kernels take strides; cuBLASLt and the quantized
// kernels get contiguous copies of operands they cannot read in place.

extension CUDABackend {
    static func hasDenseKernels(_ primitive: Primitive) -> Bool {
        switch primitive {
        case .argReduce, .matmul, .affineQuantizeParameters, .affineQuantizePack, .affineDequantize,
            .quantizedMatmul, .gatherQuantizedMatmul, .softmax, .logSoftmax, .rmsNorm, .layerNorm, .rope,
            .scaledDotProductAttention:
            return true
        default:
            return false
        }
    }
}

/// The rows of an array along its last axis as the row kernels take them.
struct RowLayout: Equatable {
    let rows: Int
    let length: Int
    let stride: Int
    let kept: StridedLayout

    /// nil when the other axes do not fit in 8 after merging.
    init?(shape: [Int], strides: [Int], axis: Int? = nil) {
        let axis = axis ?? shape.count - 1
        length = shape.isEmpty ? 1 : shape[axis]
        stride = shape.isEmpty ? 1 : strides[axis]
        let keptAxes = shape.indices.filter { $0 != axis }
        rows = keptAxes.reduce(1) { $0 * shape[$1] }
        kept = StridedLayout.collapse(
            shape: keptAxes.map { shape[$0] }, strides: [keptAxes.map { strides[$0] }], linear: false)
        guard kept.rank <= StridedLayout.maxRank else { return nil }
    }

    func add(to args: KernelArguments) {
        args.add(int32: kept.rank)
        args.add(dims: kept.shape)
        args.add(dims: kept.strides[0])
    }
}

extension CUDADispatch {
    func evaluateDense(_ primitive: Primitive, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        switch primitive {
        case .argReduce(let op, let axis):
            return try argReduce(op, axis: axis, inputs[0], shape: shape)
        case .matmul:
            return try matmul(inputs[0], inputs[1], shape: shape, dtype: dtype)
        case .softmax:
            return try rowKernel(.softmax, inputs, dtype: dtype)
        case .logSoftmax:
            return try rowKernel(.logsoftmax, inputs, dtype: dtype)
        case .rmsNorm(let eps, let hasWeight):
            return try rowKernel(.norm, inputs, dtype: dtype, eps: eps, center: false,
                                 weight: hasWeight ? inputs[1] : nil, bias: nil)
        case .layerNorm(let eps, let hasWeight, let hasBias):
            return try rowKernel(.norm, inputs, dtype: dtype, eps: eps, center: true, weight: hasWeight ? inputs[1] : nil,
                                 bias: hasBias ? inputs[hasWeight ? 2 : 1] : nil)
        case .rope(let dims, let traditional, let base, let scale, let offset, let hasFreqs):
            return try rope(inputs[0], freqs: hasFreqs ? inputs[1] : nil, dtype: dtype, dims: dims,
                            traditional: traditional, base: base, scale: scale, offset: offset)
        case .scaledDotProductAttention(let scale, let causal):
            return try attention(inputs, shape: shape, dtype: dtype, scale: scale, causal: causal)
        case .affineQuantizeParameters(let groupSize, let bits):
            return try quantizeParameters(inputs[0], shape: shape, groupSize: groupSize, bits: bits)
        case .affineQuantizePack(let groupSize, let bits):
            return try quantizePack(inputs[0], inputs[1], shape: shape, groupSize: groupSize, bits: bits)
        case .affineDequantize(let groupSize, let bits):
            return try dequantize(inputs, shape: shape, dtype: dtype, groupSize: groupSize, bits: bits)
        case .quantizedMatmul(let groupSize, let bits, let transpose):
            return try quantizedMatmul(inputs, shape: shape, dtype: dtype, groupSize: groupSize, bits: bits,
                                       transpose: transpose, gather: false)
        case .gatherQuantizedMatmul(let groupSize, let bits, let transpose):
            return try quantizedMatmul(inputs, shape: shape, dtype: dtype, groupSize: groupSize, bits: bits,
                                       transpose: transpose, gather: true)
        default:
            return nil
        }
    }

    private func launch(_ name: String, _ l: DenseGeometry.Launch, _ args: KernelArguments) throws {
        try launch(name, grid: l.grid, block: l.block, sharedBytes: l.sharedBytes, args)
    }

    private func addNull(_ args: KernelArguments) { args.add(UInt64(0)) }

    /// `view` when its last `axes` axes are row-contiguous, else a contiguous copy (nil: no copy kernel).
    private func innerContiguous(_ view: ArrayView, axes: Int) throws -> ArrayView? {
        let n = view.shape.count
        var expected = 1
        for i in stride(from: n - 1, through: max(0, n - axes), by: -1) where view.shape[i] != 1 {
            if view.strides[i] != expected { return try contiguousCopy(view) }
            expected *= view.shape[i]
        }
        return view
    }

    // MARK: argReduce, rows, rope

    func argReduce(_ op: ArgReduceOp, axis: Int, _ x: ArrayView, shape: [Int]) throws -> ArrayView? {
        guard let name = CUDAKernelNames.argReduce(op, input: x.dtype),
              let layout = RowLayout(shape: x.shape, strides: x.strides, axis: axis) else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: .uint32)
        guard out.count > 0 else { return out }
        let args = KernelArguments()
        args.addPointer(try inputPointer(x))
        args.addPointer(try outputPointer(out))
        args.add(int64: out.count)
        args.add(int64: layout.length)
        args.add(int64: layout.stride)
        layout.add(to: args)
        try launch(name, DenseGeometry.argReduce(outputs: out.count), args)
        return out
    }

    func rowKernel(
        _ op: CUDAKernelNames.RowOp, _ inputs: [ArrayView], dtype: DType, eps: Float = 0, center: Bool = false,
        weight: ArrayView? = nil, bias: ArrayView? = nil
    ) throws -> ArrayView? {
        let x = inputs[0]
        guard x.dtype == dtype, [weight, bias].allSatisfy({ $0 == nil || $0!.dtype == dtype }),
              let layout = RowLayout(shape: x.shape, strides: x.strides),
              let name = CUDAKernelNames.rows(op, dtype, rowLength: layout.length) else { return nil }
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
        try launch(name, DenseGeometry.rows(rows: layout.rows, rowLength: layout.length), args)
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

    // MARK: matmul

    func matmul(_ a: ArrayView, _ b: ArrayView, shape: [Int], dtype: DType) throws -> ArrayView? {
        guard a.dtype == dtype, b.dtype == dtype, CUDAKernelNames.floatSuffix(dtype) != nil, shape.count >= 2 else {
            return nil
        }
        let nd = shape.count
        let m = shape[nd - 2], n = shape[nd - 1], k = a.shape[nd - 1]
        let batchShape = Array(shape.prefix(nd - 2))
        let batches = batchShape.reduce(1, *)
        let batch = StridedLayout.collapse(
            shape: batchShape, strides: [Array(a.strides.prefix(nd - 2)), Array(b.strides.prefix(nd - 2))], linear: false)
        guard batch.rank <= StridedLayout.maxRank else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }

        if m == 1 || n == 1 {
            // gemv: y[z, j] = sum_k v[k] A[k, j]
            let (v, A, vs, ak, aj, J) = m == 1
                ? (a, b, a.strides[nd - 1], b.strides[nd - 2], b.strides[nd - 1], n)
                : (b, a, b.strides[nd - 2], a.strides[nd - 1], a.strides[nd - 2], m)
            let dot = ak == 1 || aj != 1
            guard let name = CUDAKernelNames.matmul(dot ? .gemvdot : .gemvcol, dtype) else { return nil }
            let args = KernelArguments()
            args.addPointer(try inputPointer(v))
            args.addPointer(try inputPointer(A))
            args.addPointer(try outputPointer(out))
            for value in [J, k, vs, ak, aj, batches] { args.add(int64: value) }
            args.add(int32: batch.rank)
            args.add(dims: batch.shape)
            args.add(dims: batch.strides[m == 1 ? 0 : 1])  // v's batch strides (a's or b's)
            args.add(dims: batch.strides[m == 1 ? 1 : 0])
            try launch(name, DenseGeometry.gemv(outputs: J, batches: batches, dot: dot), args)
            return out
        }

        if k > 0, context.cublasLt != nil {
            var (a2, b2) = (a, b)
            if LtMatrix.transposedView(rows: m, cols: k, rowStride: a.strides[nd - 2], colStride: a.strides[nd - 1]) == nil {
                guard let copy = try contiguousCopy(a) else { return nil }
                a2 = copy
            }
            if LtMatrix.transposedView(rows: k, cols: n, rowStride: b.strides[nd - 2], colStride: b.strides[nd - 1]) == nil {
                guard let copy = try contiguousCopy(b) else { return nil }
                b2 = copy
            }
            if let plan = LtPlan.make(aShape: a2.shape, aStrides: a2.strides, bStrides: b2.strides, n: n),
               try cublasLtMatmul(a2, b2, out, plan: plan) {
                return out
            }
        }

        let launch = DenseGeometry.gemm(m: m, n: n, batches: batches)
        guard launch.grid.1 <= DenseGeometry.maxGridY, let name = CUDAKernelNames.matmul(.gemm, dtype) else { return nil }
        let args = KernelArguments()
        args.addPointer(try inputPointer(a))
        args.addPointer(try inputPointer(b))
        args.addPointer(try outputPointer(out))
        for value in [m, n, k, a.strides[nd - 2], a.strides[nd - 1], b.strides[nd - 2], b.strides[nd - 1], batches] {
            args.add(int64: value)
        }
        args.add(int32: batch.rank)
        args.add(dims: batch.shape)
        args.add(dims: batch.strides[0])
        args.add(dims: batch.strides[1])
        try self.launch(name, launch, args)
        return out
    }

    // MARK: attention

    func attention(_ inputs: [ArrayView], shape: [Int], dtype: DType, scale: Float, causal: Bool) throws -> ArrayView? {
        let q = inputs[0], k = inputs[1], v = inputs[2]
        let mask = inputs.count > 3 ? inputs[3] : nil
        guard [q, k, v].allSatisfy({ $0.dtype == dtype && $0.shape.count == 4 }),
              mask == nil || (mask!.shape.count == 4 && (mask!.dtype == .bool || mask!.dtype == dtype)),
              CUDAKernelNames.floatSuffix(dtype) != nil else { return nil }
        let (b, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (hkv, lk, dv) = (k.shape[1], k.shape[2], v.shape[3])
        guard hkv > 0, hq % hkv == 0, dv <= DenseGeometry.attentionMaxDv else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }
        let flash = DenseGeometry.usesFlash(queryLength: lq, headDim: d, valueDim: dv)
            && b * hq <= DenseGeometry.maxGridY
        guard let name = CUDAKernelNames.attention(flash ? .flash : .row, dtype) else { return nil }
        let args = KernelArguments()
        args.addPointer(try inputPointer(q))
        args.addPointer(try inputPointer(k))
        args.addPointer(try inputPointer(v))
        if let mask { args.addPointer(try inputPointer(mask)) } else { addNull(args) }
        args.addPointer(try outputPointer(out))
        let maskKind = mask == nil ? 0 : mask!.dtype == .bool ? 1 : 2
        args.add(dims: [hq, hkv, lq, lk, d, dv, causal ? 1 : 0, maskKind])
        args.add(scale)
        for view in [q, k, v] { args.add(dims: view.strides) }
        args.add(dims: mask?.strides ?? [0, 0, 0, 0])
        if flash {
            let launch = DenseGeometry.attentionFlash(queryLength: lq, batchHeads: b * hq, headDim: d, valueDim: dv)
            guard launch.sharedBytes <= 48 * 1024 else { return nil }
            try self.launch(name, launch, args)
            return out
        }
        let rows = b * hq * lq
        var launch = DenseGeometry.attentionRow(rows: rows, headDim: d, valueDim: dv)
        guard launch.sharedBytes <= 48 * 1024 else { return nil }
        let (splits, chunk) = DenseGeometry.attentionSplits(rows: rows, keys: lk, multiprocessors: device.multiprocessors)
        guard splits > 1, let combine = CUDAKernelNames.attention(.combine, dtype) else {
            addNull(args)
            args.add(int64: 0)
            try self.launch(name, launch, args)
            return out
        }
        // Split-K: partial (max, sum, accumulators) per key chunk, then one merge per row.
        let partial = ArrayView.allocate(shape: [rows * splits * (dv + 2)], dtype: .float32)
        args.addPointer(try outputPointer(partial))
        args.add(int64: chunk)
        launch.grid.1 = splits
        try self.launch(name, launch, args)
        let merge = KernelArguments()
        merge.addPointer(try inputPointer(partial))
        merge.addPointer(try outputPointer(out))
        merge.add(int64: splits)
        merge.add(int32: dv)
        try self.launch(combine, DenseGeometry.Launch(grid: (rows, 1, 1), block: (DenseGeometry.attentionRowThreads, 1, 1)), merge)
        return out
    }

    // MARK: quantization

    func quantizeParameters(_ w: ArrayView, shape: [Int], groupSize: Int, bits: Int) throws -> ArrayView? {
        guard let name = CUDAKernelNames.quantized(.params, w.dtype), let w = try innerContiguous(w, axes: w.shape.count)
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

    func quantizePack(_ w: ArrayView, _ parameters: ArrayView, shape: [Int], groupSize: Int, bits: Int) throws -> ArrayView? {
        guard parameters.dtype == .float32, let name = CUDAKernelNames.quantized(.pack, w.dtype),
              let w = try innerContiguous(w, axes: w.shape.count),
              let p = try innerContiguous(parameters, axes: parameters.shape.count) else { return nil }
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
              let name = CUDAKernelNames.quantized(.dequant, dtype) else { return nil }
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
        var inputs = gather ? inputs : QuantizedKernels.batched(inputs, rank: shape.count)
        // Half scales under float32 x (a GGUF's, as stored) are widened on the device first.
        for i in 2...3 where inputs[i].dtype != dtype {
            guard let name = CUDAKernelNames.asType(from: inputs[i].dtype, to: dtype),
                let wide = try elementwise(name, [inputs[i]], shape: inputs[i].shape, dtype: dtype)
            else { return nil }
            inputs[i] = wide
        }
        guard inputs[0].dtype == dtype, inputs[1].dtype == .uint32, inputs[2].dtype == dtype, inputs[3].dtype == dtype,
              CUDAKernelNames.floatSuffix(dtype) != nil, bits >= 1, bits <= 8 else { return nil }
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
                guard view.dtype == .uint32, let c = try innerContiguous(view, axes: view.shape.count) else { return nil }
                indices.append(c)
            }
            try checkGatherIndices(indices[0], indices[1], xBatches: ops[0].shape[0], wBatches: ops[1].shape[0])
            batch.strides = ops.map { op in [op.shape.dropFirst().reduce(1, *)] }
        } else {
            batch = StridedLayout.collapse(
                shape: batchShape, strides: ops.map { Array($0.strides.prefix(nd - 2)) }, linear: false)
            guard batch.rank <= StridedLayout.maxRank else { return nil }
        }
        let (kernel, launch) = DenseGeometry.quantizedMatmul(m: m, n: n, batches: batches, transposed: transpose)
        guard launch.grid.1 <= DenseGeometry.maxGridY, let name = CUDAKernelNames.quantized(kernel, dtype) else {
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
