// SIMD quantized matmul in MLX's affine format: `QuantizedKernels.matmul`,
// the family's entry point, and `fastMatmul` (also what the primitive's
// batched products call for the cases below); the rest runs the reference
// kernel `QuantizedKernels.referenceMatmul` of CPUQuantized.swift:
// out[m, n] = sum_k x[m, k] * w[n, k] with w[n, k] = scale * q + bias per
// group of `groupSize` along K, q packed in uint32 words (low bits first),
// i.e. MLX's default transpose=True layout.
//   x       [..., K]            float32 / float16 / bfloat16
//   wq      [N, K * bits / 32]  uint32
//   scales  [N, K / groupSize]  dtype of x (biases the same)
//   output  [..., N]            dtype of x
// Decode (M <= 16 rows of x) runs the qmv kernel, split over the pool by
// output columns; each chunk of weight rows is read from memory and unpacked
// once for all rows of x (tk_qmv_prepared_batch), and each row gets exactly
// the one-row kernel's arithmetic, so a row's result does not depend on the
// rows beside it (a batch of sequences decodes exactly as each would alone). Prefill (larger M)
// of 4-bit weights under float32 x at `QuantizedMatmulPrecision.high` runs on
// integer dot products where the CPU has AVX-512 VNNI or AVX2 (`integerPrefill`,
// kernels_qgemm_vnni.c / kernels_qgemm_avx2.c: x rounded to 16 bits per block
// of 32); otherwise (baseline, .highest) it
// dequantizes blocks of weight rows to float32 and multiplies them with the
// float32 GEMM (BLAS or native).

import CTesseraKernels

extension QuantizedKernels {
    /// Rows of x up to which the qmv kernel runs (row by row, batch-invariant)
    /// rather than dequantize + GEMM: a continuously batched decode step of
    /// up to 16 sequences (TesseraLM's BatchedEngine).
    static let qmvMaxRows = 16
    /// Weight rows dequantized per GEMM call in prefill.
    static let prefillBlock = 512

    /// The family's entry point: x `[..., K]` times W `[N, K]` transposed
    /// (wq `[N, K * bits / 32]`): the SIMD kernels for float32/float16/bfloat16
    /// at 4 or 8 bits and groups of 32, 64 or 128 (float32 x may have half
    /// scales), `referenceMatmul` for the rest.
    static func matmul(
        x input: ArrayView, wq inputW: ArrayView, scales inputS: ArrayView, biases inputB: ArrayView,
        groupSize: Int, bits: Int, into output: ArrayView
    ) throws {
        let x = try RowKernels.contiguous(input), wq = try RowKernels.contiguous(inputW)
        let scales = try RowKernels.contiguous(inputS), biases = try RowKernels.contiguous(inputB)
        let k = x.shape.last ?? 0, n = wq.shape[0], m = k == 0 ? 0 : x.count / k
        precondition(
            groupSize > 0 && wq.shape[1] * 32 == k * bits && scales.shape == [n, k / groupSize]
                && biases.shape == scales.shape && k % groupSize == 0,
            "[quantizedMatmul] shapes do not fit: x \(x.shape), wq \(wq.shape), scales \(scales.shape), bits \(bits), group \(groupSize)"
        )
        guard let dt = SIMDKernels.code(input.dtype), let sdt = SIMDKernels.code(inputS.dtype),
            inputB.dtype == inputS.dtype, inputS.dtype == input.dtype || input.dtype == .float32,
            fastMatmulSupports(bits: bits, groupSize: groupSize)
        else {
            guard inputS.dtype == input.dtype, inputB.dtype == input.dtype else {
                unsupported("quantizedMatmul scales", inputS.dtype)
            }
            // The reference for the rest (other bits or group sizes, float64): x's rows as one [m, K] matrix.
            try dispatch(
                input.dtype,
                QuantizedKernel(
                    job: .matmul(transpose: true), groupSize: groupSize, bits: bits,
                    inputs: [x.with(shape: [m, k], offset: x.offset, strides: [k, 1]), wq, scales, biases],
                    output: output.with(shape: [m, n], offset: output.offset, strides: [n, 1])))
            return
        }
        // A view's offset counts elements of its dtype (a slice of rows of x starts past the buffer's start).
        let bytes = { (v: ArrayView) in UnsafeRawPointer(try v.buffer.hostPointer()) + v.offset * v.dtype.size }
        let px = try bytes(x)
        let pw = UnsafePointer(try wq.hostPointer(UInt32.self))
        let ps = try bytes(scales)
        let pb = try bytes(biases)
        let po = try RowKernels.writePointer(output)
        fastMatmul(
            dt, sdt, x: px, wq: pw, scales: ps, biases: pb, out: po, m: m, n: n, k: k, groupSize: groupSize, bits: bits)
    }

    /// quantizedMatmul with float16/bfloat16 scales under float32 x (a GGUF's
    /// scales as stored): the fast kernels read the half scales themselves when
    /// every batch shares one weight; otherwise the scales are widened first.
    static func mixedMatmul(
        _ inputs: [ArrayView], groupSize: Int, bits: Int, transpose: Bool, into output: ArrayView
    ) throws {
        let nd = output.shape.count
        let shared = inputs[1...3].allSatisfy { v in
            zip(v.shape.prefix(nd - 2), v.strides.prefix(nd - 2)).allSatisfy { $0.0 == 1 || $0.1 == 0 }
        }
        if transpose, shared, fastMatmulSupports(bits: bits, groupSize: groupSize), inputs[0].dtype == .float32 {
            let matrix = { (v: ArrayView) in
                v.with(shape: Array(v.shape.suffix(2)), offset: v.offset, strides: Array(v.strides.suffix(2)))
            }
            // x's batch axes and rows are one run of rows against the shared weight.
            try matmul(
                x: inputs[0], wq: matrix(inputs[1]), scales: matrix(inputs[2]), biases: matrix(inputs[3]),
                groupSize: groupSize, bits: bits, into: output)
            return
        }
        var widened = inputs
        for i in 2...3 {
            let v = ArrayView.allocate(shape: inputs[i].shape, dtype: inputs[0].dtype)
            if inputs[0].dtype == .float32, inputs[i].isRowContiguous, let from = SIMDKernels.code(inputs[i].dtype) {
                // Widening half scales is exact: the vector conversion gives the same floats.
                tk_convert(
                    from, try inputs[i].buffer.hostPointer() + inputs[i].offset * inputs[i].dtype.size, Int32(TK_F32),
                    try v.buffer.hostPointer(forWriting: true), v.count)
            } else {
                try dispatchElement(inputs[i].dtype, AsTypeKernel(input: inputs[i], output: v))
            }
            widened[i] = v
        }
        try dispatch(
            output.dtype,
            QuantizedKernel(
                job: .matmul(transpose: transpose), groupSize: groupSize, bits: bits, inputs: widened, output: output))
    }

    /// Whether `fastMatmul` handles this format (else the reference loop runs).
    static func fastMatmulSupports(bits: Int, groupSize: Int) -> Bool {
        (bits == 4 || bits == 8) && [32, 64, 128].contains(groupSize)
    }

    /// Bytes of weights (with their scales and biases) per qmv chunk, about:
    /// a decode step's products stream their weights from memory, and each
    /// chunk starts with no rows prefetched, so chunks are long (a 4-bit
    /// 576x1536 product is 5 of them; 32 KiB chunks left the 2-thread
    /// products ~7% slower, the 8-bit SmolLM2 head ~15%, in a model of a
    /// decode step's products on cold weights); the count is rounded up to a
    /// multiple of the pool's threads, so that a product of a few chunks splits evenly.
    static let qmvChunkBytes = 1 << 17

    /// The decode product (few rows of x): x prepared once, then chunks of
    /// output columns claimed by the pool's threads, each reading its weights once.
    static func qmv(
        _ dt: Int32, _ sdt: Int32, x px: UnsafeRawPointer, wq pw: UnsafePointer<UInt32>, scales ps: UnsafeRawPointer,
        biases pb: UnsafeRawPointer, out po: UnsafeMutableRawPointer, m: Int, n: Int, k: Int, groupSize: Int, bits: Int,
        scratch kept: UnsafeMutableRawPointer? = nil
    ) {
        let group = Int32(groupSize), b = Int32(bits)
        let rowBytes = k * bits / 8 + k / groupSize * 2 * (sdt == Int32(TK_F32) ? 4 : 2)
        let pool = ThreadPool.shared
        let threads = max(1, pool.threadCount)
        let wanted = (n * rowBytes + qmvChunkBytes - 1) / qmvChunkBytes
        let even = (wanted + threads - 1) / threads * threads
        let rows = ((n + even - 1) / even + 15) / 16 * 16
        let chunks = (n + rows - 1) / rows
        if m > 1 {
            qmvByRow(
                dt, sdt, x: px, wq: pw, scales: ps, biases: pb, out: po, m: m, n: n, k: k, groupSize: groupSize,
                bits: bits, rows: rows, chunks: chunks, scratch: kept)
            return
        }
        let scratchBytes = tk_qmv_scratch(dt, m, k, group, b)
        if scratchBytes > 0 {
            // `kept`: the caller's buffer of at least tk_qmv_scratch bytes (a replayed decode step's).
            let owned = kept == nil ? UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64) : nil
            defer { owned?.deallocate() }
            guard let scratch = kept ?? owned else { return }
            if tk_qmv_prepare(dt, px, m, k, group, b, scratch) != 0 {
                pool.parallelFor(chunks) { c in
                    tk_qmv_prepared(
                        dt, sdt, scratch, pw, ps, pb, po, m, n, k, group, b, c * rows, min(n, (c + 1) * rows))
                }
                return
            }
        }
        pool.parallelFor(chunks) { c in
            tk_qmv(dt, sdt, px, pw, ps, pb, po, m, n, k, group, b, c * rows, min(n, (c + 1) * rows))
        }
    }

    /// Bytes between the rows of x that `qmvByRow` prepares (64-byte aligned).
    private static func byRowScratchStride(_ scratchBytes: Int) -> Int { (max(scratchBytes, 0) + 63) / 64 * 64 }

    /// Bytes of scratch `qmv` needs for `m` rows of float32 x of `k` values.
    static func qmvScratchBytes(m: Int, k: Int, groupSize: Int, bits: Int) -> Int {
        let one = tk_qmv_scratch(Int32(TK_F32), 1, k, Int32(groupSize), Int32(bits))
        return m > 1 ? byRowScratchStride(one) * m : max(0, one)
    }

    /// qmv for several rows of x, each computed exactly as `qmv` computes a
    /// single row (the same chunks of output columns): each row of x is
    /// prepared alone, and each chunk of weight rows runs the batched kernel
    /// (tk_qmv_prepared_batch: each weight chunk unpacked once for all rows,
    /// every row bit for bit the one-row kernel's), or the float kernel over
    /// all rows where no prepared kernel applies (its rows are independent),
    /// or, when some row could not be prepared (a non-finite value), the
    /// one-row kernel for every row of x in turn while the chunk is in cache.
    private static func qmvByRow(
        _ dt: Int32, _ sdt: Int32, x px: UnsafeRawPointer, wq pw: UnsafePointer<UInt32>, scales ps: UnsafeRawPointer,
        biases pb: UnsafeRawPointer, out po: UnsafeMutableRawPointer, m: Int, n: Int, k: Int, groupSize: Int,
        bits: Int, rows: Int, chunks: Int, scratch kept: UnsafeMutableRawPointer?
    ) {
        let group = Int32(groupSize), b = Int32(bits)
        let elementBytes = dt == Int32(TK_F32) ? 4 : 2
        let scratchBytes = tk_qmv_scratch(dt, 1, k, group, b)
        let stride = byRowScratchStride(scratchBytes)
        // `kept`: the caller's buffer of at least m strides (a replayed batched step's: qmvScratchBytes for m rows).
        let owned = kept == nil ? UnsafeMutableRawPointer.allocate(byteCount: max(1, stride * m), alignment: 64) : nil
        defer { owned?.deallocate() }
        guard let scratch = kept ?? owned else { return }
        // Whether row r of x was prepared (else it takes the kernel that prepares its own x, as alone).
        var prepared = [Bool](repeating: false, count: m)
        if scratchBytes > 0 {
            for r in 0..<m {
                prepared[r] = tk_qmv_prepare(dt, px + r * k * elementBytes, 1, k, group, b, scratch + r * stride) != 0
            }
        }
        if scratchBytes > 0, !prepared.contains(false) {
            // Every row prepared: the batched kernel loads and unpacks each weight chunk
            // once for all rows, each row's arithmetic the one-row kernel's.
            ThreadPool.shared.parallelFor(chunks) { c in
                tk_qmv_prepared_batch(
                    dt, sdt, scratch, stride, pw, ps, pb, po, m, n, k, group, b, c * rows, min(n, (c + 1) * rows))
            }
            return
        }
        if scratchBytes <= 0 {
            // The float kernel (no VNNI) computes each row of x alone whatever rows it runs beside.
            ThreadPool.shared.parallelFor(chunks) { c in
                tk_qmv(dt, sdt, px, pw, ps, pb, po, m, n, k, group, b, c * rows, min(n, (c + 1) * rows))
            }
            return
        }
        prepared.withUnsafeBufferPointer { ready in
            ThreadPool.shared.parallelFor(chunks) { c in
                let n0 = c * rows, n1 = min(n, (c + 1) * rows)
                for r in 0..<m {
                    let out = po + r * n * elementBytes
                    if ready[r] {
                        tk_qmv_prepared(dt, sdt, scratch + r * stride, pw, ps, pb, out, 1, n, k, group, b, n0, n1)
                    } else {
                        tk_qmv(dt, sdt, px + r * k * elementBytes, pw, ps, pb, out, 1, n, k, group, b, n0, n1)
                    }
                }
            }
        }
    }

    /// out [m, n] = x [m, k] · W[n, k]^T on contiguous operands in the C dtype `dt`.
    static func fastMatmul(
        _ dt: Int32, _ sdt: Int32, x px: UnsafeRawPointer, wq pw: UnsafePointer<UInt32>, scales ps: UnsafeRawPointer,
        biases pb: UnsafeRawPointer, out po: UnsafeMutableRawPointer, m: Int, n: Int, k: Int, groupSize: Int, bits: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            tk_convert(Int32(TK_F32), [Float](repeating: 0, count: m * n), dt, po, m * n)
            return
        }
        let pool = ThreadPool.shared
        if m <= qmvMaxRows {
            qmv(
                dt, sdt, x: px, wq: pw, scales: ps, biases: pb, out: po, m: m, n: n, k: k, groupSize: groupSize,
                bits: bits)
            return
        }
        if dt == Int32(TK_F32), bits == 4, let xBytes = integerPrefillBytes,
            tk_qgemm4_available(sdt, k, Int32(groupSize)) != 0,
            integerPrefill(
                sdt, x: px.assumingMemoryBound(to: Float.self), wq: pw, scales: ps, biases: pb,
                out: po.assumingMemoryBound(to: Float.self), m: m, n: n, k: k, groupSize: groupSize, xBytes: xBytes)
        {
            return
        }
        // 8-bit weights (a tied 8-bit head) on the same integer product, only
        // where it is turned on (training): inference keeps the float kernel.
        if dt == Int32(TK_F32), bits == 8, tk_qgemm8_enabled() != 0, let xBytes = integerPrefillBytes,
            tk_qgemm8_available(sdt, k, Int32(groupSize)) != 0,
            integerPrefill(
                sdt, x: px.assumingMemoryBound(to: Float.self), wq: pw, scales: ps, biases: pb,
                out: po.assumingMemoryBound(to: Float.self), m: m, n: n, k: k, groupSize: groupSize, xBytes: xBytes,
                bits: 8)
        {
            return
        }
        // Prefill: float32 x and output (converted copies for the half types).
        var xf = [Float](repeating: 0, count: dt == Int32(TK_F32) ? 0 : m * k)
        var of = [Float](repeating: 0, count: dt == Int32(TK_F32) ? 0 : m * n)
        var wbuf = [Float](repeating: 0, count: min(prefillBlock, n) * k)
        xf.withUnsafeMutableBufferPointer { xfp in
            of.withUnsafeMutableBufferPointer { ofp in
                wbuf.withUnsafeMutableBufferPointer { wp in
                    let xs: UnsafePointer<Float>
                    if dt == Int32(TK_F32) {
                        xs = px.assumingMemoryBound(to: Float.self)
                    } else {
                        tk_convert(dt, px, Int32(TK_F32), xfp.baseAddress!, m * k)
                        xs = UnsafePointer(xfp.baseAddress!)
                    }
                    let out = dt == Int32(TK_F32) ? po.assumingMemoryBound(to: Float.self) : ofp.baseAddress!
                    let w = wp.baseAddress!
                    for n0 in stride(from: 0, to: n, by: prefillBlock) {
                        let nb = min(prefillBlock, n - n0)
                        pool.parallelRanges(nb, grain: 16) { r in
                            tk_dequantize_rows(
                                sdt, pw, ps, pb, w + r.lowerBound * k, k, Int32(groupSize), Int32(bits),
                                n0 + r.lowerBound, n0 + r.upperBound)
                        }
                        let A = GEMM.Operand(
                            pointer: UnsafeRawPointer(xs), rows: m, cols: k, rowStride: k, colStride: 1)
                        let B = GEMM.Operand(
                            pointer: UnsafeRawPointer(w), rows: k, cols: nb, rowStride: 1, colStride: k)
                        if GEMM.blasForGEMM {
                            pool.stopSpinning()  // OpenBLAS's threads take the cores
                            tk_blas_sgemm(0, 1, m, nb, k, 1, xs, k, w, k, 0, out + n0, n)
                        } else {
                            GEMM.native(A, B, out + n0, ldc: n, m: m, n: nb, k: k)
                        }
                    }
                    if dt != Int32(TK_F32) { tk_convert(Int32(TK_F32), out, dt, po, m * n) }
                }
            }
        }
    }

    /// Bytes per value of x in the integer prefill product (AVX-512 VNNI or
    /// AVX2, 4-bit weights, float32 x, more than `qmvMaxRows` rows): 2 (x rounded
    /// to 16 bits per block of 32) at `QuantizedMatmulPrecision.high`; nil at
    /// `.highest`, where prefill keeps the float32 GEMM on dequantized weights.
    static var integerPrefillBytes: Int? { tk_qmv_x_bytes() == 2 ? 2 : nil }

    /// The prefill product on integer dot products (kernels_qgemm_vnni.c): x
    /// rounded once (rows split over the pool), then panels of 32 output
    /// columns claimed by the pool's threads, each packed once and multiplied
    /// with every row of x. False (nothing written) when x holds a value
    /// that cannot be rounded (non-finite, or a block of tiny values).
    static func integerPrefill(
        _ sdt: Int32, x: UnsafePointer<Float>, wq: UnsafePointer<UInt32>, scales: UnsafeRawPointer,
        biases: UnsafeRawPointer, out: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, groupSize: Int, xBytes: Int,
        bits: Int = 4
    ) -> Bool {
        let group = Int32(groupSize), xb = Int32(xBytes)
        let rowBytes = tk_qgemm4_x_bytes(1, k, group, xb)
        let prepared = UnsafeMutableRawPointer.allocate(byteCount: max(1, rowBytes * m), alignment: 64)
        defer { prepared.deallocate() }
        let pool = ThreadPool.shared
        // rounded[i]: tk_qgemm4_prepare's answer for the range of rows starting at row i (1 where none starts)
        let rounded = UnsafeMutablePointer<Int32>.allocate(capacity: m)
        rounded.initialize(repeating: 1, count: m)
        defer { rounded.deallocate() }
        pool.parallelRanges(m, grain: 16) { r in
            rounded[r.lowerBound] = tk_qgemm4_prepare(
                x + r.lowerBound * k, r.count, k, group, xb, prepared + r.lowerBound * rowBytes)
        }
        if (0..<m).contains(where: { rounded[$0] == 0 }) { return false }
        let panelBytes = tk_qgemm4_panel_bytes(k, group)
        pool.parallelFor((n + 31) / 32) { p in
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: panelBytes, alignment: 64)
            defer { scratch.deallocate() }
            if bits == 8 {
                _ = tk_qgemm8(
                    sdt, prepared, wq, scales, biases, out, m, n, k, group, xb, p * 32, min(n, p * 32 + 32), scratch)
            } else {
                _ = tk_qgemm4(
                    sdt, prepared, wq, scales, biases, out, m, n, k, group, xb, p * 32, min(n, p * 32 + 32), scratch)
            }
        }
        return true
    }
}
