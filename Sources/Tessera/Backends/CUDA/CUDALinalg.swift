// The linear-algebra family on the GPU (linalg.cu): inverse, solve,
// cholesky, qr, svd and eigh of float64 matrices up to
// `CUDAKernelNames.linalgMaxSize`, one block per matrix in shared memory.
// Larger matrices and other dtypes return nil: the dispatch then runs the
// primitive on the CPU.

extension CUDAKernelNames {
    /// One block per float64 matrix, held in shared memory: sizes up to this
    /// (rows and columns) run on the GPU, larger ones on the CPU.
    static let linalgMaxSize = 32

    static let linalgNames = [
        "linalg_inverse", "linalg_solve", "linalg_cholesky", "linalg_qr", "linalg_svd", "linalg_eigh"
    ]

    /// The kernel of a factorization of float64 matrices.
    static func linalg(_ kernel: LinalgKernel) -> String {
        switch kernel {
        case .inverse: return "linalg_inverse"
        case .solve: return "linalg_solve"
        case .cholesky: return "linalg_cholesky"
        case .qr: return "linalg_qr"
        case .svd: return "linalg_svd"
        case .eigh: return "linalg_eigh"
        }
    }
}

/// The factorizations linalg.cu computes, with their primitives' parameters
/// (the dispatch's switch maps each primitive to one).
enum LinalgKernel: Equatable {
    case inverse, solve
    case cholesky(upper: Bool)
    case qr(part: Int)
    case svd(part: Int)
    case eigh(part: Int, upper: Bool)
}

extension CUDAGeometry {
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
    /// or not matrices: those run on the CPU.
    static func linalg(_ kernel: LinalgKernel, shape: [Int], rhs: Int) -> Linalg? {
        guard shape.count >= 2 else { return nil }
        let m = shape[shape.count - 2], n = shape[shape.count - 1]
        let limit = CUDAKernelNames.linalgMaxSize
        guard m <= limit, n <= limit else { return nil }
        let p = max(m, n), q = min(m, n)
        switch kernel {
        case .inverse:
            return Linalg(sharedBytes: (2 * n * n + n) * 8, failure: .init(op: "inv", reason: "singular"))
        case .solve:
            return Linalg(rhs: rhs, sharedBytes: (n * n + n) * 8, failure: .init(op: "solve", reason: "singular"))
        case .cholesky(let upper):
            return Linalg(
                flag: upper ? 1 : 0, sharedBytes: n * n * 8,
                failure: .init(op: "cholesky", reason: "not positive definite"))
        case .qr(let part):
            return Linalg(part: part, sharedBytes: (m * n + q) * 8)
        case .svd(let part):
            return Linalg(part: part, sharedBytes: (p * q + q * q + p * p + q) * 8 + q * 4)
        case .eigh(let part, let upper):
            return Linalg(part: part, flag: upper ? 1 : 0, sharedBytes: 2 * n * n * 8 + n * 4)
        }
    }
}

extension CUDADispatch {
    func linalg(_ kernel: LinalgKernel, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        let a = inputs[0], nd = a.shape.count, name = CUDAKernelNames.linalg(kernel)
        guard dtype == .float64, inputs.allSatisfy({ $0.dtype == .float64 }) else { return nil }
        guard let plan = CUDAGeometry.linalg(kernel, shape: a.shape, rhs: inputs.count > 1 ? inputs[1].shape.last! : 0)
        else { return nil }  // larger than linalgMaxSize: the CPU's
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        let batchShape = Array(a.shape.prefix(nd - 2))
        let batch = batchShape.reduce(1, *)
        guard out.count > 0, batch > 0 else { return out }
        let b = inputs.count > 1 ? inputs[1] : a
        let layout = StridedLayout.collapse(
            shape: batchShape, strides: [Array(a.strides.prefix(nd - 2)), Array(b.strides.prefix(nd - 2))],
            linear: false)
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
        try launch(
            name, grid: (batch, 1, 1), block: (CUDAGeometry.linalgThreads, 1, 1), sharedBytes: plan.sharedBytes, args)
        if let failure = plan.failure {
            let flags = try status.hostPointer(Int32.self)
            if let first = (0..<batch).first(where: { flags[$0] != 0 }) {
                throw TesseraError.invalidData(
                    op: failure.op, reason: "matrix \(first) of the batch is \(failure.reason)")
            }
        }
        return out
    }
}
