// The attention family on the GPU (attention.cu): a flash kernel for
// prefills, a row kernel (a query row per block) otherwise, split over key
// chunks with a combine pass when the rows alone would leave the device idle.
// nil where no kernel fits (value heads above 256, shared memory over 48 KiB,
// non-float dtypes): the dispatch then runs the primitive on the CPU.

extension CUDAKernelNames {
    enum AttentionKernel: String, CaseIterable { case row, flash, combine }

    static func attention(_ kernel: AttentionKernel, _ dtype: DType) -> String? {
        floatSuffix(dtype).map { "attention_\(kernel.rawValue)_\($0)" }
    }

    static var attentionNames: [String] {
        [DType.float32, .float16, .bfloat16].flatMap { t in AttentionKernel.allCases.compactMap { attention($0, t) } }
    }
}

extension CUDAGeometry {
    static let attentionRowThreads = 128  // ATTN_ROW_THREADS

    static let attentionFlashThreads = 128  // ATTN_FLASH_THREADS

    static let attentionBQ = 16, attentionBK = 32  // ATTN_BQ, ATTN_BK

    static let attentionMaxDv = 256  // 8 accumulators per lane in attention_row

    static let flashMaxHead = 128  // 4 accumulators per lane in attention_flash

    /// Whether the flash kernel takes a prefill (else the row kernel, any Lq).
    static func usesFlash(queryLength: Int, headDim: Int, valueDim: Int) -> Bool {
        queryLength > 1 && headDim <= flashMaxHead && valueDim <= flashMaxHead
    }

    static func attentionRow(rows: Int, headDim: Int, valueDim: Int) -> Launch {
        let warps = attentionRowThreads / 32
        return Launch(
            grid: (max(1, rows), 1, 1), block: (attentionRowThreads, 1, 1),
            sharedBytes: 4 * (headDim + warps * (valueDim + 2)))
    }

    /// Split-K for the row kernel: key chunks per query row when the rows
    /// alone would leave most multiprocessors idle (fewer than 2 blocks per
    /// SM) and there are at least 512 keys; chunks of at least 256 keys.
    static func attentionSplits(rows: Int, keys: Int, multiprocessors: Int) -> (splits: Int, chunk: Int) {
        let target = 2 * max(1, multiprocessors)
        guard keys >= 512, rows < target else { return (1, max(keys, 1)) }
        let splits = max(1, min((keys + 255) / 256, (target + rows - 1) / rows, maxGridY))
        let chunk = (keys + splits - 1) / splits
        return ((keys + chunk - 1) / chunk, chunk)
    }

    static func attentionFlash(queryLength: Int, batchHeads: Int, headDim: Int, valueDim: Int) -> Launch {
        Launch(
            grid: (blocks(queryLength, per: attentionBQ), max(1, batchHeads), 1),
            block: (attentionFlashThreads, 1, 1),
            sharedBytes: 4 * (attentionBQ * headDim + attentionBK * (headDim + 1) + attentionBK * valueDim))
    }
}

extension CUDADispatch {
    func attention(_ inputs: [ArrayView], shape: [Int], dtype: DType, scale: Float, causal: Bool) throws -> ArrayView? {
        let q = inputs[0], k = inputs[1], v = inputs[2]
        let mask = inputs.count > 3 ? inputs[3] : nil
        guard [q, k, v].allSatisfy({ $0.dtype == dtype && $0.shape.count == 4 }),
            mask == nil || (mask!.shape.count == 4 && (mask!.dtype == .bool || mask!.dtype == dtype)),
            CUDAKernelNames.floatSuffix(dtype) != nil
        else { return nil }
        let (b, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (hkv, lk, dv) = (k.shape[1], k.shape[2], v.shape[3])
        guard hkv > 0, hq % hkv == 0, dv <= CUDAGeometry.attentionMaxDv else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }
        let flash =
            CUDAGeometry.usesFlash(queryLength: lq, headDim: d, valueDim: dv)
            && b * hq <= CUDAGeometry.maxGridY
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
            let launch = CUDAGeometry.attentionFlash(queryLength: lq, batchHeads: b * hq, headDim: d, valueDim: dv)
            guard launch.sharedBytes <= 48 * 1024 else { return nil }
            try self.launch(name, launch, args)
            return out
        }
        let rows = b * hq * lq
        var launch = CUDAGeometry.attentionRow(rows: rows, headDim: d, valueDim: dv)
        guard launch.sharedBytes <= 48 * 1024 else { return nil }
        let (splits, chunk) = CUDAGeometry.attentionSplits(
            rows: rows, keys: lk, multiprocessors: device.multiprocessors)
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
        try self.launch(
            combine, CUDAGeometry.Launch(grid: (rows, 1, 1), block: (CUDAGeometry.attentionRowThreads, 1, 1)), merge)
        return out
    }
}
