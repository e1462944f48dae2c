// Row kernels for the fused ops (softmax, rmsNorm, layerNorm over the last
// axis) on float32/float16/bfloat16, through CTesseraKernels and split over
// the thread pool by rows. The fused primitives call these; inputs that are not
// row-contiguous are copied first. Weights and biases are 1-D of the row length
// in the input's dtype; half types compute in float32 and round once.

import CTesseraKernels

enum RowKernels {
    /// A row-contiguous view of `view` (itself when it already is).
    static func contiguous(_ view: ArrayView) throws -> ArrayView {
        view.isRowContiguous ? view : try ShapeKernels.contiguousCopy(view)
    }

    /// The host home at the view's first element, for reading (the offset
    /// counts elements, so it is scaled by the element size here).
    static func readPointer(_ view: ArrayView) throws -> UnsafeRawPointer {
        UnsafeRawPointer(try view.buffer.hostPointer()) + view.offset * view.dtype.size
    }

    /// The host home of a fresh output, for writing.
    static func writePointer(_ output: ArrayView) throws -> UnsafeMutableRawPointer {
        try output.buffer.hostPointer(forWriting: true) + output.offset * output.dtype.size
    }

    private static func rows(_ x: ArrayView) -> (rows: Int, n: Int) {
        let n = x.shape.last ?? 1
        return (n == 0 ? 0 : x.count / n, n)
    }

    /// Calls `body(rowRange)` over the rows of `x`, in parallel when large.
    private static func forRows(_ x: ArrayView, _ body: (Range<Int>) -> Void) {
        let (rows, n) = rows(x)
        ThreadPool.shared.parallelRanges(rows, grain: max(1, SIMDKernels.rowGrain / max(n, 1)), body)
    }

    static func softmax(_ input: ArrayView, into output: ArrayView) throws {
        guard let dt = SIMDKernels.code(input.dtype) else { unsupported("softmax", input.dtype) }
        let x = try contiguous(input), size = x.dtype.size, n = rows(x).n
        let src = try readPointer(x), dst = try writePointer(output)
        forRows(x) { r in
            tk_softmax_rows(dt, src + r.lowerBound * n * size, dst + r.lowerBound * n * size, r.count, n)
        }
    }

    static func rmsNorm(_ input: ArrayView, weight: ArrayView?, eps: Float, into output: ArrayView) throws {
        guard let dt = SIMDKernels.code(input.dtype) else { unsupported("rmsNorm", input.dtype) }
        let x = try contiguous(input), size = x.dtype.size, n = rows(x).n
        let w = try weight.map(contiguous)
        let src = try readPointer(x), dst = try writePointer(output)
        let pw = try w.map { try readPointer($0) }
        forRows(x) { r in
            tk_rmsnorm_rows(dt, src + r.lowerBound * n * size, pw, eps, dst + r.lowerBound * n * size, r.count, n)
        }
    }

    static func layerNorm(
        _ input: ArrayView, weight: ArrayView?, bias: ArrayView?, eps: Float, into output: ArrayView
    ) throws {
        guard let dt = SIMDKernels.code(input.dtype) else { unsupported("layerNorm", input.dtype) }
        let x = try contiguous(input), size = x.dtype.size, n = rows(x).n
        let w = try weight.map(contiguous), b = try bias.map(contiguous)
        let src = try readPointer(x), dst = try writePointer(output)
        let pw = try w.map { try readPointer($0) }
        let pb = try b.map { try readPointer($0) }
        forRows(x) { r in
            tk_layernorm_rows(dt, src + r.lowerBound * n * size, pw, pb, eps, dst + r.lowerBound * n * size, r.count, n)
        }
    }
}
