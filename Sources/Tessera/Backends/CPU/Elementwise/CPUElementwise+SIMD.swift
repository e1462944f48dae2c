// SIMD fast paths for element-wise ops and reductions over float32, float16
// and bfloat16, through the C kernels in CTesseraKernels, split over the
// thread pool when large. Each returns false when the layout or op is not one
// it handles, and the generic kernel runs instead: the fast paths need
// contiguous innermost rows, with scalar (stride 0) operands allowed in binary
// ops, and reductions over trailing or leading axes of a contiguous input.

import CTesseraKernels

enum SIMDKernels {
    /// Elements per thread below which element-wise work stays on one thread
    /// (`tessera-bench grain`, docs/PERFORMANCE.md: no gain from splitting
    /// below 2 x 65,536 elements; the work is memory-bound above).
    static let elementwiseGrain = 1 << 16
    /// Rows x length per thread below which row kernels stay on one thread.
    static let rowGrain = 1 << 15

    /// The C dtype code of a Swift float element type, or nil.
    static func code<T>(_: T.Type) -> Int32? {
        if T.self == Float.self { return Int32(TK_F32) }
        if T.self == Float16.self { return Int32(TK_F16) }
        if T.self == BFloat16.self { return Int32(TK_BF16) }
        return nil
    }

    static func code(_ dtype: DType) -> Int32? {
        switch dtype {
        case .float32: return Int32(TK_F32)
        case .float16: return Int32(TK_F16)
        case .bfloat16: return Int32(TK_BF16)
        default: return nil
        }
    }

    static func unaryCode(_ op: UnaryOp) -> Int32? {
        switch op {
        case .negative: return Int32(TK_NEG)
        case .abs: return Int32(TK_ABS)
        case .square: return Int32(TK_SQUARE)
        case .sqrt: return Int32(TK_SQRT)
        case .rsqrt: return Int32(TK_RSQRT)
        case .reciprocal: return Int32(TK_RECIPROCAL)
        case .exp: return Int32(TK_EXP)
        // log stays on libm: random sampling (gumbel, ...) is checked bit for
        // bit against MLX, and the polynomial log is within 2 ulp, not exact.
        case .sigmoid: return Int32(TK_SIGMOID)
        case .tanh: return Int32(TK_TANH)
        default: return nil
        }
    }

    static func binaryCode(_ op: BinaryOp) -> Int32? {
        switch op {
        case .add: return Int32(TK_ADD)
        case .subtract: return Int32(TK_SUB)
        case .multiply: return Int32(TK_MUL)
        case .divide: return Int32(TK_DIV)
        case .maximum: return Int32(TK_MAX)
        case .minimum: return Int32(TK_MIN)
        default: return nil
        }
    }

    /// output = op(input) for float arrays of one dtype, the output
    /// row-contiguous, the input row-contiguous or with contiguous innermost
    /// rows of at least 16 elements (a slice of a wider array: the gate half of
    /// a fused gate/up product).
    static func unary(_ op: UnaryOp, _ input: ArrayView, _ output: ArrayView) throws -> Bool {
        guard let f = unaryCode(op), let dt = code(input.dtype), input.dtype == output.dtype,
            output.isRowContiguous
        else { return false }
        let size = Int(input.dtype.size)
        let src = UnsafeRawPointer(try input.buffer.hostPointer()) + input.offset * size
        let dst = try output.buffer.hostPointer(forWriting: true) + output.offset * size
        if input.isRowContiguous {
            ThreadPool.shared.parallelRanges(input.count, grain: elementwiseGrain, align: 64) { r in
                tk_unary(f, dt, src + r.lowerBound * size, dst + r.lowerBound * size, r.count)
            }
            return true
        }
        let it = StridedIteration(shape: output.shape, strides: [input.strides, output.strides])
        if it.isEmpty { return true }
        let n = it.rowLength
        guard it.innerStride(0) == 1, it.innerStride(1) == 1, n >= 16 else { return false }
        let outer = Array(it.shape.dropLast())
        let strides = it.strides
        ThreadPool.shared.parallelRanges(outer.reduce(1, *), grain: max(1, elementwiseGrain / n)) { r in
            for row in r {
                var rem = row, oi = 0, oo = 0
                for axis in stride(from: outer.count - 1, through: 0, by: -1) {
                    let i = rem % outer[axis]
                    rem /= outer[axis]
                    oi += i * strides[0][axis]
                    oo += i * strides[1][axis]
                }
                tk_unary(f, dt, src + oi * size, dst + oo * size, n)
            }
        }
        return true
    }

    /// output = a op b when, after collapsing axes, every innermost row is
    /// contiguous or a broadcast scalar in each operand (covers same-shape,
    /// scalar and row-broadcast operands).
    static func binary(_ op: BinaryOp, _ a: ArrayView, _ b: ArrayView, _ output: ArrayView) throws -> Bool {
        guard let f = binaryCode(op), let dt = code(a.dtype), a.dtype == b.dtype, output.dtype == a.dtype,
            output.isRowContiguous
        else { return false }
        let it = StridedIteration(shape: output.shape, strides: [a.strides, b.strides, output.strides])
        if it.isEmpty { return true }
        let sa = it.innerStride(0), sb = it.innerStride(1)
        guard (sa == 0 || sa == 1), (sb == 0 || sb == 1), it.innerStride(2) == 1 else { return false }
        let n = it.rowLength
        let outer = Array(it.shape.dropLast())
        let rows = outer.reduce(1, *)
        // Short rows make the per-row call dominate; leave those to the generic loop.
        if rows > 1 && n < 16 { return false }
        let size = Int(a.dtype.size)
        let pa = UnsafeRawPointer(try a.buffer.hostPointer()) + a.offset * size
        let pb = UnsafeRawPointer(try b.buffer.hostPointer()) + b.offset * size
        let po = try output.buffer.hostPointer(forWriting: true) + output.offset * size
        let strides = it.strides
        if rows == 1 {
            ThreadPool.shared.parallelRanges(n, grain: elementwiseGrain, align: 64) { r in
                let i = r.lowerBound
                tk_binary(f, dt, pa + i * sa * size, sa, pb + i * sb * size, sb, po + i * size, r.count)
            }
            return true
        }
        let rowsPerChunk = max(1, elementwiseGrain / n)
        ThreadPool.shared.parallelRanges(rows, grain: rowsPerChunk) { r in
            for row in r {
                // Element offsets of this row: decompose `row` over the outer axes.
                var rem = row, oa = 0, ob = 0, oo = 0
                for axis in stride(from: outer.count - 1, through: 0, by: -1) {
                    let i = rem % outer[axis]
                    rem /= outer[axis]
                    oa += i * strides[0][axis]
                    ob += i * strides[1][axis]
                    oo += i * strides[2][axis]
                }
                tk_binary(f, dt, pa + oa * size, sa, pb + ob * size, sb, po + oo * size, n)
            }
        }
        return true
    }

    /// sum/max/min over the trailing axes (rows) or the leading axes (columns)
    /// of a row-contiguous float input.
    static func reduce(_ op: ReduceOp, axes: [Int], _ input: ArrayView, _ output: ArrayView) throws -> Bool {
        let f: Int32
        switch op {
        case .sum: f = Int32(TK_SUM)
        case .max: f = Int32(TK_RMAX)
        case .min: f = Int32(TK_RMIN)
        default: return false
        }
        guard let dt = code(input.dtype), output.dtype == input.dtype, input.isRowContiguous,
            output.isRowContiguous, !axes.isEmpty, input.count > 0
        else { return false }
        let sorted = axes.sorted()
        let nd = input.shape.count
        let size = Int(input.dtype.size)
        let src = UnsafeRawPointer(try input.buffer.hostPointer()) + input.offset * size
        let dst = try output.buffer.hostPointer(forWriting: true) + output.offset * size
        if sorted == Array((nd - sorted.count)..<nd) {
            let n = sorted.reduce(1) { $0 * input.shape[$1] }
            let rows = input.count / n
            if rows >= ThreadPool.shared.threadCount || n < elementwiseGrain || dt != Int32(TK_F32) {
                ThreadPool.shared.parallelRanges(rows, grain: max(1, rowGrain / n)) { r in
                    tk_reduce_rows(f, dt, src + r.lowerBound * n * size, r.count, n, dst + r.lowerBound * size)
                }
            } else {
                // Few long rows: partial results per chunk, combined here.
                for row in 0..<rows {
                    let base = src + row * n * size
                    let threads = ThreadPool.shared.threadCount
                    let chunk = max(elementwiseGrain, (n + threads - 1) / threads)
                    let pieces = (n + chunk - 1) / chunk
                    var partial = [Float](repeating: 0, count: pieces)
                    partial.withUnsafeMutableBufferPointer { p in
                        let pp = p.baseAddress!
                        ThreadPool.shared.parallelFor(pieces) { c in
                            let lo = c * chunk, len = min(n, lo + chunk) - lo
                            tk_reduce_rows(f, dt, base + lo * size, 1, len, pp + c)
                        }
                    }
                    let combined: Float
                    switch op {
                    case .sum: combined = Float(partial.reduce(0.0) { $0 + Double($1) })
                    case .max: combined = partial.contains { $0.isNaN } ? .nan : partial.max()!
                    default: combined = partial.contains { $0.isNaN } ? .nan : partial.min()!
                    }
                    dst.assumingMemoryBound(to: Float.self)[row] = combined
                }
            }
            return true
        }
        if sorted == Array(0..<sorted.count) {
            let rows = sorted.reduce(1) { $0 * input.shape[$1] }
            let n = input.count / rows
            ThreadPool.shared.parallelRanges(n, grain: max(64, rowGrain / rows), align: 64) { r in
                tk_reduce_cols(f, dt, src + r.lowerBound * size, rows, r.count, n, dst + r.lowerBound * size)
            }
            return true
        }
        return false
    }
}
