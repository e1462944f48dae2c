// CPU shape primitives. Reshape, transpose, broadcast and slice are views:
// new strides over the same buffer (reshape copies only when the strides
// cannot express the new shape). Copy and concatenate write new buffers.

enum ShapeKernels {
    /// Strides that show `view`'s elements in row-major order with `newShape`,
    /// or nil when that needs a copy. Works axis group by axis group: a group
    /// of old axes can be re-split only if it is contiguous within itself.
    static func reshapedStrides(_ view: ArrayView, to newShape: [Int]) -> [Int]? {
        let oldShape = view.shape.indices.filter { view.shape[$0] != 1 }.map { view.shape[$0] }
        let oldStrides = view.shape.indices.filter { view.shape[$0] != 1 }.map { view.strides[$0] }
        var newStrides = [Int](repeating: 0, count: newShape.count)
        var oi = 0, oj = 1, ni = 0, nj = 1
        while ni < newShape.count && oi < oldShape.count {
            var np = newShape[ni], op = oldShape[oi]
            while np != op {
                if np < op {
                    np *= newShape[nj]
                    nj += 1
                } else {
                    op *= oldShape[oj]
                    oj += 1
                }
            }
            for k in oi..<(oj - 1) where oldStrides[k] != oldShape[k + 1] * oldStrides[k + 1] {
                return nil
            }
            newStrides[nj - 1] = oldStrides[oj - 1]
            var k = nj - 1
            while k > ni {
                newStrides[k - 1] = newStrides[k] * newShape[k]
                k -= 1
            }
            ni = nj
            nj += 1
            oi = oj
            oj += 1
        }
        let last = ni >= 1 ? newStrides[ni - 1] : 1
        for k in ni..<newShape.count { newStrides[k] = last }
        return newStrides
    }

    static func reshape(_ input: ArrayView, to shape: [Int]) throws -> ArrayView {
        if input.count == 0 { return ArrayView.allocate(shape: shape, dtype: input.dtype) }
        if let strides = reshapedStrides(input, to: shape) {
            return input.with(shape: shape, offset: input.offset, strides: strides)
        }
        let copy = try contiguousCopy(input)
        return copy.with(shape: shape, offset: 0, strides: contiguousStrides(shape))
    }

    static func transpose(_ input: ArrayView, axes: [Int]) -> ArrayView {
        input.with(shape: axes.map { input.shape[$0] }, offset: input.offset, strides: axes.map { input.strides[$0] })
    }

    static func broadcast(_ input: ArrayView, to shape: [Int]) -> ArrayView {
        let lead = shape.count - input.shape.count
        let strides = shape.indices.map { i -> Int in
            i < lead || input.shape[i - lead] == 1 ? 0 : input.strides[i - lead]
        }
        return input.with(shape: shape, offset: input.offset, strides: strides)
    }

    static func slice(_ input: ArrayView, start: [Int], stride: [Int], shape: [Int]) -> ArrayView {
        var offset = input.offset
        for i in start.indices where shape[i] > 0 { offset += start[i] * input.strides[i] }
        return input.with(shape: shape, offset: offset, strides: zip(input.strides, stride).map { $0 * $1 })
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
