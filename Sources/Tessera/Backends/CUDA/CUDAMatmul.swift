// The matmul family on the GPU (matmul.cu; cuBLASLt through
// CUDAMatmulLt.swift): gemv kernels when M or N is 1, cuBLASLt when the
// library loaded, else a tiled GEMM kernel; any batch strides. nil where no
// kernel fits: the dispatch then runs the primitive on the CPU.

extension CUDAKernelNames {
    enum MatmulKernel: String, CaseIterable { case gemvdot, gemvcol, gemm }

    static func matmul(_ kernel: MatmulKernel, _ dtype: DType) -> String? {
        floatSuffix(dtype).map { "matmul_\(kernel.rawValue)_\($0)" }
    }

    static var matmulNames: [String] {
        [DType.float32, .float16, .bfloat16].flatMap { t in MatmulKernel.allCases.compactMap { matmul($0, t) } }
    }
}

extension CUDAGeometry {
    static let gemmTile = 16  // GEMM_TILE

    /// gemv: `dot` a warp per output (8 per block), else a thread per output.
    static func gemv(outputs: Int, batches: Int, dot: Bool) -> Launch {
        Launch(grid: (blocks(outputs, per: dot ? 8 : 256), min(max(1, batches), maxGridY), 1), block: (256, 1, 1))
    }

    static func gemm(m: Int, n: Int, batches: Int) -> Launch {
        Launch(
            grid: (blocks(n, per: gemmTile), blocks(m, per: gemmTile), min(max(1, batches), maxGridY)),
            block: (gemmTile, gemmTile, 1))
    }
}

extension CUDADispatch {
    func matmul(_ a: ArrayView, _ b: ArrayView, shape: [Int], dtype: DType) throws -> ArrayView? {
        guard a.dtype == dtype, b.dtype == dtype, CUDAKernelNames.floatSuffix(dtype) != nil, shape.count >= 2 else {
            return nil
        }
        let nd = shape.count
        let m = shape[nd - 2], n = shape[nd - 1], k = a.shape[nd - 1]
        let batchShape = Array(shape.prefix(nd - 2))
        let batches = batchShape.reduce(1, *)
        let batch = StridedLayout.collapse(
            shape: batchShape, strides: [Array(a.strides.prefix(nd - 2)), Array(b.strides.prefix(nd - 2))],
            linear: false)
        guard batch.rank <= StridedLayout.maxRank else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }

        if m == 1 || n == 1 {
            // gemv: y[z, j] = sum_k v[k] A[k, j]
            let (v, A, vs, ak, aj, J) =
                m == 1
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
            try launch(name, CUDAGeometry.gemv(outputs: J, batches: batches, dot: dot), args)
            return out
        }

        if k > 0, context.cublasLt != nil {
            var (a2, b2) = (a, b)
            if LtMatrix.transposedView(rows: m, cols: k, rowStride: a.strides[nd - 2], colStride: a.strides[nd - 1])
                == nil
            {
                guard let copy = try contiguousCopy(a) else { return nil }
                a2 = copy
            }
            if LtMatrix.transposedView(rows: k, cols: n, rowStride: b.strides[nd - 2], colStride: b.strides[nd - 1])
                == nil
            {
                guard let copy = try contiguousCopy(b) else { return nil }
                b2 = copy
            }
            if let plan = LtPlan.make(aShape: a2.shape, aStrides: a2.strides, bStrides: b2.strides, n: n),
                try cublasLtMatmul(a2, b2, out, plan: plan)
            {
                return out
            }
        }

        let launch = CUDAGeometry.gemm(m: m, n: n, batches: batches)
        guard launch.grid.1 <= CUDAGeometry.maxGridY, let name = CUDAKernelNames.matmul(.gemm, dtype) else {
            return nil
        }
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
}
