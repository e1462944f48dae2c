// Kernel names of the dense family (argreduce.cu, rows.cu, rope.cu,
// matmul.cu, attention.cu, quantized.cu), and the launch shapes their
// kernels expect. Pure: unit-tested without a GPU; every name here is checked
// against the compiled CUBINs by CUDAKernelCompileTests.

extension CUDAKernelNames {
    /// float32, float16 and bfloat16: the element types of the dense kernels.
    static func floatSuffix(_ dtype: DType) -> String? {
        switch dtype {
        case .float32, .float16, .bfloat16: return suffix(dtype)
        default: return nil
        }
    }

    /// argMax/argMin over float32/float16/bfloat16/int32 (uint32 output).
    static func argReduce(_ op: ArgReduceOp, input: DType) -> String? {
        guard input == .int32 || floatSuffix(input) != nil, let s = suffix(input) else { return nil }
        return "argreduce_\(op == .argMax ? "max" : "min")_\(s)"
    }

    enum RowOp: String, CaseIterable { case softmax, logsoftmax, norm }

    /// softmax/logSoftmax/rmsNorm/layerNorm rows: a warp per row up to
    /// `DenseGeometry.warpRowLimit` elements, else a block.
    static func rows(_ op: RowOp, _ dtype: DType, rowLength: Int) -> String? {
        guard let s = floatSuffix(dtype) else { return nil }
        return "rows_\(op.rawValue)_\(rowLength <= DenseGeometry.warpRowLimit ? "warp" : "block")_\(s)"
    }

    static func rope(_ dtype: DType) -> String? { floatSuffix(dtype).map { "rope_\($0)" } }

    enum MatmulKernel: String, CaseIterable { case gemvdot, gemvcol, gemm }

    static func matmul(_ kernel: MatmulKernel, _ dtype: DType) -> String? {
        floatSuffix(dtype).map { "matmul_\(kernel.rawValue)_\($0)" }
    }

    enum AttentionKernel: String, CaseIterable { case row, flash, combine }

    static func attention(_ kernel: AttentionKernel, _ dtype: DType) -> String? {
        floatSuffix(dtype).map { "attention_\(kernel.rawValue)_\($0)" }
    }

    enum QuantizedKernel: String, CaseIterable { case params, pack, dequant, qmvt, qmv, qmm }

    static func quantized(_ kernel: QuantizedKernel, _ dtype: DType) -> String? {
        floatSuffix(dtype).map { "quantized_\(kernel.rawValue)_\($0)" }
    }

    /// Every dense-family name the dispatch can ask for.
    static var denseKernelNames: [String] {
        var names: [String] = []
        for t in [DType.float32, .float16, .bfloat16, .int32] {
            for op in ArgReduceOp.allCases { names += argReduce(op, input: t).map { [$0] } ?? [] }
            for op in RowOp.allCases {
                names += [1, DenseGeometry.warpRowLimit + 1].compactMap { rows(op, t, rowLength: $0) }
            }
            names += rope(t).map { [$0] } ?? []
            names += MatmulKernel.allCases.compactMap { matmul($0, t) }
            names += AttentionKernel.allCases.compactMap { attention($0, t) }
            names += QuantizedKernel.allCases.compactMap { quantized($0, t) }
        }
        return names
    }
}

/// Launch shapes of the dense kernels (the constants mirror the .cu files).
enum DenseGeometry {
    /// Rows up to this length get one warp each (rows.cu).
    static let warpRowLimit = 1024
    static let rowsWarpThreads = 256  // ROWS_WARP_THREADS
    static let rowsBlockThreads = 512  // ROWS_BLOCK_THREADS
    static let maxGridY = 65535
    static let attentionRowThreads = 128  // ATTN_ROW_THREADS
    static let attentionFlashThreads = 128  // ATTN_FLASH_THREADS
    static let attentionBQ = 16, attentionBK = 32  // ATTN_BQ, ATTN_BK
    static let attentionMaxDv = 256  // 8 accumulators per lane in attention_row
    static let flashMaxHead = 128  // 4 accumulators per lane in attention_flash
    static let qmvMaxM = 8  // QMV_MAX_M
    static let qmmTile = 32  // QMM_TILE
    static let gemmTile = 16  // GEMM_TILE

    struct Launch: Equatable {
        var grid: (Int, Int, Int)
        var block: (Int, Int, Int)
        var sharedBytes: Int = 0

        static func == (a: Launch, b: Launch) -> Bool {
            a.grid == b.grid && a.block == b.block && a.sharedBytes == b.sharedBytes
        }
    }

    static func blocks(_ count: Int, per: Int) -> Int { max(1, (count + per - 1) / per) }

    /// Row kernels: 8 rows per block (warp teams) or one block per row.
    static func rows(rows: Int, rowLength: Int) -> Launch {
        if rowLength <= warpRowLimit {
            return Launch(grid: (blocks(rows, per: rowsWarpThreads / 32), 1, 1), block: (rowsWarpThreads, 1, 1))
        }
        return Launch(grid: (max(1, rows), 1, 1), block: (rowsBlockThreads, 1, 1))
    }

    /// argreduce: a warp per output, 8 per block.
    static func argReduce(outputs: Int) -> Launch {
        Launch(grid: (blocks(outputs, per: 8), 1, 1), block: (256, 1, 1))
    }

    /// gemv: `dot` a warp per output (8 per block), else a thread per output.
    static func gemv(outputs: Int, batches: Int, dot: Bool) -> Launch {
        Launch(grid: (blocks(outputs, per: dot ? 8 : 256), min(max(1, batches), maxGridY), 1), block: (256, 1, 1))
    }

    static func gemm(m: Int, n: Int, batches: Int) -> Launch {
        Launch(grid: (blocks(n, per: gemmTile), blocks(m, per: gemmTile), min(max(1, batches), maxGridY)),
               block: (gemmTile, gemmTile, 1))
    }

    /// Whether the flash kernel takes a prefill (else the row kernel, any Lq).
    static func usesFlash(queryLength: Int, headDim: Int, valueDim: Int) -> Bool {
        queryLength > 1 && headDim <= flashMaxHead && valueDim <= flashMaxHead
    }

    static func attentionRow(rows: Int, headDim: Int, valueDim: Int) -> Launch {
        let warps = attentionRowThreads / 32
        return Launch(grid: (max(1, rows), 1, 1), block: (attentionRowThreads, 1, 1),
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
        Launch(grid: (blocks(queryLength, per: attentionBQ), max(1, batchHeads), 1),
               block: (attentionFlashThreads, 1, 1),
               sharedBytes: 4 * (attentionBQ * headDim + attentionBK * (headDim + 1) + attentionBK * valueDim))
    }

    /// Quantized products: qmv (transposed: a warp per column; else a thread per column) for M <= 8, else qmm tiles.
    static func quantizedMatmul(m: Int, n: Int, batches: Int, transposed: Bool) -> (CUDAKernelNames.QuantizedKernel, Launch) {
        if m <= qmvMaxM {
            let kernel: CUDAKernelNames.QuantizedKernel = transposed ? .qmvt : .qmv
            return (kernel, Launch(grid: (blocks(n, per: transposed ? 8 : 256), min(max(1, batches), maxGridY), 1),
                                   block: (256, 1, 1)))
        }
        return (.qmm, Launch(grid: (blocks(n, per: qmmTile), blocks(m, per: qmmTile), min(max(1, batches), maxGridY)),
                             block: (qmmTile, 8, 1)))
    }
}
