// The bfloat16 weights' GEMM on AVX512-BF16 dot products (kernels_gemm_bf16.c):
// x packed once per call into pairs of bfloat16 (rows split over the pool),
// then the weights' rows split over the pool, each range read where it lies.

import CTesseraKernels

extension GEMM {
    /// Multiply-adds below which the bf16 GEMM stays on one thread (as `parallelWork`).
    static let bf16ParallelWork = 1 << 22

    /// C (float32, leading dimension ldc) = A B through the vdpbf16ps kernel
    /// when it applies: B bfloat16 with unit stride along k (a weight [N, K]
    /// seen as its transpose), A bfloat16, or float32 at
    /// `BFloat16MatmulPrecision.high`, more than one row, and the kernel
    /// available on this CPU at the chosen instruction set. False: nothing written.
    static func bf16DotProducts(
        _ A: Operand, _ B: Operand, _ C: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int
    ) -> Bool {
        guard B.dtype == Int32(TK_BF16), m > 1, n > 0, k > 0, B.rowStride == 1 || k == 1, B.colStride >= 0,
            A.dtype == Int32(TK_BF16) || (A.dtype == Int32(TK_F32) && tk_gemm_bf16_round_x() != 0),
            tk_gemm_bf16_available() != 0
        else { return false }
        let bytes = tk_gemm_bf16_x_bytes(m, k)
        let packed = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        defer { packed.deallocate() }
        let pool = ThreadPool.shared
        let blocks = (m + 63) / 64
        let parallel = m * n * k >= bf16ParallelWork && pool.threadCount > 1
        if parallel && blocks > 1 {
            pool.parallelRanges(blocks, grain: 1) { r in
                tk_gemm_bf16_pack_x(
                    A.dtype, A.pointer, A.rowStride, A.colStride, m, k, r.lowerBound, r.upperBound, packed)
            }
        } else {
            tk_gemm_bf16_pack_x(A.dtype, A.pointer, A.rowStride, A.colStride, m, k, 0, blocks, packed)
        }
        let w = B.pointer.assumingMemoryBound(to: UInt16.self), ldw = B.colStride
        if !parallel {
            return tk_gemm_bf16(packed, m, k, w, ldw, 0, n, C, ldc) != 0
        }
        pool.parallelRanges(n, grain: 24, align: 6) { r in
            _ = tk_gemm_bf16(packed, m, k, w, ldw, r.lowerBound, r.upperBound, C, ldc)
        }
        return true
    }
}

extension _CPUKernels {
    /// Whether bfloat16 weights' GEMM runs on AVX512-BF16 dot products here
    /// (for float32 x at `BFloat16MatmulPrecision.high`).
    public static var bfloat16DotProducts: Bool { tk_gemm_bf16_available() != 0 }
}
