// Scaled dot-product attention on float32. Layout: q [B, Hq, Lq, D],
// k [B, Hk, Lk, D], v [B, Hk, Lk, Dv], any strides with unit stride on the
// last axis (a cache's window of a larger buffer is read in place); output
// row-contiguous [B, Hq, Lq, Dv]. Jobs are key/value heads (with the query
// heads that share them) and split over the pool when the work is large.
//
// Few query rows per key/value head (decode steps, short chunks: at most
// `fewRows` of them) go to the C kernel tk_attention (kernels_attention.h):
// dot products, scale/mask, softmax and the weighted sum of values in one
// call, without BLAS. More rows (prefill) go to the flash-style kernel
// tk_attention_flash (kernels_flash.h): tiles of 64 keys, an online softmax,
// P V accumulated into the output rows, no rows × keys score matrix; each
// key/value head's keys are transposed once for it, and blocks of query
// positions are the pool's tasks; causal blocks skip the tiles no row of
// theirs can see.

import CTesseraKernels

enum AttentionKernels {
    /// Query positions per task of the flash-style kernel.
    static let flashRows = 128
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
        if groups * lq <= fewRows {
            runFewRows(
                jobs: batches * hk, rows: groups * lq, dv: dv, keys: lk, work: batches * hq * lq * lk * (d + dv),
                scratch: nil, args)
            return true
        }
        // More rows: the flash-style kernel (kernels_flash.h) over tiles of
        // keys, each key/value head's keys transposed once and shared by
        // every block of query rows; tasks are (key/value head, query head,
        // block of positions), the last positions first, as causal rows see
        // more keys the later they are.
        let jobs = batches * hk
        let stride = tk_attention_flash_keys_stride(lk)
        let transposed = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, jobs * d * stride))
        defer { transposed.deallocate() }
        let blocks = (lq + flashRows - 1) / flashRows
        let serial = batches * hq * lq * lk * (d + dv) < parallelWork
        if serial || jobs == 1 {
            for index in 0..<jobs {
                var a = args(index)
                tk_attention_flash_keys(&a, transposed + index * d * stride)
            }
        } else {
            ThreadPool.shared.parallelFor(jobs) { index in
                var a = args(index)
                tk_attention_flash_keys(&a, transposed + index * d * stride)
            }
        }
        let tasks = jobs * groups * blocks
        func task(_ t: Int) {
            let block = blocks - 1 - t / (jobs * groups), rest = t % (jobs * groups)
            let index = rest / groups, head = rest % groups
            var a = args(index)
            let p0 = block * flashRows, p1 = Swift.min(lq, p0 + flashRows)
            tk_attention_flash(&a, transposed + index * d * stride, head * lq + p0, head * lq + p1)
        }
        if serial {
            for t in 0..<tasks { task(t) }
        } else {
            ThreadPool.shared.parallelFor(tasks) { task($0) }
        }
        return true
    }

    /// Floats of scratch `runFewRows` uses when it splits heads' keys over the
    /// pool (`jobs` heads of `rows` query rows each): the partial rows and
    /// their softmax statistics.
    static func fewRowsScratch(jobs: Int, rows: Int, dv: Int) -> Int {
        jobs * Swift.max(1, ThreadPool.shared.threadCount) * rows * (dv + 2)
    }

    /// The few-rows kernel over `jobs` key/value heads (`args(j)` head j's
    /// arguments): on the calling thread when the work is small, else one
    /// head per task, or, when the heads do not share the pool's threads
    /// evenly, each head's keys in parts merged after (into `scratch`, of
    /// `fewRowsScratch` floats, or a buffer allocated here). A decode step
    /// replayed without graph nodes (TesseraLM's DecodePlan) calls this
    /// with the arguments the graph's attention would build, so both
    /// compute the same bits.
    static func runFewRows(
        jobs: Int, rows: Int, dv: Int, keys lk: Int, work: Int, scratch: UnsafeMutablePointer<Float>?,
        _ args: (Int) -> tk_attention_args
    ) {
        if work < fewRowsParallelWork || jobs == 1 {
            for index in 0..<jobs {
                var a = args(index)
                tk_attention(&a)
            }
        } else if let parts = keyParts(jobs: jobs, keys: lk) {
            // Too few heads to share evenly: each head's keys in `parts`
            // ranges, every (head, range) one job, merged per head after.
            let per = (lk + parts - 1) / parts
            let owned =
                scratch == nil ? UnsafeMutablePointer<Float>.allocate(capacity: jobs * parts * rows * (dv + 2)) : nil
            defer { owned?.deallocate() }
            guard let outs = scratch ?? owned else { return }
            let stats = outs + jobs * parts * rows * dv
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
                tk_attention_merge(
                    rows, dv, parts, outs + job * parts * rows * dv, stats + job * parts * rows * 2, head.out)
            }
        } else {
            ThreadPool.shared.parallelFor(jobs) { index in
                var a = args(index)
                tk_attention(&a)
            }
        }
    }

}
