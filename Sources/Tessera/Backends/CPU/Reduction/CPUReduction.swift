// CPU reductions. The output keeps reduced axes with size 1. Each output
// element walks its reduced sub-block through the input strides. Floating
// sums and products accumulate in double precision; integer ones wrap in the
// element type (MLX keeps the dtype); max/min propagate NaN as numpy does.

struct ReductionLayout {
    /// Per output element (row-major over the kept axes): the input offset.
    let keptShape: [Int]
    let keptStrides: [Int]
    /// The reduced sub-block each output element walks.
    let reducedShape: [Int]
    let reducedStrides: [Int]

    init(input: ArrayView, axes: [Int]) {
        var ks: [Int] = [], kst: [Int] = [], rs: [Int] = [], rst: [Int] = []
        for i in input.shape.indices {
            if axes.contains(i) {
                rs.append(input.shape[i])
                rst.append(input.strides[i])
            } else {
                ks.append(input.shape[i])
                kst.append(input.strides[i])
            }
        }
        keptShape = ks
        keptStrides = kst
        reducedShape = rs
        reducedStrides = rst
    }

    /// Calls `body(outIndex, reducedIteration, baseOffset)` per output element.
    func forEachOutput(_ body: (Int, StridedIteration, Int) throws -> Void) rethrows {
        let inner = StridedIteration(shape: reducedShape, strides: [reducedStrides])
        let outer = StridedIteration(shape: keptShape, strides: [keptStrides])
        if outer.isEmpty { return }
        var index = 0
        let n = outer.rowLength, s = outer.innerStride(0)
        try outer.forEachRow { o in
            for i in 0..<n {
                try body(index, inner, o[0] + i * s)
                index += 1
            }
        }
    }

    /// Folds the reduced block starting at `base` of `p` with `f`.
    @inline(__always)
    static func fold<T, A>(_ p: UnsafePointer<T>, _ it: StridedIteration, _ base: Int, _ initial: A, _ f: (A, T) -> A)
        -> A
    {
        var acc = initial
        let n = it.rowLength, s = it.innerStride(0)
        it.forEachRow { o in
            let q = p + base + o[0]
            if s == 1 {
                for i in 0..<n { acc = f(acc, q[i]) }
            } else {
                for i in 0..<n { acc = f(acc, q[i * s]) }
            }
        }
        return acc
    }
}

struct ReduceKernel: KindVisitor {
    let op: ReduceOp
    let axes: [Int]
    let input: ArrayView
    let output: ArrayView

    /// Writes `fold(initial, f)` then `finish` for each output element.
    private func reduce<T, A, Out>(_: T.Type, _ initial: A, _ f: (A, T) -> A, _ finish: (A) -> Out) throws {
        let src = UnsafePointer(try input.hostPointer(T.self))
        let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: Out.self)
        ReductionLayout(input: input, axes: axes).forEachOutput { index, it, base in
            dst[index] = finish(ReductionLayout.fold(src, it, base, initial, f))
        }
    }

    /// all/any for any element that can say whether it is zero.
    private func logical<T>(_: T.Type, _ isNonZero: (T) -> Bool) throws -> Bool {
        switch op {
        case .all: try reduce(T.self, true, { $0 && isNonZero($1) }, { $0 })
        case .any: try reduce(T.self, false, { $0 || isNonZero($1) }, { $0 })
        default: return false
        }
        return true
    }

    func visitBool() throws {
        if try logical(Bool.self, { $0 }) { return }
        switch op {
        case .max: try reduce(Bool.self, false, { $0 || $1 }, { $0 })
        case .min, .prod: try reduce(Bool.self, true, { $0 && $1 }, { $0 })
        default: unsupported(op.rawValue, .bool)  // sum of bool is computed in int32 by the op layer
        }
    }

    func visitInteger<T: IntegerElement>(_: T.Type) throws {
        if try logical(T.self, { $0 != 0 }) { return }
        switch op {
        case .sum: try reduce(T.self, T.zero, { $0 &+ $1 }, { $0 })
        case .prod: try reduce(T.self, T(1), { $0 &* $1 }, { $0 })
        case .max: try reduce(T.self, T.min, { Swift.max($0, $1) }, { $0 })
        case .min: try reduce(T.self, T.max, { Swift.min($0, $1) }, { $0 })
        case .all, .any: break
        }
    }

    func visitFloat<T: FloatElement>(_: T.Type) throws {
        if try SIMDKernels.reduce(op, axes: axes, input, output) { return }
        if try logical(T.self, { $0.math != 0 }) { return }
        switch op {
        case .sum: try reduce(T.self, 0.0, { $0 + Double($1.math) }, { T(math: T.Math($0)) })
        case .prod: try reduce(T.self, 1.0, { $0 * Double($1.math) }, { T(math: T.Math($0)) })
        case .max:
            try reduce(
                T.self, -T.Math.infinity, { acc, x in acc.isNaN || x.math.isNaN ? .nan : Swift.max(acc, x.math) },
                { T(math: $0) })
        case .min:
            try reduce(
                T.self, T.Math.infinity, { acc, x in acc.isNaN || x.math.isNaN ? .nan : Swift.min(acc, x.math) },
                { T(math: $0) })
        case .all, .any: break
        }
    }

    func visitComplex() throws {
        typealias C = Complex64
        if try logical(C.self, { $0 != C(0, 0) }) { return }
        switch op {
        case .sum:
            try reduce(
                C.self, ComplexD(0, 0), { ComplexD($0.re + Double($1.real), $0.im + Double($1.imaginary)) },
                { $0.complex64 })
        case .prod: try reduce(C.self, ComplexD(1, 0), { $0 * ComplexD($1) }, { $0.complex64 })
        default: unsupported(op.rawValue, .complex64)
        }
    }
}

/// argMax/argMin along one axis; ties and NaN give the first index, as numpy.
struct ArgReduceKernel: KindVisitor {
    let op: ArgReduceOp
    let axis: Int
    let input: ArrayView
    let output: ArrayView

    private func run<T>(_: T.Type, _ better: @escaping (T, T) -> Bool) throws {
        let src = try input.hostPointer(T.self)
        let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: UInt32.self)
        let n = input.shape[axis], s = input.strides[axis]
        ReductionLayout(input: input, axes: [axis]).forEachOutput { index, _, base in
            var best = 0
            if n > 0 {
                var bestValue = src[base]
                for i in 1..<max(n, 1) where better(src[base + i * s], bestValue) {
                    best = i
                    bestValue = src[base + i * s]
                }
            }
            dst[index] = UInt32(best)
        }
    }

    func visitBool() throws {
        try run(Bool.self, op == .argMax ? { $0 && !$1 } : { !$0 && $1 })
    }

    func visitInteger<T: IntegerElement>(_: T.Type) throws {
        try run(T.self, op == .argMax ? { $0 > $1 } : { $0 < $1 })
    }

    func visitFloat<T: FloatElement>(_: T.Type) throws {
        if op == .argMax {
            try run(T.self) { x, best in !best.math.isNaN && (x.math > best.math || x.math.isNaN) }
        } else {
            try run(T.self) { x, best in !best.math.isNaN && (x.math < best.math || x.math.isNaN) }
        }
    }

    func visitComplex() throws { unsupported(op.rawValue, .complex64) }
}
