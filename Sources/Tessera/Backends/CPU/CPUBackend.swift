// The CPU backend: one exhaustive switch from Primitive to kernel.

enum CPUBackend {
    /// `donated`: an input view (row-contiguous, of the output's shape and
    /// dtype, owned by nothing else) whose buffer an element-wise op may write
    /// (for sliceUpdate: its base, updated in place).
    static func evaluate(
        _ primitive: Primitive, inputs: [ArrayView], shape: [Int], dtype: DType, donated: ArrayView? = nil
    ) throws -> ArrayView {
        switch primitive {
        case .constant:
            fatalError("[eval] a constant has no inputs to compute from")
        case .reshape:
            return try ShapeKernels.reshape(inputs[0], to: shape)
        case .transpose(let axes):
            return ShapeKernels.transpose(inputs[0], axes: axes)
        case .broadcast:
            return ShapeKernels.broadcast(inputs[0], to: shape)
        case .slice(let start, let stride):
            return ShapeKernels.slice(inputs[0], start: start, stride: stride, shape: shape)
        case .copy:
            return try ShapeKernels.contiguousCopy(inputs[0])
        case .concatenate(let axis):
            return try ShapeKernels.concatenate(inputs, axis: axis, shape: shape, dtype: dtype)
        case .identity, .stopGradient:
            return inputs[0]
        case .custom(let rules, let index):
            return inputs[rules.primalCount + index]
        case .sliceUpdate(let start, let stride):
            return try ShapeKernels.sliceUpdate(
                inputs[0], inputs[1], start: start, stride: stride, inPlace: donated != nil)
        case .compiled(let kernel):
            return try FusedKernels.evaluate(kernel, inputs: inputs, shape: shape, dtype: dtype)
        case .collective(let c):
            return try CollectiveKernels.evaluate(c, inputs: inputs, shape: shape, dtype: dtype)
        case .host(let kernel):
            return try HostKernels.evaluate(kernel, inputs: inputs, shape: shape, dtype: dtype)
        default:
            break
        }
        let output =
            donated.map {
                ArrayView(shape: shape, dtype: dtype, buffer: $0.buffer, offset: 0, strides: contiguousStrides(shape))
            } ?? ArrayView.allocate(shape: shape, dtype: dtype)
        _ = try output.buffer.hostPointer(forWriting: true)
        switch primitive {
        case .arange(let start, let step):
            try dispatchElement(dtype, ElementwiseKernels.Arange(start: start, step: step, output: output))
        case .unary(let op):
            try dispatch(inputs[0].dtype, UnaryKernel(op: op, input: inputs[0], output: output))
        case .binary(let op):
            try dispatch(inputs[0].dtype, BinaryKernel(op: op, a: inputs[0], b: inputs[1], output: output))
        case .select:
            try ElementwiseKernels.select(inputs[0], inputs[1], inputs[2], into: output)
        case .asType:
            try dispatchElement(inputs[0].dtype, AsTypeKernel(input: inputs[0], output: output))
        case .reduce(let op, let axes):
            try dispatch(inputs[0].dtype, ReduceKernel(op: op, axes: axes, input: inputs[0], output: output))
        case .argReduce(let op, let axis):
            try dispatch(inputs[0].dtype, ArgReduceKernel(op: op, axis: axis, input: inputs[0], output: output))
        case .matmul:
            try dispatch(dtype, MatmulKernel(a: inputs[0], b: inputs[1], output: output))
        case .affineQuantizeParameters(let groupSize, let bits):
            try dispatch(
                inputs[0].dtype,
                QuantizedKernel(
                    job: .parameters, groupSize: groupSize, bits: bits, inputs: inputs, output: output))
        case .affineQuantizePack(let groupSize, let bits):
            try dispatch(
                inputs[0].dtype,
                QuantizedKernel(
                    job: .pack, groupSize: groupSize, bits: bits, inputs: inputs, output: output))
        case .affineDequantize(let groupSize, let bits):
            try dispatch(
                dtype,
                QuantizedKernel(
                    job: .dequantize, groupSize: groupSize, bits: bits, inputs: inputs, output: output))
        case .quantizedMatmul(let groupSize, let bits, let transpose) where inputs[2].dtype != inputs[0].dtype:
            try QuantizedKernels.mixedMatmul(
                ShapeKernels.batchedQuantizedOperands(inputs, rank: shape.count), groupSize: groupSize, bits: bits,
                transpose: transpose, into: output)
        case .quantizedMatmul(let groupSize, let bits, let transpose):
            try dispatch(
                dtype,
                QuantizedKernel(
                    job: .matmul(transpose: transpose), groupSize: groupSize, bits: bits,
                    inputs: ShapeKernels.batchedQuantizedOperands(inputs, rank: shape.count), output: output))
        case .gatherQuantizedMatmul(let groupSize, let bits, let transpose):
            try dispatch(
                dtype,
                QuantizedKernel(
                    job: .gatherMatmul(transpose: transpose), groupSize: groupSize, bits: bits, inputs: inputs,
                    output: output))
        case .softmax, .logSoftmax, .rmsNorm, .layerNorm, .rope, .scaledDotProductAttention:
            try dispatch(dtype, FastKernel(primitive: primitive, inputs: inputs, output: output))
        case .randomBits:
            try RandomKernels.bits(keys: inputs[0], output: output)
        case .inverse, .solve, .cholesky, .qr, .svd, .eigh:
            try LinalgKernels.evaluate(primitive, inputs: inputs, output: output)
        case .gather(let axes, let sliceSizes):
            try IndexingKernels.gather(inputs, axes: axes, sliceSizes: sliceSizes, output: output)
        case .scatter(let op, let axes):
            try dispatch(dtype, ScatterKernel(op: op, axes: axes, inputs: inputs, output: output))
        case .sort(let op, let axis):
            try dispatch(inputs[0].dtype, SortKernel(op: op, axis: axis, input: inputs[0], output: output))
        case .scan(let op, let axis, let reverse, let inclusive):
            try dispatch(
                dtype,
                ScanKernel(op: op, axis: axis, reverse: reverse, inclusive: inclusive, input: inputs[0], output: output)
            )
        case .constant, .reshape, .transpose, .broadcast, .slice, .copy, .concatenate, .identity, .stopGradient,
            .custom, .sliceUpdate, .compiled, .collective, .host:
            fatalError("unreachable: handled above")
        }
        return output
    }
}
