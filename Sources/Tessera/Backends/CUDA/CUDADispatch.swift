// The GPU backend: one exhaustive switch from Primitive to the op families'
// functions (CUDA<Family>.swift, the same families as Backends/CPU and
// Kernels/<family>.cu). Views stay views; a family function returns nil
// where no kernel fits, and the primitive then runs on the CPU through the
// buffers' homes (inputs download, the output uploads when a GPU kernel next
// reads it), with one warning per primitive. Driver, NVRTC, memory and
// launch plumbing: Runtime/.

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
        if let out = try kernel(primitive, inputs, shape: shape, dtype: dtype) { return out }
        let types = inputs.map { "\($0.dtype)" }.joined(separator: ", ")
        return try fallback(primitive, inputs, shape, dtype, "has no CUDA kernel for (\(types)) → \(dtype)")
    }

    /// The one switch over `Primitive`: each case calls its family's function
    /// (CUDA<Family>.swift), which returns nil when no kernel fits these
    /// dtypes and layouts; `evaluate` then runs the primitive on the CPU.
    func kernel(_ primitive: Primitive, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        switch primitive {
        case .constant:
            fatalError("[eval] a constant has no inputs to compute from")
        // Shape (CUDAShape.swift): views, or copies.
        case .reshape:
            return try reshape(inputs[0], shape: shape)
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
            return try contiguousCopy(inputs[0])
        case .concatenate(let axis):
            return try concatenate(inputs, axis: axis, shape: shape, dtype: dtype)
        case .sliceUpdate(let start, let stride):
            return try sliceUpdate(inputs, start: start, stride: stride, dtype: dtype)
        case .arange(let start, let step):
            return try arange(start: start, step: step, shape: shape, dtype: dtype)
        // Element-wise (CUDAElementwise.swift).
        case .unary(let op):
            return try unary(op, inputs, shape: shape, dtype: dtype)
        case .binary(let op):
            return try binary(op, inputs, shape: shape, dtype: dtype)
        case .select:
            return try select(inputs, shape: shape, dtype: dtype)
        case .asType:
            return try asType(inputs, shape: shape, dtype: dtype)
        // Reduction (CUDAReduction.swift).
        case .reduce(let op, let axes):
            guard let name = CUDAKernelNames.reduce(op, input: inputs[0].dtype, output: dtype) else { return nil }
            return try reduce(name, inputs[0], axes: axes, shape: shape, dtype: dtype)
        case .argReduce(let op, let axis):
            return try argReduce(op, axis: axis, inputs[0], shape: shape)
        // Matmul (CUDAMatmul.swift).
        case .matmul:
            return try matmul(inputs[0], inputs[1], shape: shape, dtype: dtype)
        // Fast (CUDAFast.swift).
        case .softmax:
            return try rowKernel(.softmax, inputs, dtype: dtype)
        case .logSoftmax:
            return try rowKernel(.logsoftmax, inputs, dtype: dtype)
        case .rmsNorm(let eps, let hasWeight):
            return try rowKernel(
                .norm, inputs, dtype: dtype, eps: eps, center: false,
                weight: hasWeight ? inputs[1] : nil, bias: nil)
        case .layerNorm(let eps, let hasWeight, let hasBias):
            return try rowKernel(
                .norm, inputs, dtype: dtype, eps: eps, center: true, weight: hasWeight ? inputs[1] : nil,
                bias: hasBias ? inputs[hasWeight ? 2 : 1] : nil)
        case .rope(let dims, let traditional, let base, let scale, let offset, let hasFreqs):
            return try rope(
                inputs[0], freqs: hasFreqs ? inputs[1] : nil, dtype: dtype, dims: dims,
                traditional: traditional, base: base, scale: scale, offset: offset)
        // Attention (CUDAAttention.swift).
        case .scaledDotProductAttention(let scale, let causal):
            return try attention(inputs, shape: shape, dtype: dtype, scale: scale, causal: causal)
        // Quantized (CUDAQuantized.swift).
        case .affineQuantizeParameters(let groupSize, let bits):
            return try quantizeParameters(inputs[0], shape: shape, groupSize: groupSize, bits: bits)
        case .affineQuantizePack(let groupSize, let bits):
            return try quantizePack(inputs[0], inputs[1], shape: shape, groupSize: groupSize, bits: bits)
        case .affineDequantize(let groupSize, let bits):
            return try dequantize(inputs, shape: shape, dtype: dtype, groupSize: groupSize, bits: bits)
        case .quantizedMatmul(let groupSize, let bits, let transpose):
            return try quantizedMatmul(
                inputs, shape: shape, dtype: dtype, groupSize: groupSize, bits: bits,
                transpose: transpose, gather: false)
        case .gatherQuantizedMatmul(let groupSize, let bits, let transpose):
            return try quantizedMatmul(
                inputs, shape: shape, dtype: dtype, groupSize: groupSize, bits: bits,
                transpose: transpose, gather: true)
        // Random (CUDARandom.swift).
        case .randomBits:
            return try randomBits(inputs[0], shape: shape, dtype: dtype)
        // Indexing (CUDAIndexing.swift).
        case .gather(let axes, let sliceSizes):
            return try gather(inputs, axes: axes, sliceSizes: sliceSizes, shape: shape, dtype: dtype)
        case .scatter(let op, let axes):
            return try scatter(op, inputs, axes: axes, shape: shape, dtype: dtype)
        // Sort and scan (CUDASort.swift, CUDAScan.swift).
        case .sort(let op, let axis):
            return try sort(op, inputs[0], axis: axis, shape: shape, dtype: dtype)
        case .scan(let op, let axis, let reverse, let inclusive):
            return try scan(op, inputs[0], axis: axis, reverse: reverse, inclusive: inclusive, dtype: dtype)
        // Linear algebra (CUDALinalg.swift).
        case .inverse:
            return try linalg(.inverse, inputs, shape: shape, dtype: dtype)
        case .solve:
            return try linalg(.solve, inputs, shape: shape, dtype: dtype)
        case .cholesky(let upper):
            return try linalg(.cholesky(upper: upper), inputs, shape: shape, dtype: dtype)
        case .qr(let part):
            return try linalg(.qr(part: part), inputs, shape: shape, dtype: dtype)
        case .svd(let part):
            return try linalg(.svd(part: part), inputs, shape: shape, dtype: dtype)
        case .eigh(let part, let upper):
            return try linalg(.eigh(part: part, upper: upper), inputs, shape: shape, dtype: dtype)
        // Fused (CUDAFusedLaunch.swift).
        case .compiled(let kernel):
            return try compiled(kernel, inputs: inputs, shape: shape, dtype: dtype)
        // Communication runs on the host (through the buffers' host homes).
        case .collective, .host:
            return nil
        }
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
            try driver.check(
                driver.cuLaunchKernel(
                    function, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2), UInt32(block.0), UInt32(block.1),
                    UInt32(block.2), UInt32(sharedBytes), cudaStream, parameters, nil), "cuLaunchKernel(\(name))")
        }
    }

    func launch(_ name: String, _ l: CUDAGeometry.Launch, _ args: KernelArguments) throws {
        try launch(name, grid: l.grid, block: l.block, sharedBytes: l.sharedBytes, args)
    }

    func elementwiseGeometry(_ count: Int) -> LaunchGeometry {
        LaunchGeometry.elementwise(count: count, multiprocessors: device.multiprocessors)
    }

    /// A null pointer argument (an absent optional operand).
    func addNull(_ args: KernelArguments) { args.add(UInt64(0)) }

    /// `view` when its last `axes` axes are row-contiguous, else a contiguous copy (nil: no copy kernel).
    func innerContiguous(_ view: ArrayView, axes: Int) throws -> ArrayView? {
        let n = view.shape.count
        var expected = 1
        for i in stride(from: n - 1, through: max(0, n - axes), by: -1) where view.shape[i] != 1 {
            if view.strides[i] != expected { return try contiguousCopy(view) }
            expected *= view.shape[i]
        }
        return view
    }
}
