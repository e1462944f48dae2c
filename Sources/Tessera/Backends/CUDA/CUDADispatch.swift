// The GPU backend: one exhaustive switch from Primitive to CUDA kernel.
// Views stay views; primitives (or dtypes) without a kernel run on the CPU
// through the buffers' homes (their inputs download, their output uploads
// when a GPU kernel next reads it), with one warning per primitive.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension CUDABackend {
    /// Computes `primitive` with kernels and copies queued on the CUDA stream of Tessera stream `stream`.
    static func evaluate(
        _ primitive: Primitive, inputs: [ArrayView], shape: [Int], dtype: DType, stream: Int = 0
    ) throws -> ArrayView {
        guard let context else { throw TesseraError.deviceUnavailable(unavailableReason) }
        return try CUDADispatch(context: context, stream: stream)
            .evaluate(primitive, inputs: inputs, shape: shape, dtype: dtype)
    }

    /// Whether any GPU kernel computes `primitive` (for some dtypes). Those
    /// without run on the CPU; docs/GPU.md lists them.
    static func hasKernels(_ primitive: Primitive) -> Bool {
        switch primitive {
        case .constant, .arange, .unary, .binary, .select, .asType, .reduce, .reshape, .transpose, .broadcast,
            .slice, .copy, .concatenate, .identity, .stopGradient, .custom, .sliceUpdate:
            return true
        case .argReduce, .matmul, .affineQuantizeParameters, .affineQuantizePack, .affineDequantize,
            .quantizedMatmul, .gatherQuantizedMatmul, .softmax, .logSoftmax, .rmsNorm, .layerNorm, .rope,
            .scaledDotProductAttention:
            return hasDenseKernels(primitive)
        case .randomBits, .inverse, .solve, .cholesky, .qr, .svd, .eigh, .gather, .scatter, .sort, .scan:
            return hasIndexingKernels(primitive)
        case .compiled:
            return hasCompiledKernels(primitive)
        case .collective:
            // Communication runs on the host (through the buffers' host homes); NCCL would keep it on the device.
            return false
        }
    }
}

/// Primitives that ran on the CPU for want of a GPU kernel, warned about once each.
enum CUDAFallback {
    private static let lock = Lock()
    nonisolated(unsafe) private static var warned: Set<String> = []

    static var warnedPrimitives: Set<String> { lock.withLock { warned } }

    static func warnOnce(_ name: String, _ detail: String) {
        let first = lock.withLock { warned.insert(name).inserted }
        if first { Diagnostics.logger.warning("[gpu] \(name) \(detail); running it on the CPU (warned once)") }
    }
}

struct CUDADispatch {
    let context: CUDAContext
    /// The Tessera stream (on this device) whose CUDA stream the work goes on.
    var stream: Int = 0
    var device: CUDADevice { context.device }
    var cudaStream: CUhandle? { get throws { try device.stream(stream) } }

    func evaluate(_ primitive: Primitive, inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView {
        guard CUDABackend.hasKernels(primitive) else {
            return try fallback(primitive, inputs, shape, dtype, "has no CUDA kernel yet")
        }
        switch primitive {
        case .constant:
            fatalError("[eval] a constant has no inputs to compute from")
        case .reshape:
            let input = inputs[0]
            if input.count == 0 { return ArrayView.allocate(shape: shape, dtype: dtype) }
            if let strides = ShapeKernels.reshapedStrides(input, to: shape) {
                return input.with(shape: shape, offset: input.offset, strides: strides)
            }
            guard let copy = try contiguousCopy(input) else {
                return try fallback(primitive, inputs, shape, dtype, "of \(input.dtype) has no CUDA copy")
            }
            return copy.with(shape: shape, offset: 0, strides: contiguousStrides(shape))
        case .transpose(let axes):
            return ShapeKernels.transpose(inputs[0], axes: axes)
        case .broadcast:
            return ShapeKernels.broadcast(inputs[0], to: shape)
        case .slice(let start, let stride):
            return ShapeKernels.slice(inputs[0], start: start, stride: stride, shape: shape)
        case .identity, .stopGradient:
            return inputs[0]
        case .custom(let rules, let index):
            return inputs[rules.primalCount + index]
        case .copy:
            if let out = try contiguousCopy(inputs[0]) { return out }
        case .concatenate(let axis):
            guard inputs.allSatisfy({ $0.dtype == dtype }), CUDAKernelNames.copy(dtype) != nil else { break }
            let out = ArrayView.allocate(shape: shape, dtype: dtype)
            var start = 0
            for input in inputs {
                let region = out.with(shape: input.shape, offset: start * out.strides[axis], strides: out.strides)
                guard try copy(input, into: region) else { return try fallback(primitive, inputs, shape, dtype, "rank") }
                start += input.shape[axis]
            }
            return out
        case .sliceUpdate(let start, let stride):
            guard inputs[1].dtype == dtype, let out = try contiguousCopy(inputs[0]) else { break }
            let window = ShapeKernels.slice(out, start: start, stride: stride, shape: inputs[1].shape)
            if try copy(inputs[1], into: window) { return out }
        case .arange(let start, let step):
            guard let name = CUDAKernelNames.arange(dtype) else { break }
            let out = ArrayView.allocate(shape: shape, dtype: dtype)
            guard out.count > 0 else { return out }
            let args = KernelArguments()
            args.addPointer(try outputPointer(out))
            args.add(int64: out.count)
            args.add(start)
            args.add(step)
            try launch(name, .elementwise(count: out.count, multiprocessors: device.multiprocessors), args)
            return out
        case .unary(let op):
            if let name = CUDAKernelNames.unary(op, input: inputs[0].dtype, output: dtype),
               let out = try elementwise(name, inputs, shape: shape, dtype: dtype) { return out }
        case .binary(let op):
            if inputs[0].dtype == inputs[1].dtype,
               let name = CUDAKernelNames.binary(op, input: inputs[0].dtype, output: dtype),
               let out = try elementwise(name, inputs, shape: shape, dtype: dtype) { return out }
        case .select:
            if inputs[0].dtype == .bool, inputs[1].dtype == dtype, inputs[2].dtype == dtype,
               let name = CUDAKernelNames.select(dtype),
               let out = try elementwise(name, inputs, shape: shape, dtype: dtype) { return out }
        case .asType:
            if inputs[0].dtype == dtype, let out = try contiguousCopy(inputs[0]) { return out }
            if let name = CUDAKernelNames.asType(from: inputs[0].dtype, to: dtype),
               let out = try elementwise(name, inputs, shape: shape, dtype: dtype) { return out }
        case .reduce(let op, let axes):
            if let name = CUDAKernelNames.reduce(op, input: inputs[0].dtype, output: dtype),
               let out = try reduce(name, inputs[0], axes: axes, shape: shape, dtype: dtype) { return out }
        case .argReduce, .matmul, .affineQuantizeParameters, .affineQuantizePack, .affineDequantize,
            .quantizedMatmul, .gatherQuantizedMatmul, .softmax, .logSoftmax, .rmsNorm, .layerNorm, .rope,
            .scaledDotProductAttention:
            if let out = try evaluateDense(primitive, inputs, shape: shape, dtype: dtype) { return out }
        case .randomBits, .inverse, .solve, .cholesky, .qr, .svd, .eigh, .gather, .scatter, .sort, .scan:
            if let out = try evaluateIndexing(primitive, inputs, shape: shape, dtype: dtype) { return out }
        case .compiled:
            if let out = try evaluateCompiled(primitive, inputs, shape: shape, dtype: dtype) { return out }
        case .collective:
            break
        }
        let types = inputs.map { "\($0.dtype)" }.joined(separator: ", ")
        return try fallback(primitive, inputs, shape, dtype, "has no CUDA kernel for (\(types)) → \(dtype)")
    }

    func fallback(
        _ primitive: Primitive, _ inputs: [ArrayView], _ shape: [Int], _ dtype: DType, _ why: String
    ) throws -> ArrayView {
        CUDAFallback.warnOnce(primitive.name, why)
        try device.synchronize(stream: stream)
        return try CPUBackend.evaluate(primitive, inputs: inputs, shape: shape, dtype: dtype)
    }

    // MARK: launches

    /// An empty view's offset can point past its (empty) buffer, so it gets
    /// the buffer's start: kernels never read it, and no out-of-range pointer is formed.
    func inputPointer(_ view: ArrayView) throws -> UnsafeRawPointer {
        let base = try view.buffer.devicePointer(on: context.home, stream: stream)
        return UnsafeRawPointer(base + (view.count == 0 ? 0 : view.offset * view.dtype.size))
    }

    func outputPointer(_ view: ArrayView) throws -> UnsafeRawPointer {
        let base = try view.buffer.devicePointer(on: context.home, stream: stream, forWriting: true)
        return UnsafeRawPointer(base + (view.count == 0 ? 0 : view.offset * view.dtype.size))
    }

    func launch(_ name: String, _ geometry: LaunchGeometry, _ args: KernelArguments) throws {
        try launch(name, grid: (geometry.blocks, 1, 1), block: (geometry.threads, 1, 1), sharedBytes: 0, args)
    }

    /// A launch with a 3-D grid and block and `sharedBytes` of dynamic shared memory.
    func launch(
        _ name: String, grid: (Int, Int, Int), block: (Int, Int, Int), sharedBytes: Int, _ args: KernelArguments
    ) throws {
        let function = try context.kernels.function(name, in: CUDAKernelNames.file(of: name))
        try launch(function, named: name, grid: grid, block: block, sharedBytes: sharedBytes, args)
    }

    /// Launches a loaded `function` on this dispatch's CUDA stream (`name` for errors).
    func launch(
        _ function: CUhandle?, named name: String, grid: (Int, Int, Int), block: (Int, Int, Int), sharedBytes: Int,
        _ args: KernelArguments
    ) throws {
        try device.makeCurrent()
        let driver = device.driver
        try args.withPointers { parameters in
            try driver.check(driver.cuLaunchKernel(
                function, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2), UInt32(block.0), UInt32(block.1),
                UInt32(block.2), UInt32(sharedBytes), cudaStream, parameters, nil), "cuLaunchKernel(\(name))")
        }
    }

    /// Unary, binary, select and asType kernels: inputs (any strides) → a
    /// fresh contiguous output. nil when the layout has too many axes.
    func elementwise(_ name: String, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        let layout = StridedLayout.collapse(shape: shape, strides: inputs.map(\.strides))
        guard layout.rank <= StridedLayout.maxRank else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }
        let args = KernelArguments()
        for input in inputs { args.addPointer(try inputPointer(input)) }
        args.addPointer(try outputPointer(out))
        args.add(int64: out.count)
        args.add(int32: layout.rank)
        args.add(dims: layout.shape)
        for strides in layout.strides { args.add(dims: strides) }
        try launch(name, .elementwise(count: out.count, multiprocessors: device.multiprocessors), args)
        return out
    }

    /// A row-contiguous copy of `input`, or nil when no copy kernel fits.
    func contiguousCopy(_ input: ArrayView) throws -> ArrayView? {
        guard CUDAKernelNames.copy(input.dtype) != nil else { return nil }
        let out = ArrayView.allocate(shape: input.shape, dtype: input.dtype)
        return try copy(input, into: out) ? out : nil
    }

    /// Writes `input` into `output` (same shape, any strides); false when the layout has too many axes.
    func copy(_ input: ArrayView, into output: ArrayView) throws -> Bool {
        guard let name = CUDAKernelNames.copy(input.dtype) else { return false }
        let layout = StridedLayout.collapse(shape: input.shape, strides: [input.strides, output.strides])
        guard layout.rank <= StridedLayout.maxRank else { return false }
        guard input.count > 0 else { return true }
        let args = KernelArguments()
        args.addPointer(try inputPointer(input))
        args.addPointer(try outputPointer(output))
        args.add(int64: input.count)
        args.add(int32: layout.rank)
        args.add(dims: layout.shape)
        args.add(dims: layout.strides[0])
        args.add(dims: layout.strides[1])
        try launch(name, .elementwise(count: input.count, multiprocessors: device.multiprocessors), args)
        return true
    }

    /// One block per output element; kept and reduced axes collapsed separately.
    func reduce(_ name: String, _ input: ArrayView, axes: [Int], shape: [Int], dtype: DType) throws -> ArrayView? {
        let reduced = Set(axes)
        let keptAxes = input.shape.indices.filter { !reduced.contains($0) }
        let reducedAxes = input.shape.indices.filter { reduced.contains($0) }
        let kept = StridedLayout.collapse(
            shape: keptAxes.map { input.shape[$0] }, strides: [keptAxes.map { input.strides[$0] }], linear: false)
        let red = StridedLayout.collapse(
            shape: reducedAxes.map { input.shape[$0] }, strides: [reducedAxes.map { input.strides[$0] }], linear: false)
        guard kept.rank <= StridedLayout.maxRank, red.rank <= StridedLayout.maxRank else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }
        let args = KernelArguments()
        args.addPointer(try inputPointer(input))
        args.addPointer(try outputPointer(out))
        args.add(int64: reducedAxes.reduce(1) { $0 * input.shape[$1] })
        args.add(int32: kept.rank)
        args.add(dims: kept.shape)
        args.add(dims: kept.strides[0])
        args.add(int32: red.rank)
        args.add(dims: red.shape)
        args.add(dims: red.strides[0])
        try launch(name, .reduction(outputs: out.count), args)
        return out
    }
}
