// Kernel names of the indexing family (random.cu, gather.cu, scatter.cu,
// sort.cu, scan.cu, linalg.cu). Pure: unit-tested without a GPU, and the
// NVRTC compile test checks every name in `indexingKernelNames` is defined.

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

    /// randomBits into uint8, uint16 or uint32 (bytes are bytes).
    static func randomBits(output: DType) -> String? {
        [.uint8, .uint16, .uint32].contains(output) ? "random_bits" : nil
    }

    static func gatherStarts(index: DType) -> String? { indexSuffix(index).map { "gather_starts_\($0)" } }
    static let gatherZeroStarts = "gather_zero_starts"
    /// Gathers move elements as bits of their width.
    static func gather(_ dtype: DType) -> String? { [1, 2, 4, 8].contains(dtype.size) ? "gather_\(dtype.size)" : nil }

    static let scatterFill = "scatter_fill_i32"
    static let scatterWinner = "scatter_winner"
    /// The suffixes of the dtypes scatter's combining kernels and scans take.
    static let accumulatingTypes: [DType: String] = [
        .float64: "f64", .float32: "f32", .float16: "f16", .bfloat16: "bf16", .int64: "i64", .int32: "i32",
        .uint32: "u32",
    ]

    /// `set` by element width; add/prod/max/min for float64, float32, float16,
    /// bfloat16, int64, int32, uint32 and bool.
    static func scatter(_ op: ScatterOp, _ dtype: DType) -> String? {
        if op == .set { return [1, 2, 4, 8].contains(dtype.size) ? "scatter_set_\(dtype.size)" : nil }
        guard let s = dtype == .bool ? "b8" : accumulatingTypes[dtype] else { return nil }
        return "scatter_\(op.rawValue)_\(s)"
    }

    static let sortTypes: [DType: String] = [
        .float32: "f32", .float16: "f16", .bfloat16: "bf16", .int32: "i32", .uint32: "u32", .int16: "i16",
        .uint16: "u16", .int8: "i8", .uint8: "u8", .bool: "b8",
    ]
    static func sortBlock(_ dtype: DType) -> String? { sortTypes[dtype].map { "sort_block_\($0)" } }
    static let sortMerge = "sort_merge"
    static let sortEmitIndex = "sort_emit_index"
    static func sortEmit(_ dtype: DType) -> String? {
        sortTypes[dtype] != nil ? "sort_emit_\(dtype.size)" : nil
    }

    /// cumsum/cumprod/cummax/cummin for float64, float32, float16, bfloat16,
    /// int64, int32, uint32; cummax/cummin for bool.
    static func scan(_ op: ScanOp, _ dtype: DType, block: Bool) -> String? {
        guard let s = dtype == .bool ? (op == .max || op == .min ? "b8" : nil) : accumulatingTypes[dtype] else {
            return nil
        }
        return "scan_\(block ? "block" : "row")_\(op.rawValue)_\(s)"
    }

    /// Every kernel name the indexing dispatch can ask for.
    static var indexingKernelNames: [String] {
        var names = ["random_bits", gatherZeroStarts, scatterFill, scatterWinner, sortMerge, sortEmitIndex]
        let all: [DType] = [
            .bool, .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64, .float16, .float32, .float64,
            .bfloat16,
        ]
        for t in all {
            names += [gatherStarts(index: t), gather(t), sortBlock(t), sortEmit(t)].compactMap { $0 }
            names += ScatterOp.allCases.compactMap { scatter($0, t) }
            names += ScanOp.allCases.flatMap { op in [true, false].compactMap { scan(op, t, block: $0) } }
        }
        names += linalgKernelNames
        return Array(Set(names)).sorted()
    }
}

extension CUDAKernelNames {
    /// One block per float64 matrix, held in shared memory: sizes up to this
    /// (rows and columns) run on the GPU, larger ones on the CPU.
    static let linalgMaxSize = 32

    static let linalgKernelNames = [
        "linalg_inverse", "linalg_solve", "linalg_cholesky", "linalg_qr", "linalg_svd", "linalg_eigh",
    ]

    /// The kernel for a factorization of float64 matrices, or nil for other primitives.
    static func linalg(_ primitive: Primitive) -> String? {
        switch primitive {
        case .inverse: return "linalg_inverse"
        case .solve: return "linalg_solve"
        case .cholesky: return "linalg_cholesky"
        case .qr: return "linalg_qr"
        case .svd: return "linalg_svd"
        case .eigh: return "linalg_eigh"
        default: return nil
        }
    }
}
