// Matrix products through cuBLASLt, opened at run time (no CUDA headers or
// link-time dependency). The row-major product C = A B is computed as the
// column-major Cᵀ = Bᵀ Aᵀ: cuBLASLt's first operand is our b, its second our
// a, its output our c read as a column-major [N, M] matrix with ld = N.
// Each operand that has a unit stride along one of its two axes is described
// in place (a transposed view becomes op T); others are copied first. Batch
// axes that collapse to one strided axis (stride 0 where broadcast) become
// one strided-batched call; others loop on the host over the outer axes.
//
// float32 computes with CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_TF32
// when TESSERA_CUDA_TF32=1 (opt-in: TF32 rounds the inputs to 10-bit
// mantissas); float16/bfloat16 accumulate in float32 (COMPUTE_32F). Values
// are from cublasLt.h / cublas_api.h / library_types.h.

enum CuBLASLtConstants {
    // cudaDataType
    static let r32F: Int32 = 0, r16F: Int32 = 2, r16BF: Int32 = 14
    // cublasComputeType_t
    static let compute32F: Int32 = 68, compute32FFastTF32: Int32 = 77
    // cublasOperation_t
    static let opN: Int32 = 0, opT: Int32 = 1
    // cublasLtMatmulDescAttributes_t
    static let descTransA: Int32 = 3, descTransB: Int32 = 4
    // cublasLtMatrixLayoutAttribute_t (BATCH_COUNT int32, STRIDED_BATCH_OFFSET int64)
    static let layoutBatchCount: Int32 = 5, layoutStridedBatchOffset: Int32 = 6
    // cublasLtMatmulPreferenceAttributes_t (MAX_WORKSPACE_BYTES uint64, MIN_ALIGNMENT_* uint32)
    static let prefMaxWorkspaceBytes: Int32 = 1
    static let prefMinAlignmentA: Int32 = 5, prefMinAlignmentB: Int32 = 6
    static let prefMinAlignmentC: Int32 = 7, prefMinAlignmentD: Int32 = 8
    /// sizeof(cublasLtMatmulHeuristicResult_t): algo (64 bytes), workspaceSize (size_t), state, wavesCount, reserved[4].
    static let heuristicResultBytes = 96
    static let heuristicStateOffset = 72
    static let workspaceBytes = 32 << 20

    static func dataType(_ dtype: DType) -> Int32? {
        switch dtype {
        case .float32: return r32F
        case .float16: return r16F
        case .bfloat16: return r16BF
        default: return nil
        }
    }

    /// TF32 for float32 products only with TESSERA_CUDA_TF32=1.
    static func computeType(_ dtype: DType, environment: [String: String]) -> Int32 {
        dtype == .float32 && environment["TESSERA_CUDA_TF32"] == "1" ? compute32FFastTF32 : compute32F
    }
}

/// One operand as cuBLASLt sees it: a column-major rows × cols matrix with
/// leading dimension ld, used as is (op N) or transposed (op T).
struct LtMatrix: Equatable {
    var rows: Int
    var cols: Int
    var ld: Int
    var transposed: Bool

    /// Our row-major-indexed X[r][c] at r * rowStride + c * colStride, as the
    /// column-major operand that holds Xᵀ (R × C → cuBLASLt's C × R, op N), or
    /// X itself with op T; nil when neither axis has a usable unit stride.
    static func transposedView(rows r: Int, cols c: Int, rowStride: Int, colStride: Int) -> LtMatrix? {
        if c == 1 || colStride == 1, r == 1 || rowStride >= max(c, 1) {
            return LtMatrix(rows: c, cols: r, ld: r == 1 ? max(c, 1) : rowStride, transposed: false)
        }
        if r == 1 || rowStride == 1, c == 1 || colStride >= max(r, 1) {
            return LtMatrix(rows: r, cols: c, ld: c == 1 ? max(r, 1) : colStride, transposed: true)
        }
        return nil
    }
}

/// The cuBLASLt calls for one batched product: operands (cuBLASLt's order),
/// the strided batch (count, element strides) and the host loop around it.
struct LtPlan: Equatable {
    var first: LtMatrix  // our b
    var second: LtMatrix  // our a
    var output: LtMatrix  // our c, contiguous
    /// Inner strided batch: count and strides of (a, b, c).
    var batchCount: Int
    var batchStrides: (a: Int, b: Int, c: Int)
    /// Outer batches the host loops over: element offsets of (a, b, c).
    var outerOffsets: [(a: Int, b: Int, c: Int)]

    static func == (x: LtPlan, y: LtPlan) -> Bool {
        x.first == y.first && x.second == y.second && x.output == y.output && x.batchCount == y.batchCount
            && x.batchStrides == y.batchStrides && x.outerOffsets.elementsEqual(y.outerOffsets, by: { $0 == $1 })
    }

    /// nil when an operand needs a contiguous copy first (see `transposedView`)
    /// or a batch stride is negative (the caller then uses its own kernel).
    static func make(aShape: [Int], aStrides: [Int], bStrides: [Int], n: Int) -> LtPlan? {
        let nd = aShape.count
        let m = aShape[nd - 2], k = aShape[nd - 1]
        guard
            let second = LtMatrix.transposedView(
                rows: m, cols: k, rowStride: aStrides[nd - 2], colStride: aStrides[nd - 1]),
            let first = LtMatrix.transposedView(
                rows: k, cols: n, rowStride: bStrides[nd - 2], colStride: bStrides[nd - 1])
        else { return nil }
        let output = LtMatrix(rows: n, cols: m, ld: max(n, 1), transposed: false)
        let batchShape = Array(aShape.prefix(nd - 2))
        let cStrides = contiguousStrides(batchShape).map { $0 * m * n }
        let layout = StridedLayout.collapse(
            shape: batchShape, strides: [Array(aStrides.prefix(nd - 2)), Array(bStrides.prefix(nd - 2)), cStrides],
            linear: false)
        guard let inner = layout.shape.last else {
            return LtPlan(
                first: first, second: second, output: output, batchCount: 1, batchStrides: (0, 0, 0),
                outerOffsets: [(0, 0, 0)])
        }
        guard layout.strides.allSatisfy({ $0.allSatisfy { $0 >= 0 } }) else { return nil }
        let r = layout.rank - 1
        let strides = (a: layout.strides[0][r], b: layout.strides[1][r], c: layout.strides[2][r])
        var outer: [(a: Int, b: Int, c: Int)] = []
        let outerShape = Array(layout.shape.prefix(r))
        let count = outerShape.reduce(1, *)
        for index in 0..<count {
            var rem = index, o = (a: 0, b: 0, c: 0)
            for axis in stride(from: r - 1, through: 0, by: -1) {
                let i = rem % outerShape[axis]
                rem /= outerShape[axis]
                o.a += i * layout.strides[0][axis]
                o.b += i * layout.strides[1][axis]
                o.c += i * layout.strides[2][axis]
            }
            outer.append(o)
        }
        return LtPlan(
            first: first, second: second, output: output, batchCount: inner, batchStrides: strides,
            outerOffsets: outer)
    }
}

/// The cuBLASLt functions Tessera calls, and one handle.
final class CuBLASLtAPI: @unchecked Sendable {
    typealias Status = Int32
    typealias Handle = OpaquePointer
    let create: @convention(c) (UnsafeMutablePointer<Handle?>) -> Status
    let descCreate: @convention(c) (UnsafeMutablePointer<Handle?>, Int32, Int32) -> Status
    let descDestroy: @convention(c) (Handle?) -> Status
    let descSetAttribute: @convention(c) (Handle?, Int32, UnsafeRawPointer?, Int) -> Status
    let layoutCreate: @convention(c) (UnsafeMutablePointer<Handle?>, Int32, UInt64, UInt64, Int64) -> Status
    let layoutDestroy: @convention(c) (Handle?) -> Status
    let layoutSetAttribute: @convention(c) (Handle?, Int32, UnsafeRawPointer?, Int) -> Status
    let preferenceCreate: @convention(c) (UnsafeMutablePointer<Handle?>) -> Status
    let preferenceDestroy: @convention(c) (Handle?) -> Status
    let preferenceSetAttribute: @convention(c) (Handle?, Int32, UnsafeRawPointer?, Int) -> Status
    let algoGetHeuristic:
        @convention(c) (
            Handle?, Handle?, Handle?, Handle?, Handle?, Handle?, Handle?, Int32, UnsafeMutableRawPointer?,
            UnsafeMutablePointer<Int32>?
        ) -> Status
    let matmul:
        @convention(c) (
            Handle?, Handle?, UnsafeRawPointer?, UnsafeRawPointer?, Handle?, UnsafeRawPointer?, Handle?,
            UnsafeRawPointer?, UnsafeRawPointer?, Handle?, UnsafeMutableRawPointer?, Handle?, UnsafeRawPointer?,
            UnsafeMutableRawPointer?, Int, CUhandle?
        ) -> Status
    let handle: Handle?

    init(_ library: DynamicLibrary) throws {
        create = try library.function("cublasLtCreate")
        descCreate = try library.function("cublasLtMatmulDescCreate")
        descDestroy = try library.function("cublasLtMatmulDescDestroy")
        descSetAttribute = try library.function("cublasLtMatmulDescSetAttribute")
        layoutCreate = try library.function("cublasLtMatrixLayoutCreate")
        layoutDestroy = try library.function("cublasLtMatrixLayoutDestroy")
        layoutSetAttribute = try library.function("cublasLtMatrixLayoutSetAttribute")
        preferenceCreate = try library.function("cublasLtMatmulPreferenceCreate")
        preferenceDestroy = try library.function("cublasLtMatmulPreferenceDestroy")
        preferenceSetAttribute = try library.function("cublasLtMatmulPreferenceSetAttribute")
        algoGetHeuristic = try library.function("cublasLtMatmulAlgoGetHeuristic")
        matmul = try library.function("cublasLtMatmul")
        var h: Handle?
        try Self.check(create(&h), "cublasLtCreate")
        handle = h
    }

    static func check(_ status: Status, _ call: String) throws {
        guard status != 0 else { return }
        throw TesseraError.deviceError("\(call) failed: cuBLAS status \(status)")
    }

    private static let lock = Lock()
    nonisolated(unsafe) private static var shared: [ObjectIdentifier: CuBLASLtAPI] = [:]

    /// The API over `library` (one handle per library, created on first use).
    static func api(_ library: CUBLASLt) throws -> CuBLASLtAPI {
        try lock.withLock {
            if let api = shared[ObjectIdentifier(library)] { return api }
            let api = try CuBLASLtAPI(library.library)
            shared[ObjectIdentifier(library)] = api
            return api
        }
    }
}

/// The largest power of two (up to 256) that divides `address`.
func pointerAlignment(_ address: UInt) -> UInt32 {
    var alignment: UInt = 256
    while alignment > 1 && address % alignment != 0 { alignment /= 2 }
    return UInt32(alignment)
}

extension CUDADispatch {
    /// c = a b through cuBLASLt; false when cuBLASLt is absent or finds no algorithm (the caller uses its own kernel).
    func cublasLtMatmul(_ a: ArrayView, _ b: ArrayView, _ c: ArrayView, plan: LtPlan) throws -> Bool {
        guard let library = context.cublasLt, let type = CuBLASLtConstants.dataType(c.dtype) else { return false }
        let api = try CuBLASLtAPI.api(library)
        let C = CuBLASLtConstants.self
        let compute = C.computeType(c.dtype, environment: processEnvironment())
        var handles: [(OpaquePointer?, @convention(c) (OpaquePointer?) -> Int32)] = []
        defer { for (h, destroy) in handles.reversed() { _ = destroy(h) } }

        var desc: OpaquePointer?
        try CuBLASLtAPI.check(api.descCreate(&desc, compute, C.r32F), "cublasLtMatmulDescCreate")
        handles.append((desc, api.descDestroy))
        var opA = plan.first.transposed ? C.opT : C.opN, opB = plan.second.transposed ? C.opT : C.opN
        try CuBLASLtAPI.check(api.descSetAttribute(desc, C.descTransA, &opA, 4), "cublasLtMatmulDescSetAttribute")
        try CuBLASLtAPI.check(api.descSetAttribute(desc, C.descTransB, &opB, 4), "cublasLtMatmulDescSetAttribute")

        func layout(_ matrix: LtMatrix, batchStride: Int) throws -> OpaquePointer? {
            var l: OpaquePointer?
            try CuBLASLtAPI.check(
                api.layoutCreate(&l, type, UInt64(matrix.rows), UInt64(matrix.cols), Int64(matrix.ld)),
                "cublasLtMatrixLayoutCreate")
            handles.append((l, api.layoutDestroy))
            if plan.batchCount > 1 {
                var count = Int32(plan.batchCount), stride = Int64(batchStride)
                try CuBLASLtAPI.check(
                    api.layoutSetAttribute(l, C.layoutBatchCount, &count, 4), "cublasLtMatrixLayoutSetAttribute")
                try CuBLASLtAPI.check(
                    api.layoutSetAttribute(l, C.layoutStridedBatchOffset, &stride, 8),
                    "cublasLtMatrixLayoutSetAttribute")
            }
            return l
        }
        let la = try layout(plan.first, batchStride: plan.batchStrides.b)
        let lb = try layout(plan.second, batchStride: plan.batchStrides.a)
        let lc = try layout(plan.output, batchStride: plan.batchStrides.c)

        let workspace = ArrayView.allocate(shape: [C.workspaceBytes], dtype: .uint8)
        let pa = try inputPointer(a), pb = try inputPointer(b), pc = try outputPointer(c)
        let pw = try outputPointer(workspace)
        let size = c.dtype.size
        var alignment = UInt(bitPattern: pc)
        for o in plan.outerOffsets {
            alignment |=
                UInt(bitPattern: pa + o.a * size) | UInt(bitPattern: pb + o.b * size)
                | UInt(bitPattern: pc + o.c * size)
        }
        if plan.batchCount > 1 {
            for s in [plan.batchStrides.a, plan.batchStrides.b, plan.batchStrides.c] { alignment |= UInt(s * size) }
        }
        var preference: OpaquePointer?
        try CuBLASLtAPI.check(api.preferenceCreate(&preference), "cublasLtMatmulPreferenceCreate")
        handles.append((preference, api.preferenceDestroy))
        var workspaceBytes = UInt64(C.workspaceBytes)
        try CuBLASLtAPI.check(
            api.preferenceSetAttribute(preference, C.prefMaxWorkspaceBytes, &workspaceBytes, 8),
            "cublasLtMatmulPreferenceSetAttribute")
        var align = pointerAlignment(alignment)
        for attribute in [C.prefMinAlignmentA, C.prefMinAlignmentB, C.prefMinAlignmentC, C.prefMinAlignmentD] {
            try CuBLASLtAPI.check(
                api.preferenceSetAttribute(preference, attribute, &align, 4),
                "cublasLtMatmulPreferenceSetAttribute")
        }
        let result = UnsafeMutableRawPointer.allocate(byteCount: C.heuristicResultBytes, alignment: 8)
        defer { result.deallocate() }
        var found: Int32 = 0
        try device.makeCurrent()
        let status = api.algoGetHeuristic(api.handle, desc, la, lb, lc, lc, preference, 1, result, &found)
        guard status == 0, found > 0, result.load(fromByteOffset: C.heuristicStateOffset, as: Int32.self) == 0 else {
            return false
        }
        var alpha: Float = 1, beta: Float = 0
        for o in plan.outerOffsets {
            let out = UnsafeMutableRawPointer(mutating: pc + o.c * size)
            try CuBLASLtAPI.check(
                api.matmul(
                    api.handle, desc, &alpha, pb + o.b * size, la, pa + o.a * size, lb, &beta, out, lc, out, lc,
                    result, UnsafeMutableRawPointer(mutating: pw), C.workspaceBytes, cudaStream),
                "cublasLtMatmul")
        }
        return true
    }
}
