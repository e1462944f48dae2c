// Fast matmul for float32, float16 and bfloat16: out[b] = a[b] x b[b] per
// batch, each operand a 2-D strided view. float32 goes to OpenBLAS
// (cblas_sgemm / cblas_sgemv, loaded with dlopen) when the layout is one BLAS
// takes and OpenBLAS measured faster than the native kernel on this CPU
// (tk_blas_use: timed once per process, GEMM and matrix-vector separately);
// everything else to the native packed SIMD GEMM in CTesseraKernels,
// which converts half types to float32 while packing, accumulates in float32
// and absorbs any strides. Large native problems are split over the thread pool
// along the longer output axis. bfloat16 weights on AVX512-BF16 take the
// vdpbf16ps kernel (Matmul/CPUMatmul+BF16.swift, BFloat16MatmulPrecision).

import CTesseraKernels

enum GEMM {
    /// Multiply-adds below which the native GEMM stays on one thread: measured
    /// (`tessera-bench grain`, docs/PERFORMANCE.md) no gain up to 192^3, 1.33x at 256^3.
    static let parallelWork = 1 << 23

    /// Whether OpenBLAS is loaded (TESSERA_DISABLE_BLAS=1 keeps it unloaded).
    static var blasAvailable: Bool { tk_blas_available() != 0 }

    /// Whether float32 GEMM goes to BLAS: loaded and measured faster here.
    static var blasForGEMM: Bool { tk_blas_use(0) != 0 }

    /// Whether float32 matrix-vector products go to BLAS: loaded and measured faster here.
    static var blasForGEMV: Bool { tk_blas_use(1) != 0 }

    /// Computes the batched product into `output`; false for dtypes it does not
    /// handle. Operands of float32, float16 or bfloat16 share the output's dtype,
    /// or (a float32 output) mix them: half weights times float32 activations
    /// are read as half and widened in registers, never converted as a whole.
    static func matmul(_ a: ArrayView, _ b: ArrayView, _ output: ArrayView, useBLAS: Bool = true) throws -> Bool {
        guard let dt = SIMDKernels.code(output.dtype), let da = SIMDKernels.code(a.dtype),
            let db = SIMDKernels.code(b.dtype), (da == dt && db == dt) || dt == Int32(TK_F32), output.isRowContiguous
        else { return false }
        let nd = output.shape.count
        let m = output.shape[nd - 2], n = output.shape[nd - 1], k = a.shape[nd - 1]
        if output.count == 0 { return true }
        let size = output.dtype.size, sizeA = a.dtype.size, sizeB = b.dtype.size
        let pa = UnsafeRawPointer(try a.buffer.hostPointer()) + a.offset * sizeA
        let pb = UnsafeRawPointer(try b.buffer.hostPointer()) + b.offset * sizeB
        let dst = try output.buffer.hostPointer(forWriting: true) + output.offset * size
        let batches = matmulBatchOffsets(a, b, output)
        // One float32 scratch for the half types, reused across batches.
        var scratch = [Float](repeating: 0, count: dt == Int32(TK_F32) ? 0 : m * n)
        let allFloat32 = da == Int32(TK_F32) && db == Int32(TK_F32)
        for (batch, o) in batches.enumerated() {
            let c = dst + batch * m * n * size
            let A = Operand(
                pointer: pa + o.a * sizeA, rows: m, cols: k, rowStride: a.strides[nd - 2], colStride: a.strides[nd - 1],
                dtype: da)
            let B = Operand(
                pointer: pb + o.b * sizeB, rows: k, cols: n, rowStride: b.strides[nd - 2], colStride: b.strides[nd - 1],
                dtype: db)
            if dt == Int32(TK_F32) {
                let out = c.assumingMemoryBound(to: Float.self)
                if !(useBLAS && allFloat32 && blas(A, B, out, m: m, n: n, k: k)) {
                    native(A, B, out, m: m, n: n, k: k)
                }
            } else {
                scratch.withUnsafeMutableBufferPointer { s in
                    native(A, B, s.baseAddress!, m: m, n: n, k: k)
                    tk_convert(Int32(TK_F32), s.baseAddress!, dt, c, m * n)
                }
            }
        }
        return true
    }

    /// One 2-D operand: element strides of its rows and columns.
    struct Operand {
        let pointer: UnsafeRawPointer
        let rows: Int
        let cols: Int
        let rowStride: Int
        let colStride: Int
        /// Element type (TK_F32, TK_F16, TK_BF16).
        var dtype: Int32 = Int32(TK_F32)

        /// Bytes per element.
        var size: Int { dtype == Int32(TK_F32) ? 4 : 2 }

        /// (transposed, leading dimension) when BLAS can read it: unit stride
        /// along one axis. Strides of size-1 axes do not matter and are normalised.
        var blasLayout: (transposed: Bool, ld: Int)? {
            let cs = cols == 1 ? 1 : colStride, rs = rows == 1 ? max(cols, 1) : rowStride
            if cs == 1 && rs >= max(1, cols) { return (false, rs) }
            let rsT = rows == 1 ? 1 : rowStride, csT = cols == 1 ? max(rows, 1) : colStride
            if rsT == 1 && csT >= max(1, rows) { return (true, csT) }
            return nil
        }
    }

    /// C = A B through OpenBLAS; false when the layout needs the native path
    /// or the native kernel is the faster one on this CPU.
    static func blas(_ A: Operand, _ B: Operand, _ C: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int) -> Bool {
        guard let la = A.blasLayout, let lb = B.blasLayout, k > 0 else { return false }
        let vector = (n == 1 && B.rowStride != 0) || (m == 1 && A.colStride != 0)
        guard vector ? blasForGEMV : blasForGEMM else { return false }
        let a = A.pointer.assumingMemoryBound(to: Float.self), b = B.pointer.assumingMemoryBound(to: Float.self)
        if n == 1 && B.rowStride != 0 {
            // Matrix-vector: y[m] = A x, A stored [m, k] (or [k, m] when transposed).
            if la.transposed {
                tk_blas_sgemv(1, k, m, 1, a, la.ld, b, B.rowStride, 0, C, 1)
            } else {
                tk_blas_sgemv(0, m, k, 1, a, la.ld, b, B.rowStride, 0, C, 1)
            }
            return true
        }
        if m == 1 && A.colStride != 0 {
            // Vector-matrix: y[n] = B^T x, B stored [k, n] (or [n, k] when transposed).
            if lb.transposed {
                tk_blas_sgemv(0, n, k, 1, b, lb.ld, a, A.colStride, 0, C, 1)
            } else {
                tk_blas_sgemv(1, k, n, 1, b, lb.ld, a, A.colStride, 0, C, 1)
            }
            return true
        }
        // OpenBLAS splits large products over threads of its own: give them the cores.
        if m * n * k >= 1 << 20 { ThreadPool.shared.stopSpinning() }
        tk_blas_sgemm(la.transposed ? 1 : 0, lb.transposed ? 1 : 0, m, n, k, 1, a, la.ld, b, lb.ld, 0, C, n)
        return true
    }

    /// C (float32, row-major [m, n]) = A B with the native kernel, split over
    /// the pool along the longer output axis.
    static func native(
        _ A: Operand, _ B: Operand, _ C: UnsafeMutablePointer<Float>, ldc: Int? = nil, m: Int, n: Int, k: Int
    ) {
        if (ldc == nil || m == 1) && gemv(A, B, C, m: m, n: n, k: k) { return }
        let ldc = ldc ?? n
        if bf16DotProducts(A, B, C, ldc: ldc, m: m, n: n, k: k) { return }
        let work = m * n * max(k, 1)
        let pool = ThreadPool.shared
        if work < parallelWork || pool.threadCount == 1 {
            tk_gemm(
                m, n, k, A.dtype, A.pointer, A.rowStride, A.colStride, B.dtype, B.pointer, B.rowStride, B.colStride, 0,
                C, ldc)
        } else if n >= m {
            pool.parallelRanges(n, grain: 64, align: 32) { r in
                tk_gemm(
                    m, r.count, k, A.dtype, A.pointer, A.rowStride, A.colStride,
                    B.dtype, B.pointer + r.lowerBound * B.colStride * B.size, B.rowStride, B.colStride, 0,
                    C + r.lowerBound,
                    ldc)
            }
        } else {
            pool.parallelRanges(m, grain: 24, align: 24) { r in
                tk_gemm(
                    r.count, n, k, A.dtype, A.pointer + r.lowerBound * A.rowStride * A.size, A.rowStride, A.colStride,
                    B.dtype, B.pointer, B.rowStride, B.colStride, 0, C + r.lowerBound * ldc, ldc)
            }
        }
    }

    /// Elements of the matrix above which a matrix-vector product splits over the pool.
    static let gemvParallelElements = 1 << 18

    /// C = A B when m or n is 1, streaming the matrix once (tk_gemv) instead of
    /// packing it; false where a layout has no unit-stride axis for it.
    static func gemv(_ A: Operand, _ B: Operand, _ C: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int) -> Bool {
        guard k > 0, m == 1 || n == 1 else { return false }
        // The matrix W, the stride between its rows, the form, and the vector x.
        let matrix: Operand, vector: Operand, vectorStride: Int, count: Int
        let rowsAlongK: Bool  // form 0: W's rows run along k (dot products); form 1: along the output (axpy)
        if n == 1 {  // y[i] = Σ_k A[i, k] B[k, 0]
            (matrix, vector, vectorStride, count) = (A, B, B.rowStride, m)
            if A.colStride == 1 || k == 1 {
                rowsAlongK = true
            } else if A.rowStride == 1 {
                rowsAlongK = false
            } else {
                return false
            }
        } else {  // y[j] = Σ_k A[0, k] B[k, j]
            (matrix, vector, vectorStride, count) = (B, A, A.colStride, n)
            if B.rowStride == 1 || k == 1 {
                rowsAlongK = true
            } else if B.colStride == 1 {
                rowsAlongK = false
            } else {
                return false
            }
        }
        // Row stride of W: along k (form 0) the other axis's stride, and vice versa.
        let ldw: Int
        if n == 1 { ldw = rowsAlongK ? A.rowStride : A.colStride } else { ldw = rowsAlongK ? B.colStride : B.rowStride }
        guard ldw >= 0 else { return false }
        let vsize = vector.size
        var x = [Float](repeating: 0, count: k)
        x.withUnsafeMutableBufferPointer { xp in
            if vectorStride == 1 {
                tk_convert(vector.dtype, vector.pointer, Int32(TK_F32), xp.baseAddress!, k)
            } else {
                var packed = [UInt8](repeating: 0, count: k * vsize)
                packed.withUnsafeMutableBytes { bytes in
                    for i in 0..<k {
                        (bytes.baseAddress! + i * vsize).copyMemory(
                            from: vector.pointer + i * vectorStride * vsize, byteCount: vsize)
                    }
                    tk_convert(vector.dtype, bytes.baseAddress!, Int32(TK_F32), xp.baseAddress!, k)
                }
            }
        }
        let form: Int32 = rowsAlongK ? 0 : 1
        x.withUnsafeBufferPointer { xp in
            let xs = xp.baseAddress!
            if count * k < gemvParallelElements || ThreadPool.shared.threadCount == 1 {
                tk_gemv(form, matrix.dtype, matrix.pointer, ldw, xs, k, C, count)
                return
            }
            if rowsAlongK {
                // Form 0: W's rows in about 4 chunks per thread (whole passes of 4 rows, at
                // least 16), claimed one at a time, so a thread that joins late (woken from
                // sleep, or its core lent to another process) still takes its share instead
                // of finding half the matrix claimed; each chunk streams its rows once.
                let pool = ThreadPool.shared
                let step = max(16, (count / (pool.threadCount * 4) + 3) / 4 * 4)
                pool.parallelFor((count + step - 1) / step) { c in
                    let lower = c * step, rows = min(count, lower + step) - lower
                    tk_gemv(form, matrix.dtype, matrix.pointer + lower * ldw * matrix.size, ldw, xs, k, C + lower, rows)
                }
                return
            }
            // Form 1 splits W's columns (whole vectors of 64 floats each).
            ThreadPool.shared.parallelRanges(count, grain: 256, align: 64) { r in
                tk_gemv(
                    form, matrix.dtype, matrix.pointer + r.lowerBound * matrix.size, ldw, xs, k, C + r.lowerBound,
                    r.count)
            }
        }
        return true
    }
}
