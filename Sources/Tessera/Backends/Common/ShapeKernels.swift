// View math shared by the CPU and CUDA backends: reshape, transpose,
// broadcast and slice as new strides over the same buffer, and the
// broadcasting of operands to a batch shape. No element is read or written
// here; each backend adds its copies (CPUShape.swift, CUDAShape.swift).

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

    /// `view`'s element strides seen from `shape` (zero on broadcast axes).
    static func broadcastStrides(_ view: ArrayView, to shape: [Int]) -> [Int] {
        let lead = shape.count - view.shape.count
        return shape.indices.map { a in
            guard a >= lead else { return 0 }
            return view.shape[a - lead] == 1 && shape[a] != 1 ? 0 : view.strides[a - lead]
        }
    }

    /// quantizedMatmul's operands with weights, scales and biases that are
    /// shared (2-D) or have size-1 batch axes broadcast as views to x's batch
    /// axes (`rank`: the output's).
    static func batchedQuantizedOperands(_ inputs: [ArrayView], rank: Int) -> [ArrayView] {
        var inputs = inputs
        let batch = inputs[0].shape.prefix(rank - 2)
        for i in 1...3 where inputs[i].shape.dropLast(2) != batch {
            let view = inputs[i]
            inputs[i] = broadcast(view, to: batch + view.shape.suffix(2))
        }
        return inputs
    }
}
