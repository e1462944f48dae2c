// Scaled dot-product attention on float32. Layout: q [B, Hq, Lq, D],
// k [B, Hk, Lk, D], v [B, Hk, Lk, Dv], any strides with unit stride on the
// last axis (a cache's window of a larger buffer is read in place); output
// row-contiguous [B, Hq, Lq, Dv]. Jobs are key/value heads (with the query
// heads that share them) and split over the pool when the work is large.
//
// Few query rows per key/value head (decode steps, short chunks: at most
// `fewRows` of them) go to the C kernel tk_attention (kernels_attention.h):
// dot products, scale/mask, softmax and the weighted sum of values in one
// call, without BLAS. More rows go through the GEMM and softmax row kernels:
// scores = Q Kᵀ (the query heads that share the key/value head stacked as
// one matrix when their rows are evenly spaced), scaled and masked, softmax
// by rows (tk_softmax_rows), then P V written straight into the output;
// causal masking skips the keys no query of a block can see.

import CTesseraKernels

enum AttentionKernels {
    /// Query rows per scores block (bounds the scratch to rows × Lk floats).
    static let blockRows = 256
    /// Multiply-adds below which attention stays on the calling thread.
    static let parallelWork = 1 << 21
    /// The same for the few-rows kernel: the pool's workers spin between a
    /// decode step's ops, so handing them key/value heads costs about a
    /// microsecond, and a head of a few hundred cached keys takes tens.
    static let fewRowsParallelWork = 1 << 16
    /// Query rows per key/value head up to which tk_attention replaces GEMM.
    static let fewRows = 16

    /// Keys per part below which a head's keys are not split.
    static let minimumKeysPerPart = 64

    /// Parts to split each head's keys into so that `jobs` heads share the
    /// pool's threads evenly (SmolLM2's 3 key/value heads on 2 threads left
    /// one thread idle a third of the time); nil when they already do or the
    /// keys are too few.
    static func keyParts(jobs: Int, keys: Int) -> Int? {
        let threads = ThreadPool.shared.threadCount
        guard threads > 1, jobs % threads != 0 else { return nil }
        var a = jobs, b = threads
        while b != 0 { (a, b) = (b, a % b) }
        let parts = threads / a
        return keys / parts >= minimumKeysPerPart ? parts : nil
    }

    /// Computes attention into `output`; false when the fast path does not apply
    /// (not float32, or a last axis without unit stride).
    static func attention(_ inputs: [ArrayView], scale: Float, causal: Bool, into output: ArrayView) throws -> Bool {
        let q = inputs[0], k = inputs[1], v = inputs[2]
        let mask = inputs.count > 3 ? inputs[3] : nil
        guard q.dtype == .float32, k.dtype == .float32, v.dtype == .float32, output.isRowContiguous,
            q.strides[3] == 1 || q.shape[3] <= 1, k.strides[3] == 1 || k.shape[3] <= 1,
            v.strides[3] == 1 || v.shape[3] <= 1, mask.map({ $0.dtype == .bool || $0.dtype == .float32 }) ?? true
        else { return false }
        let (batches, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (hk, lk, dv) = (k.shape[1], k.shape[2], v.shape[3])
        if output.count == 0 { return true }
        let groups = hq / hk
        let pq = UnsafePointer(try q.hostPointer(Float.self)), pk = UnsafePointer(try k.hostPointer(Float.self))
        let pv = UnsafePointer(try v.hostPointer(Float.self))
        let po = try RowKernels.writePointer(output).assumingMemoryBound(to: Float.self)
        let boolMask = try mask.flatMap { $0.dtype == .bool ? UnsafePointer(try $0.hostPointer(Bool.self)) : nil }
        let addMask = try mask.flatMap { $0.dtype == .float32 ? UnsafePointer(try $0.hostPointer(Float.self)) : nil }
        if groups * lq <= fewRows {
            let perHead = q.strides[1], batchQ = q.strides[0]
            let m = mask.map { (b: $0.strides[0], h: $0.strides[1], i: $0.strides[2], j: $0.strides[3]) }
            let args = { (index: Int) -> tk_attention_args in
                let b = index / hk, kh = index % hk, head = kh * groups
                var a = tk_attention_args()
                a.q = pq + b * batchQ + head * perHead
                a.q_head_stride = perHead
                a.q_row_stride = q.strides[2]
                a.k = pk + b * k.strides[0] + kh * k.strides[1]
                a.k_stride = k.strides[2]
                a.v = pv + b * v.strides[0] + kh * v.strides[1]
                a.v_stride = v.strides[2]
                a.out = po + (b * hq + head) * lq * dv
                if let m {
                    let at = b * m.b + head * m.h
                    if let boolMask {
                        a.bool_mask = UnsafeRawPointer(boolMask + at).assumingMemoryBound(to: UInt8.self)
                    }
                    if let addMask { a.add_mask = addMask + at }
                    (a.mask_head_stride, a.mask_row_stride, a.mask_col_stride) = (m.h, m.i, m.j)
                }
                (a.heads, a.lq, a.lk, a.d, a.dv) = (groups, lq, lk, d, dv)
                a.scale = scale
                a.causal = causal ? 1 : 0
                return a
            }
            let jobs = batches * hk
            if batches * hq * lq * lk * (d + dv) < fewRowsParallelWork || jobs == 1 {
                for index in 0..<jobs {
                    var a = args(index)
                    tk_attention(&a)
                }
            } else if let parts = keyParts(jobs: jobs, keys: lk) {
                // Too few heads to share evenly: each head's keys in `parts`
                // ranges, every (head, range) one job, merged per head after.
                let rows = groups * lq, per = (lk + parts - 1) / parts
                let outs = UnsafeMutablePointer<Float>.allocate(capacity: jobs * parts * rows * dv)
                let stats = UnsafeMutablePointer<Float>.allocate(capacity: jobs * parts * rows * 2)
                defer {
                    outs.deallocate()
                    stats.deallocate()
                }
                ThreadPool.shared.parallelFor(jobs * parts) { index in
                    let job = index / parts, part = index % parts
                    var a = args(job)
                    a.key_begin = part * per
                    a.key_end = Swift.min(lk, (part + 1) * per)
                    a.out = outs + index * rows * dv
                    a.stats = stats + index * rows * 2
                    tk_attention(&a)
                }
                for job in 0..<jobs {
                    let head = args(job)
                    tk_attention_merge(rows, dv, parts, outs + job * parts * rows * dv, stats + job * parts * rows * 2, head.out)
                }
            } else {
                ThreadPool.shared.parallelFor(jobs) { index in
                    var a = args(index)
                    tk_attention(&a)
                }
            }
            return true
        }
        // The group's query heads form one [groups * Lq, D] matrix when head h+1 starts where head h's rows would continue.
        let stacked = groups == 1 || q.strides[1] == lq * q.strides[2]
        let rowsPerJob = stacked ? groups * lq : lq
        let jobs = batches * hk * (stacked ? 1 : groups)
        let addresses = (q: Int(bitPattern: pq), k: Int(bitPattern: pk), v: Int(bitPattern: pv), o: Int(bitPattern: po))

        let blocks = (rowsPerJob + blockRows - 1) / blockRows
        /// Block `block` (of `blockRows` query rows) of job `index`.
        func job(_ index: Int, block: Int, scratch: UnsafeMutablePointer<Float>) {
            let perBatch = stacked ? hk : hk * groups
            let b = index / perBatch, rest = index % perBatch
            let kh = stacked ? rest : rest / groups
            let firstHead = stacked ? kh * groups : rest
            let qBase = UnsafePointer<Float>(bitPattern: addresses.q)! + b * q.strides[0] + firstHead * q.strides[1]
            let kBase = UnsafePointer<Float>(bitPattern: addresses.k)! + b * k.strides[0] + kh * k.strides[1]
            let vBase = UnsafePointer<Float>(bitPattern: addresses.v)! + b * v.strides[0] + kh * v.strides[1]
            let oBase = UnsafeMutablePointer<Float>(bitPattern: addresses.o)! + (b * hq + firstHead) * lq * dv
            for r0 in stride(from: block * blockRows, to: Swift.min(rowsPerJob, (block + 1) * blockRows), by: blockRows) {
                let rows = Swift.min(blockRows, rowsPerJob - r0)
                // Keys any row of the block may see: causal rows see up to their position.
                var keys = lk
                if causal {
                    let lastQuery = Swift.min(lq - 1, (r0 % lq) + rows - 1)
                    keys = Swift.min(lk, Swift.max(0, lastQuery + 1 + lk - lq))
                }
                let A = GEMM.Operand(
                    pointer: UnsafeRawPointer(qBase + r0 * q.strides[2]), rows: rows, cols: d,
                    rowStride: q.strides[2], colStride: 1)
                let Bk = GEMM.Operand(
                    pointer: UnsafeRawPointer(kBase), rows: d, cols: keys, rowStride: 1, colStride: k.strides[2])
                if keys > 0 { multiply(A, Bk, scratch, m: rows, n: keys, k: d) }
                for r in 0..<rows {
                    let row = scratch + r * keys
                    let i = (r0 + r) % lq, head = firstHead + (r0 + r) / lq
                    let visible = causal ? Swift.min(keys, Swift.max(0, i + 1 + lk - lq)) : keys
                    for j in 0..<visible { row[j] *= scale }
                    for j in visible..<keys { row[j] = -.infinity }
                    if let mask {
                        let at = b * mask.strides[0] + head * mask.strides[1] + i * mask.strides[2]
                        let s = mask.strides[3]
                        if let boolMask {
                            for j in 0..<keys where !boolMask[at + j * s] { row[j] = -.infinity }
                        } else if let addMask {
                            for j in 0..<keys { row[j] += addMask[at + j * s] }
                        }
                    }
                }
                let out = oBase + r0 * dv
                if keys == 0 {
                    // Every key hidden: softmax of an all -inf row is NaN (the fallback's answer).
                    for e in 0..<(rows * dv) { out[e] = .nan }
                    continue
                }
                tk_softmax_rows(Int32(TK_F32), scratch, scratch, rows, keys)
                let P = GEMM.Operand(pointer: UnsafeRawPointer(scratch), rows: rows, cols: keys, rowStride: keys, colStride: 1)
                let Bv = GEMM.Operand(
                    pointer: UnsafeRawPointer(vBase), rows: keys, cols: dv, rowStride: v.strides[2], colStride: 1)
                multiply(P, Bv, out, m: rows, n: dv, k: keys)
            }
        }

        let scratchSize = Swift.min(blockRows, rowsPerJob) * Swift.max(lk, 1)
        let work = batches * hq * lq * lk * (d + dv)
        if work < parallelWork || jobs == 1 {
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchSize)
            defer { scratch.deallocate() }
            for index in 0..<jobs {
                for block in 0..<blocks { job(index, block: block, scratch: scratch) }
            }
        } else {
            // Every (head, block of query rows) is one task, so a few heads
            // (SmolLM2's 3 on 2 threads) still share the threads evenly; the
            // last blocks first, as causal rows see more keys the later they are.
            ThreadPool.shared.parallelFor(jobs * blocks) { task in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchSize)
                defer { scratch.deallocate() }
                job(task % jobs, block: blocks - 1 - task / jobs, scratch: scratch)
            }
        }
        return true
    }

    /// C [m, n] (row-major, ld n) = A B in float32, on the calling thread.
    private static func multiply(_ A: GEMM.Operand, _ B: GEMM.Operand, _ C: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int) {
        if GEMM.blas(A, B, C, m: m, n: n, k: k) || GEMM.gemv(A, B, C, m: m, n: n, k: k) { return }
        tk_gemm(m, n, k, Int32(TK_F32), A.pointer, A.rowStride, A.colStride, Int32(TK_F32), B.pointer, B.rowStride,
            B.colStride, 0, C, n)
    }
}
