// CPU kernels for the remaining element-wise primitives: dtype conversion,
// `which` (select) and arange.

/// Converts between any two dtypes through `WideScalar`, with direct paths
/// for the common float conversions.
struct AsTypeKernel: ElementVisitor {
    let input: ArrayView
    let output: ArrayView

    struct Inner<In: TensorElement>: ElementVisitor {
        let input: ArrayView
        let output: ArrayView
        func visit<Out: TensorElement>(_: Out.Type) throws {
            if In.self == Float.self, Out.self == Float16.self {
                try mapElements(input, into: output) { (x: Float) in Float16(x) }
            } else if In.self == Float16.self, Out.self == Float.self {
                try mapElements(input, into: output) { (x: Float16) in Float(x) }
            } else if In.self == Float.self, Out.self == BFloat16.self {
                try mapElements(input, into: output) { (x: Float) in BFloat16(x) }
            } else if In.self == BFloat16.self, Out.self == Float.self {
                try mapElements(input, into: output) { (x: BFloat16) in x.float }
            } else {
                try mapElements(input, into: output) { (x: In) in Out(wide: x.wide) }
            }
        }
    }

    func visit<In: TensorElement>(_: In.Type) throws {
        try dispatchElement(output.dtype, Inner<In>(input: input, output: output))
    }
}

enum ElementwiseKernels {
    /// output = condition ? a : b, all three of the output shape.
    static func select(_ condition: ArrayView, _ a: ArrayView, _ b: ArrayView, into output: ArrayView) throws {
        switch a.dtype.size {
        case 1: try select(condition, a, b, into: output, as: UInt8.self)
        case 2: try select(condition, a, b, into: output, as: UInt16.self)
        case 4: try select(condition, a, b, into: output, as: UInt32.self)
        default: try select(condition, a, b, into: output, as: UInt64.self)
        }
    }

    private static func select<T>(
        _ condition: ArrayView, _ a: ArrayView, _ b: ArrayView, into output: ArrayView, as _: T.Type
    ) throws {
        let pc = try condition.hostPointer(Bool.self), pa = try a.hostPointer(T.self), pb = try b.hostPointer(T.self)
        let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: T.self)
        let it = StridedIteration(
            shape: output.shape, strides: [condition.strides, a.strides, b.strides, output.strides])
        let n = it.rowLength
        let sc = it.innerStride(0), sa = it.innerStride(1), sb = it.innerStride(2), so = it.innerStride(3)
        it.forEachRow { o in
            let c = pc + o[0], x = pa + o[1], y = pb + o[2], d = dst + o[3]
            for i in 0..<n { d[i * so] = c[i * sc] ? x[i * sa] : y[i * sb] }
        }
    }

    /// output[i] = start + i * step, in the output dtype.
    struct Arange: ElementVisitor {
        let start: Double
        let step: Double
        let output: ArrayView

        func visit<T: TensorElement>(_: T.Type) throws {
            let dst = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: T.self)
            let n = output.count
            if output.dtype.isInteger || output.dtype == .bool {
                let s = saturatingInt64(start), d = saturatingInt64(step)
                for i in 0..<n { dst[i] = T(wide: .signed(s &+ Int64(i) &* d)) }
            } else {
                for i in 0..<n { dst[i] = T(wide: .real(start + Double(i) * step)) }
            }
        }
    }
}
