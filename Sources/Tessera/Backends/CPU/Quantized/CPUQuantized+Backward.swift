// The quantized product the other way round: out [M, N] = x [M, K] · W [K, N]
// with W in MLX's affine format stored along N (wq [K, N * bits / 32],
// scales and biases [K, N / groupSize]). It is what the backward pass of
// `quantizedMatmul(x, w, transpose: true)` runs for dx = g · W on a frozen
// quantized weight (QLoRA's base products and a tied quantized head), where M
// is every token of the batch. The groups run along N, so a scale changes
// along the reduction axis and no integer dot product applies: blocks of W's
// rows are dequantized to float32 into one cache-sized tile (never the whole
// weight) and multiplied with the float32 GEMM, accumulating into out.
// float32 x and out only; scales float32, float16 or bfloat16.

import CTesseraKernels

extension QuantizedKernels {
    /// Floats in the dequantized tile of W's rows (2 MiB): large enough that
    /// out is read and written once per ~900 rows of a 576-wide W, small
    /// enough to stay in the last-level cache beside the GEMM's packed panels.
    static let backwardTileFloats = 1 << 19

    /// Whether `untransposedMatmul` takes this product.
    static func untransposedMatmulSupports(bits: Int, groupSize: Int, n: Int) -> Bool {
        fastMatmulSupports(bits: bits, groupSize: groupSize) && n % groupSize == 0 && groupSize % 32 == 0
    }

    /// `untransposedMatmul` with float32 x, scales, biases and out.
    static func untransposedMatmul(
        x: UnsafeRawPointer, wq: UnsafePointer<UInt32>, scales: UnsafeRawPointer, biases: UnsafeRawPointer,
        out: UnsafeMutableRawPointer, m: Int, n: Int, k: Int, groupSize: Int, bits: Int
    ) {
        untransposedMatmul(
            Int32(TK_F32), x: x.assumingMemoryBound(to: Float.self), wq: wq, scales: scales, biases: biases,
            out: out.assumingMemoryBound(to: Float.self), m: m, n: n, k: k, groupSize: groupSize, bits: bits)
    }

    /// out [m, n] = x [m, k] · W [k, n] (W's rows dequantized a tile at a time;
    /// scales and biases of C dtype `sdt`). The tile is dequantized by the
    /// pool's threads together, then each thread multiplies its rows of x by
    /// it (or OpenBLAS, with threads of its own, the whole product, where it
    /// measured faster than the native GEMM).
    static func untransposedMatmul(
        _ sdt: Int32, x: UnsafePointer<Float>, wq: UnsafePointer<UInt32>, scales: UnsafeRawPointer,
        biases: UnsafeRawPointer, out: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, groupSize: Int, bits: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            out.update(repeating: 0, count: m * n)
            return
        }
        let pool = ThreadPool.shared
        let block = min(k, max(16, backwardTileFloats / n / 16 * 16))
        let tile = UnsafeMutablePointer<Float>.allocate(capacity: block * n)
        defer { tile.deallocate() }
        let blas = GEMM.blasForGEMM
        for p0 in stride(from: 0, to: k, by: block) {
            let kb = min(block, k - p0)
            pool.parallelRanges(kb, grain: 8) { r in
                tk_dequantize_rows(
                    sdt, wq, scales, biases, tile + r.lowerBound * n, n, Int32(groupSize), Int32(bits),
                    p0 + r.lowerBound, p0 + r.upperBound)
            }
            let beta: Float = p0 == 0 ? 0 : 1
            if blas {
                pool.stopSpinning()  // OpenBLAS's threads take the cores
                tk_blas_sgemm(0, 0, m, n, kb, 1, x + p0, k, tile, n, beta, out, n)
                continue
            }
            pool.parallelRanges(m, grain: 24, align: 24) { r in
                tk_gemm(
                    r.count, n, kb, Int32(TK_F32), x + r.lowerBound * k + p0, k, 1, Int32(TK_F32), tile, n, 1, beta,
                    out + r.lowerBound * n, n)
            }
        }
    }
}
