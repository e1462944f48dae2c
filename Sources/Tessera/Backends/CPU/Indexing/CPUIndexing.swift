// CPU indexing primitives: gather, scatter and slice update.
//
// gather: inputs [x, index_0...], the indices one shape B; the output
// (row-contiguous, B + sliceSizes) holds for each b the window of x of
// sliceSizes starting at index_j[b] on axes[j] (0 on the other axes).
// scatter: the output starts as a row-contiguous copy of x and each update
// window (updates has shape B + window) is combined into it at the same places.
// Indices of any integer dtype and any strides; a negative index counts from
// the end once, then the start is clamped so the window lies inside x (run
// time indices never trap, as in MLX and JAX's dynamic_slice).

/// The element offsets of every position of `shape` under `strides`, in row-major order.
func elementOffsets(shape: [Int], strides: [Int]) -> [Int] {
    var result: [Int] = []
    result.reserveCapacity(shape.reduce(1, *))
    let it = StridedIteration(shape: shape, strides: [strides])
    let n = it.rowLength, s = it.innerStride(0)
    it.forEachRow { o in
        for i in 0..<n { result.append(o[0] + i * s) }
    }
    return result
}

/// The values of an integer index array (shape B, any strides) as Int, row-major.
func indexValues(_ index: ArrayView) throws -> [Int] {
    struct Read: KindVisitor {
        let index: ArrayView
        func visitInteger<T: IntegerElement>(_: T.Type) throws -> [Int] {
            let p = try index.hostPointer(T.self)
            return elementOffsets(shape: index.shape, strides: index.strides).map { Int(truncatingIfNeeded: p[$0]) }
        }
        func visitBool() throws -> [Int] { unsupported("gather", .bool) }
        func visitFloat<T: FloatElement>(_: T.Type) throws -> [Int] { unsupported("gather", T.dtype) }
        func visitComplex() throws -> [Int] { unsupported("gather", .complex64) }
    }
    return try dispatch(index.dtype, Read(index: index))
}

/// Per position b of the index shape, the element offset (under `strides`) of
/// the window start the indices name, wrapped and clamped.
private func windowStarts(
    indices: [ArrayView], axes: [Int], shape: [Int], windowShape: [Int], strides: [Int], count: Int
) throws -> [Int] {
    var starts = [Int](repeating: 0, count: count)
    for (index, axis) in zip(indices, axes) {
        let n = shape[axis], hi = shape[axis] - windowShape[axis], stride = strides[axis]
        let values = try indexValues(index)
        for b in 0..<count {
            var i = values[b]
            if i < 0 { i += n }
            starts[b] += Swift.min(Swift.max(i, 0), hi) * stride
        }
    }
    return starts
}

enum IndexingKernels {
    static func gather(_ inputs: [ArrayView], axes: [Int], sliceSizes: [Int], output: ArrayView) throws {
        let x = inputs[0], indices = Array(inputs.dropFirst())
        let batch = output.count / Swift.max(sliceSizes.reduce(1, *), 1)
        let window = sliceSizes.reduce(1, *)
        if output.count == 0 || window == 0 { return }
        let starts = try windowStarts(
            indices: indices, axes: axes, shape: x.shape, windowShape: sliceSizes, strides: x.strides, count: batch)
        let windowOffsets = elementOffsets(shape: sliceSizes, strides: x.strides)
        func run<T>(_: T.Type) throws {
            let src = try x.hostPointer(T.self)
            let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: T.self)
            for b in 0..<batch {
                let s = src + starts[b], d = dst + b * window
                for j in 0..<window { d[j] = s[windowOffsets[j]] }
            }
        }
        // Moves elements as bits of their width: one loop for every dtype.
        switch x.dtype.size {
        case 1: try run(UInt8.self)
        case 2: try run(UInt16.self)
        case 4: try run(UInt32.self)
        default: try run(UInt64.self)
        }
    }
}

/// Scatter into a row-contiguous copy of x; `op` combines old and new values.
struct ScatterKernel: KindVisitor {
    let op: ScatterOp
    let axes: [Int]
    let inputs: [ArrayView]
    let output: ArrayView

    /// Runs `combine(old, update)` for every update element at its place in the output.
    private func scatter<T>(_: T.Type, _ combine: (T, T) -> T) throws {
        let x = inputs[0], updates = inputs[1], indices = Array(inputs.dropFirst(2))
        try copyAny(x, into: output)
        let windowShape = Array(updates.shape.suffix(x.shape.count))
        let batchShape = Array(updates.shape.dropLast(x.shape.count))
        let batch = batchShape.reduce(1, *), window = windowShape.reduce(1, *)
        if batch == 0 || window == 0 { return }
        let starts = try windowStarts(
            indices: indices, axes: axes, shape: x.shape, windowShape: windowShape, strides: output.strides,
            count: batch)
        let outWindow = elementOffsets(shape: windowShape, strides: output.strides)
        let updBatch = elementOffsets(shape: batchShape, strides: Array(updates.strides.dropLast(x.shape.count)))
        let updWindow = elementOffsets(shape: windowShape, strides: Array(updates.strides.suffix(x.shape.count)))
        let src = try updates.hostPointer(T.self)
        let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: T.self)
        for b in 0..<batch {
            let d = dst + starts[b], s = src + updBatch[b]
            for j in 0..<window { d[outWindow[j]] = combine(d[outWindow[j]], s[updWindow[j]]) }
        }
    }

    func visitBool() throws {
        switch op {
        case .set: try scatter(Bool.self) { $1 }
        case .add, .max: try scatter(Bool.self) { $0 || $1 }
        case .prod, .min: try scatter(Bool.self) { $0 && $1 }
        }
    }

    func visitInteger<T: IntegerElement>(_: T.Type) throws {
        switch op {
        case .set: try scatter(T.self) { $1 }
        case .add: try scatter(T.self) { $0 &+ $1 }
        case .prod: try scatter(T.self) { $0 &* $1 }
        case .max: try scatter(T.self) { Swift.max($0, $1) }
        case .min: try scatter(T.self) { Swift.min($0, $1) }
        }
    }

    func visitFloat<T: FloatElement>(_: T.Type) throws {
        switch op {
        case .set: try scatter(T.self) { $1 }
        case .add: try scatter(T.self) { T(math: $0.math + $1.math) }
        case .prod: try scatter(T.self) { T(math: $0.math * $1.math) }
        // NaN propagates, as in maximum/minimum.
        case .max:
            try scatter(T.self) { $0.math.isNaN || $1.math.isNaN ? T(math: .nan) : ($1.math > $0.math ? $1 : $0) }
        case .min:
            try scatter(T.self) { $0.math.isNaN || $1.math.isNaN ? T(math: .nan) : ($1.math < $0.math ? $1 : $0) }
        }
    }

    func visitComplex() throws {
        switch op {
        case .set: try scatter(Complex64.self) { $1 }
        case .add: try scatter(Complex64.self) { $0 + $1 }
        case .prod: try scatter(Complex64.self) { $0 * $1 }
        case .max, .min: unsupported("scatter_\(op.rawValue)", .complex64)
        }
    }
}
