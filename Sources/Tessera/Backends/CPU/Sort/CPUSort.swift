// CPU sorting along one axis: sort, argSort, partition, argPartition. Each
// row along the axis (any input strides) is sorted stably by (value, index)
// with NaN after every number, as numpy and MLX order it; the output is
// row-contiguous. Partitions are full sorts, which satisfy their contract.

/// Calls `body(inputOffset, outputOffset)` once per row of `shape` along `axis`.
func forEachAxisRow(
    shape: [Int], axis: Int, inputStrides: [Int], outputStrides: [Int], _ body: (Int, Int) throws -> Void
) rethrows {
    var kept = shape, inKept = inputStrides, outKept = outputStrides
    kept.remove(at: axis)
    inKept.remove(at: axis)
    outKept.remove(at: axis)
    let it = StridedIteration(shape: kept, strides: [inKept, outKept])
    if it.isEmpty || shape[axis] == 0 { return }
    let n = it.rowLength, si = it.innerStride(0), so = it.innerStride(1)
    try it.forEachRow { o in
        for i in 0..<n { try body(o[0] + i * si, o[1] + i * so) }
    }
}

struct SortKernel: KindVisitor {
    let op: SortOp
    let axis: Int
    let input: ArrayView
    let output: ArrayView

    private func run<T>(_: T.Type, _ less: (T, T) -> Bool) throws {
        let src = try input.hostPointer(T.self)
        let out = try output.buffer.hostPointer(forWriting: true)
        let n = input.shape[axis], si = input.strides[axis], so = output.strides[axis]
        let wantsIndices: Bool
        switch op {
        case .sort, .partition: wantsIndices = false
        case .argSort, .argPartition: wantsIndices = true
        }
        var order = [Int](repeating: 0, count: n)
        forEachAxisRow(shape: input.shape, axis: axis, inputStrides: input.strides, outputStrides: output.strides) {
            inBase, outBase in
            for i in 0..<n { order[i] = i }
            let row = src + inBase
            order.sort { a, b in
                let x = row[a * si], y = row[b * si]
                return less(x, y) || (!less(y, x) && a < b)
            }
            if wantsIndices {
                let d = out.assumingMemoryBound(to: UInt32.self) + outBase
                for i in 0..<n { d[i * so] = UInt32(order[i]) }
            } else {
                let d = out.assumingMemoryBound(to: T.self) + outBase
                for i in 0..<n { d[i * so] = row[order[i] * si] }
            }
        }
    }

    func visitBool() throws { try run(Bool.self) { !$0 && $1 } }
    func visitInteger<T: IntegerElement>(_: T.Type) throws { try run(T.self) { $0 < $1 } }
    func visitFloat<T: FloatElement>(_: T.Type) throws {
        try run(T.self) { a, b in
            let x = a.math, y = b.math
            return x < y || (y.isNaN && !x.isNaN)
        }
    }
    func visitComplex() throws { unsupported("sort", .complex64) }
}
