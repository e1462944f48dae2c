// Strided iteration over several operands of one shape. Axes are collapsed
// where every operand is contiguous across them, so contiguous and broadcast
// inputs run as a few long rows; kernels then loop over each row with the
// innermost strides.

struct StridedIteration {
    /// The collapsed iteration shape (never empty, no zero-size case: see `isEmpty`).
    private(set) var shape: [Int]
    /// Per operand, the collapsed strides in elements.
    private(set) var strides: [[Int]]
    let isEmpty: Bool

    init(shape: [Int], strides: [[Int]]) {
        isEmpty = shape.contains(0)
        var keptShape: [Int] = []
        var keptStrides = [[Int]](repeating: [], count: strides.count)
        for axis in shape.indices where shape[axis] != 1 {
            let n = shape[axis]
            if let last = keptShape.indices.last,
                strides.indices.allSatisfy({ strides[$0][axis] * n == keptStrides[$0][last] })
            {
                keptShape[last] *= n
                for k in strides.indices { keptStrides[k][last] = strides[k][axis] }
            } else {
                keptShape.append(n)
                for k in strides.indices { keptStrides[k].append(strides[k][axis]) }
            }
        }
        if keptShape.isEmpty {
            keptShape = [1]
            keptStrides = keptStrides.map { _ in [0] }
        }
        self.shape = keptShape
        self.strides = keptStrides
    }

    var rowLength: Int { shape[shape.count - 1] }
    func innerStride(_ operand: Int) -> Int { strides[operand][shape.count - 1] }

    /// Calls `body(offsets)` once per innermost row, `offsets[k]` being operand
    /// k's element offset at the row start.
    @inline(__always)
    func forEachRow(_ body: (UnsafeMutableBufferPointer<Int>) throws -> Void) rethrows {
        if isEmpty { return }
        let outer = shape.count - 1
        let operands = strides.count
        try withUnsafeTemporaryAllocation(of: Int.self, capacity: operands + outer) { scratch in
            let offsets = UnsafeMutableBufferPointer(rebasing: scratch[0..<operands])
            let index = UnsafeMutableBufferPointer(rebasing: scratch[operands...])
            for k in 0..<operands { offsets[k] = 0 }
            for a in 0..<outer { index[a] = 0 }
            while true {
                try body(offsets)
                // Odometer step over the outer axes.
                var axis = outer - 1
                while axis >= 0 {
                    index[axis] += 1
                    for k in 0..<operands { offsets[k] += strides[k][axis] }
                    if index[axis] < shape[axis] { break }
                    for k in 0..<operands { offsets[k] -= strides[k][axis] * shape[axis] }
                    index[axis] = 0
                    axis -= 1
                }
                if axis < 0 { return }
            }
        }
    }
}

/// Calls `body(index, offsets)` for each element of `shape` (row-major), with
/// each operand's element offset.
func forEachBatch(shape: [Int], strides: [[Int]], _ body: (Int, [Int]) throws -> Void) rethrows {
    let it = StridedIteration(shape: shape, strides: strides)
    if it.isEmpty { return }
    let n = it.rowLength
    let inner = strides.indices.map { it.innerStride($0) }
    var index = 0
    try it.forEachRow { o in
        for i in 0..<n {
            try body(index, inner.indices.map { o[$0] + i * inner[$0] })
            index += 1
        }
    }
}

/// Applies `f` to each element of `input`, writing `output` (same shape, any strides).
@inline(__always)
func mapElements<In, Out>(_ input: ArrayView, into output: ArrayView, _ f: (In) -> Out) throws {
    let src = try input.hostPointer(In.self)
    let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: Out.self) + output.offset
    let it = StridedIteration(shape: input.shape, strides: [input.strides, output.strides])
    let n = it.rowLength, si = it.innerStride(0), di = it.innerStride(1)
    it.forEachRow { o in
        let s = src + o[0], d = dst + o[1]
        if si == 1 && di == 1 {
            for i in 0..<n { d[i] = f(s[i]) }
        } else {
            for i in 0..<n { d[i * di] = f(s[i * si]) }
        }
    }
}

/// Applies `f` pairwise to `a` and `b` (both of the output shape), writing `output`.
@inline(__always)
func zipElements<A, B, Out>(_ a: ArrayView, _ b: ArrayView, into output: ArrayView, _ f: (A, B) -> Out) throws {
    let pa = try a.hostPointer(A.self), pb = try b.hostPointer(B.self)
    let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: Out.self) + output.offset
    let it = StridedIteration(shape: output.shape, strides: [a.strides, b.strides, output.strides])
    let n = it.rowLength, sa = it.innerStride(0), sb = it.innerStride(1), so = it.innerStride(2)
    it.forEachRow { o in
        let x = pa + o[0], y = pb + o[1], d = dst + o[2]
        if sa == 1 && sb == 1 && so == 1 {
            for i in 0..<n { d[i] = f(x[i], y[i]) }
        } else if sa == 1 && sb == 0 && so == 1 {
            let v = y[0]
            for i in 0..<n { d[i] = f(x[i], v) }
        } else if sa == 0 && sb == 1 && so == 1 {
            let v = x[0]
            for i in 0..<n { d[i] = f(v, y[i]) }
        } else {
            for i in 0..<n { d[i * so] = f(x[i * sa], y[i * sb]) }
        }
    }
}

/// Copies `input` into `output` (same shape, any strides) element by element,
/// moving `T`-sized units (any dtype of that size).
func copyElements<T>(_ input: ArrayView, into output: ArrayView, as _: T.Type) throws {
    try mapElements(input, into: output) { (x: T) in x }
}

/// Copies `input` into `output` for any dtype, by element size.
func copyAny(_ input: ArrayView, into output: ArrayView) throws {
    switch input.dtype.size {
    case 1: try copyElements(input, into: output, as: UInt8.self)
    case 2: try copyElements(input, into: output, as: UInt16.self)
    case 4: try copyElements(input, into: output, as: UInt32.self)
    case 8: try copyElements(input, into: output, as: UInt64.self)
    default: fatalError("[copy] unexpected element size \(input.dtype.size)")
    }
}
