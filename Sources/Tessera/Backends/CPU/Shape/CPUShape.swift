// CPU shape primitives. Reshape, transpose, broadcast and slice are views:
// new strides over the same buffer (Backends/Common/ShapeKernels.swift; reshape
// copies only when the strides cannot express the new shape). Copy and
// concatenate write new buffers.

extension ShapeKernels {
    static func reshape(_ input: ArrayView, to shape: [Int]) throws -> ArrayView {
        if input.count == 0 { return ArrayView.allocate(shape: shape, dtype: input.dtype) }
        if let strides = reshapedStrides(input, to: shape) {
            return input.with(shape: shape, offset: input.offset, strides: strides)
        }
        let copy = try contiguousCopy(input)
        return copy.with(shape: shape, offset: 0, strides: contiguousStrides(shape))
    }

    static func contiguousCopy(_ input: ArrayView) throws -> ArrayView {
        let out = ArrayView.allocate(shape: input.shape, dtype: input.dtype)
        _ = try out.buffer.hostPointer(forWriting: true)
        try copyAny(input, into: out)
        return out
    }

    /// A copy of `base` with `update` written into the window `start + i * stride`;
    /// `inPlace`: `base` was donated (owned by nothing else), so it is written itself.
    static func sliceUpdate(
        _ base: ArrayView, _ update: ArrayView, start: [Int], stride: [Int], inPlace: Bool = false
    ) throws -> ArrayView {
        let out = inPlace ? base : try contiguousCopy(base)
        if inPlace { _ = try out.buffer.hostPointer(forWriting: true) }
        let window = slice(out, start: start, stride: stride, shape: update.shape)
        try copyAny(update, into: window)
        return out
    }

    static func concatenate(_ inputs: [ArrayView], axis: Int, shape: [Int], dtype: DType) throws -> ArrayView {
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        _ = try out.buffer.hostPointer(forWriting: true)
        var start = 0
        for input in inputs {
            let region = out.with(shape: input.shape, offset: start * out.strides[axis], strides: out.strides)
            try copyAny(input, into: region)
            start += input.shape[axis]
        }
        return out
    }
}
