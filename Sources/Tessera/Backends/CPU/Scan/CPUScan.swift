// CPU running reductions (cumsum, cumprod, cummax, cummin) along one axis,
// inclusive or exclusive, forwards or reversed; any input strides, output
// row-contiguous. Floating sums and products accumulate in double and round
// each output once; integers wrap in their type; max/min propagate NaN.

struct ScanKernel: KindVisitor {
    let op: ScanOp
    let axis: Int
    let reverse: Bool
    let inclusive: Bool
    let input: ArrayView
    let output: ArrayView

    /// Folds each row with `f` from `initial`, writing `finish(acc)` per element.
    private func scan<T, A>(_: T.Type, _ initial: A, _ f: (A, T) -> A, _ finish: (A) -> T) throws {
        let src = try input.hostPointer(T.self)
        let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: T.self)
        let n = input.shape[axis], si = input.strides[axis], so = output.strides[axis]
        forEachAxisRow(shape: input.shape, axis: axis, inputStrides: input.strides, outputStrides: output.strides) {
            inBase, outBase in
            var acc = initial
            for k in 0..<n {
                let i = reverse ? n - 1 - k : k
                let x = src[inBase + i * si]
                if inclusive {
                    acc = f(acc, x)
                    dst[outBase + i * so] = finish(acc)
                } else {
                    dst[outBase + i * so] = finish(acc)
                    acc = f(acc, x)
                }
            }
        }
    }

    func visitBool() throws {
        switch op {
        case .max: try scan(Bool.self, false, { $0 || $1 }, { $0 })
        case .min: try scan(Bool.self, true, { $0 && $1 }, { $0 })
        case .sum, .prod: unsupported("cum\(op.rawValue)", .bool)  // computed in int32 by the op layer
        }
    }

    func visitInteger<T: IntegerElement>(_: T.Type) throws {
        switch op {
        case .sum: try scan(T.self, T.zero, { $0 &+ $1 }, { $0 })
        case .prod: try scan(T.self, T(1), { $0 &* $1 }, { $0 })
        case .max: try scan(T.self, T.min, { Swift.max($0, $1) }, { $0 })
        case .min: try scan(T.self, T.max, { Swift.min($0, $1) }, { $0 })
        }
    }

    func visitFloat<T: FloatElement>(_: T.Type) throws {
        let finish: (Double) -> T = { T(math: T.Math($0)) }
        switch op {
        case .sum: try scan(T.self, 0.0, { $0 + Double($1.math) }, finish)
        case .prod: try scan(T.self, 1.0, { $0 * Double($1.math) }, finish)
        case .max:
            try scan(
                T.self, -Double.infinity,
                { acc, x in
                    let v = Double(x.math)
                    return acc.isNaN || v.isNaN ? .nan : Swift.max(acc, v)
                }, finish)
        case .min:
            try scan(
                T.self, Double.infinity,
                { acc, x in
                    let v = Double(x.math)
                    return acc.isNaN || v.isNaN ? .nan : Swift.min(acc, v)
                }, finish)
        }
    }

    func visitComplex() throws {
        switch op {
        case .sum:
            try scan(
                Complex64.self, ComplexD(0, 0), { ComplexD($0.re + Double($1.real), $0.im + Double($1.imaginary)) },
                { $0.complex64 })
        case .prod: try scan(Complex64.self, ComplexD(1, 0), { $0 * ComplexD($1) }, { $0.complex64 })
        case .max, .min: unsupported("cum\(op.rawValue)", .complex64)
        }
    }
}
