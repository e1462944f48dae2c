// GPU launches of compile's fused element-wise kernels (`.compiled`): the
// region's CUDA source (CUDAFused.swift) compiled by NVRTC for the device's SM on
// first use, its CUBIN cached on disk beside the other kernels' (key: source
// hash, architecture, NVRTC version), the module kept per kernel and device.
//
// Layout: inputs broadcast to the output's shape, read at any strides; the
// output is a fresh row-contiguous buffer, [k] + shape for a kernel of k
// outputs (output j at element offset j * count). `tk_contig` runs when
// every input is contiguous with the output's shape or a single element;
// `tk_strided` otherwise, on the layout collapsed to at most 8 axes (more:
// the CPU runs it). The plan and its argument block are host logic with
// unit tests (CUDAFusedLaunchTests); the launch itself needs a GPU.

/// How one fused kernel runs for given inputs: which entry point, over how
/// many elements, with what strides.
struct FusedLaunchPlan: Equatable {
    enum Entry: Equatable {
        case contiguous
        /// Shape and strides: one row per input, then the outputs' row.
        case strided(StridedLayout)
    }

    let entry: Entry
    /// Elements of each output.
    let count: Int
    let outputCount: Int

    var functionName: String {
        if case .contiguous = entry { return "tk_contig" }
        return "tk_strided"
    }

    /// nil when the collapsed layout has more than `StridedLayout.maxRank` axes.
    static func make(_ kernel: FusedKernel, inputs: [ArrayView], shape: [Int]) -> FusedLaunchPlan? {
        let k = kernel.outputCount
        let elementShape = k == 1 ? shape : Array(shape.dropFirst())
        let count = elementShape.reduce(1, *)
        let isContiguous = inputs.indices.allSatisfy { i in
            switch kernel.inputModes[i] {
            case .full: return inputs[i].shape == elementShape && inputs[i].isRowContiguous
            case .scalar: return inputs[i].count == 1
            case .broadcast: return false
            }
        }
        if isContiguous { return FusedLaunchPlan(entry: .contiguous, count: count, outputCount: k) }
        let strides =
            inputs.map { ShapeKernels.broadcastStrides($0, to: elementShape) } + [contiguousStrides(elementShape)]
        let layout = StridedLayout.collapse(shape: elementShape, strides: strides, linear: false)
        guard layout.rank <= StridedLayout.maxRank else { return nil }
        return FusedLaunchPlan(entry: .strided(layout), count: count, outputCount: k)
    }

    /// The parameters in the order the generated kernel declares them:
    /// `tk_contig(int64 n, inputs..., outputs...)`,
    /// `tk_strided(int64 n, int32 ndim, TkDims shape, TkDims strides × (inputs + 1), inputs..., outputs...)`.
    /// `outputBase`: the device address of the output buffer; output j
    /// starts `j * count * elementSize` bytes after it.
    func arguments(inputs: [UInt64], outputBase: UInt64, elementSize: Int) -> KernelArguments {
        let args = KernelArguments()
        args.add(int64: count)
        if case .strided(let layout) = entry {
            args.add(int32: layout.rank)
            args.add(dims: layout.shape)
            for strides in layout.strides { args.add(dims: strides) }
        }
        for p in inputs { args.add(p) }
        for j in 0..<outputCount { args.add(outputBase + UInt64(j * count * elementSize)) }
        return args
    }
}

/// A fused kernel's two entry points, loaded for one device (nil: the
/// region has no CUDA form, so it runs on the CPU).
struct FusedGPUFunctions: @unchecked Sendable {
    let contiguous: CUhandle?
    let strided: CUhandle?
}

extension CUDADispatch {
    /// The kernel's output on the GPU, or nil when it must run on the CPU
    /// (no CUDA form for its dtypes, too many axes).
    func compiled(_ kernel: FusedKernel, inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        guard let plan = FusedLaunchPlan.make(kernel, inputs: inputs, shape: shape),
            let functions = try fusedFunctions(kernel)
        else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard plan.count > 0 else { return out }
        let inputPointers = try inputs.map { view -> UInt64 in
            let p = try view.buffer.devicePointer(on: context.home, stream: stream) + view.offset * view.dtype.size
            return UInt64(UInt(bitPattern: p))
        }
        let outputBase = UInt64(
            UInt(bitPattern: try out.buffer.devicePointer(on: context.home, stream: stream, forWriting: true)))
        let args = plan.arguments(inputs: inputPointers, outputBase: outputBase, elementSize: dtype.size)
        let function = plan.functionName == "tk_contig" ? functions.contiguous : functions.strided
        let geometry = LaunchGeometry.elementwise(count: plan.count, multiprocessors: device.multiprocessors)
        try launch(
            function, named: "fused \(plan.functionName)", grid: (geometry.blocks, 1, 1),
            block: (geometry.threads, 1, 1),
            sharedBytes: 0, args)
        return out
    }

    /// The kernel's functions on this device, compiled (or read from the
    /// disk cache) and loaded on first use.
    private func fusedFunctions(_ kernel: FusedKernel) throws -> FusedGPUFunctions? {
        let deviceKey = "\(device.ordinal)-\(device.architecture)"
        return try kernel.gpuState.withLock { () throws -> FusedGPUFunctions? in
            if let loaded = kernel.gpuFunctions[deviceKey] { return loaded }
            guard let source = CUDAFusedSource.source(kernel) else {
                kernel.gpuFunctions[deviceKey] = .some(nil)
                return nil
            }
            let cubin = try FusedCUBINCache.cubin(
                source: source, architecture: device.architecture, nvrtc: context.nvrtc)
            try device.makeCurrent()
            let driver = device.driver
            var module: CUhandle?
            try cubin.withUnsafeBytes {
                try driver.check(driver.cuModuleLoadData(&module, $0.baseAddress), "cuModuleLoadData(fused)")
            }
            var contiguous: CUhandle?, strided: CUhandle?
            try driver.check(
                driver.cuModuleGetFunction(&contiguous, module, "tk_contig"), "cuModuleGetFunction(tk_contig)")
            try driver.check(
                driver.cuModuleGetFunction(&strided, module, "tk_strided"), "cuModuleGetFunction(tk_strided)")
            let functions = FusedGPUFunctions(contiguous: contiguous, strided: strided)
            kernel.gpuFunctions[deviceKey] = .some(functions)
            return functions
        }
    }
}

/// CUBINs of fused kernels on disk, in the CUDA kernel cache's folder.
enum FusedCUBINCache {
    static let fileStem = "fused"

    static func path(source: String, architecture: String, nvrtcVersion: String, environment: [String: String])
        -> String
    {
        let key = KernelCacheKey.make(
            file: fileStem, source: source, headers: [:], architecture: architecture, nvrtcVersion: nvrtcVersion)
        return "\(KernelCacheKey.directory(environment: environment))/\(key).cubin"
    }

    static func cubin(source: String, architecture: String, nvrtc: NVRTC) throws -> [UInt8] {
        let path = path(
            source: source, architecture: architecture, nvrtcVersion: nvrtc.version, environment: processEnvironment())
        if let cached = readWholeFile(path) { return cached }
        let cubin = try nvrtc.compile(source: source, name: "fused.cu", headers: [:], architecture: architecture).cubin
        // A failure to write only loses the disk cache.
        if let slash = path.lastIndex(of: "/") { try? makeDirectories(String(path[..<slash])) }
        try? writeAtomically(path) { append in try cubin.withUnsafeBytes { try append($0) } }
        return cubin
    }
}
