// The attention of one layer for every row of a batched step as ONE node of
// the graph (a host kernel, Tessera's HostKernel.swift): rope at each row's
// own position, the new key and value written into its sequence's cache
// buffer in place, and each row's attention over its sequence's keys up to
// its position (within the sliding window, when the layer has one), run as
// one task set over (row, key/value head, key part) on the thread pool. It
// replaces ~10 graph nodes per sequence per layer (slices, two ropes, two
// cache slice-updates, two views, one attention call: ~300 nodes and ~240
// pool hand-offs per step at 8 sequences on SmolLM2) with one node and one
// hand-off per layer.
//
// Every row is computed exactly as the per-sequence graph computes it
// (`Attention.stepPerSequence`, which the fused path falls back to): the
// same rope angles (RopeTable's: cos/sin in double of position × scale ×
// base^(-2i/dims), rounded to float), the same float arithmetic of the
// rotation, and the same tk_attention call per key/value head, with the key
// split CPU attention would choose for that sequence alone
// (AttentionSplit.parts), merged by tk_attention_merge; so a sequence's
// logits do not depend on what else is in the step (batch invariance). A
// float16 cache (the default, KVCacheType.f16) gets the rotated key and the
// value rounded to half as the graph's asType(.float16) rounds them, and
// tk_attention reads it through k_half / v_half (widened in registers, the
// float32 arithmetic on the same values as the graph's widened copy).

import CTesseraKernels
import Synchronization
import Tessera

#if canImport(Glibc)
    import Glibc
#endif

/// Rope cosines and sines per position, computed as Tessera's CPU rope
/// computes them (Fast/CPUFast.swift, RopeTable), shared by the layers and
/// steps that use the same parameters; grown as positions come.
final class RopeAngles: Sendable {
    let half: Int
    let positions: Int
    let cosines: [Float]
    let sines: [Float]

    init(inverse: [Double], scale: Float, positions: Int) {
        half = inverse.count
        self.positions = positions
        var cosines = [Float](repeating: 0, count: positions * half), sines = cosines
        for t in 0..<positions {
            let position = Double(t) * Double(scale)
            for i in 0..<half {
                let theta = position * inverse[i]
                // CPU rope converts the double table entries to the element type per use.
                cosines[t * half + i] = Float(Glibc.cos(theta))
                sines[t * half + i] = Float(Glibc.sin(theta))
            }
        }
        self.cosines = cosines
        self.sines = sines
    }

    /// The inverse wavelengths rope uses for `parameters` over `dimensions` rotated features.
    static func inverse(_ parameters: RopeParameters, dimensions: Int) -> [Double] {
        if let f = parameters.frequencies { return f.map { 1 / Double($0) } }
        return (0..<dimensions / 2).map {
            Glibc.pow(Double(parameters.base), -2 * Double($0) / Double(dimensions))
        }
    }

    private struct Key: Hashable {
        let base: Float, scale: Float, frequencies: [Float]?, dimensions: Int
    }

    /// Tables by parameters, each covering the most positions asked so far.
    private static let tables = Mutex<[Key: RopeAngles]>([:])
    /// Positions are added this many at a time.
    static let chunk = 1024

    /// A table covering positions `0..<positions` at least.
    static func table(_ parameters: RopeParameters, dimensions: Int, positions: Int) -> RopeAngles {
        let key = Key(
            base: parameters.base, scale: parameters.scale, frequencies: parameters.frequencies,
            dimensions: dimensions)
        if let hit = tables.withLock({ $0[key] }), hit.positions >= positions { return hit }
        let size = (positions + chunk - 1) / chunk * chunk
        let table = RopeAngles(
            inverse: inverse(parameters, dimensions: dimensions), scale: parameters.scale, positions: size)
        tables.withLock { $0[key] = table }
        return table
    }
}

/// What the fused kernel needs to know of a layer and a step.
struct BatchedAttentionLayout: Sendable {
    var heads: Int
    var kvHeads: Int
    var headDim: Int
    /// Rotated features per head (even, at most headDim).
    var rotated: Int
    var traditional: Bool
    var scale: Float
    var window: Int?
    /// Per sequence: its rows in the step and its cached positions before them.
    var counts: [Int]
    var starts: [Int]
    /// Per sequence: whether its cache stores float16 (else float32).
    var half: [Bool]
}

/// One layer's attention for the stacked rows of several sequences, as one
/// host-kernel node: `q` `[1, R, heads, d]`, `k` and `v` `[1, R, kvHeads, d]`
/// (float32, before rope), `counts[s]` rows for `caches[s]` (each a float32
/// or float16 cache). Returns
/// `[1, R, heads * d]`, having written every row's key and value into its
/// cache (the caches count the new positions at once); nil, with no cache
/// touched, when the fused path does not apply (not float32 on the CPU, a
/// quantized or rotating cache, more than 16 query heads per key/value
/// head): the caller then builds the per-sequence graph.
func batchedAttention(
    q: Tensor, k: Tensor, v: Tensor, caches: [KVCache], counts: [Int], rope: RopeParameters, rotated: Int,
    traditional: Bool, scale: Float, window: Int?
) -> Tensor? {
    let rows = q.dim(1), heads = q.dim(2), kvHeads = k.dim(2), d = q.dim(3)
    guard q.dtype == .float32, k.dtype == .float32, v.dtype == .float32, q.device == .cpu, caches.count == counts.count,
        counts.reduce(0, +) == rows, counts.allSatisfy({ $0 > 0 }), k.shape == [1, rows, kvHeads, d],
        v.shape == k.shape,
        AttentionSplit.parts(
            queryHeads: heads, kvHeads: kvHeads, keys: 1, keySize: d, valueSize: d) != nil,
        caches.allSatisfy({ $0.acceptsDirectWrites(heads: kvHeads, keySize: d, valueSize: d) })
    else { return nil }
    let layout = BatchedAttentionLayout(
        heads: heads, kvHeads: kvHeads, headDim: d, rotated: rotated, traditional: traditional, scale: scale,
        window: window, counts: counts, starts: caches.map(\.length), half: caches.map(\.halfPrecision))
    var buffers: [Tensor] = []
    buffers.reserveCapacity(2 * caches.count)
    for (cache, n) in zip(caches, counts) {
        let (keys, values) = cache.reserve(n, heads: kvHeads, keySize: d, valueSize: d)
        buffers += [keys, values]
    }
    let last = zip(layout.starts, counts).map { $0 + $1 }.max() ?? 0
    let angles = RopeAngles.table(rope, dimensions: rotated, positions: last)
    let kernel = HostKernel(name: "batchedAttention") { inputs, output in
        try runBatchedAttention(layout, angles, inputs, output)
    }
    for (cache, n) in zip(caches, counts) { cache.advance(n) }
    return Tensor.host(kernel, inputs: [q, k, v] + buffers, shape: [1, rows, heads * d], dtype: .float32)
}

private func invalid(_ reason: String) -> TesseraError { .invalidData(op: "batchedAttention", reason: reason) }

/// The kernel: rope and cache writes on the calling thread, then the rows'
/// attention as one parallel loop, then the merges of split rows.
private func runBatchedAttention(
    _ l: BatchedAttentionLayout, _ angles: RopeAngles, _ inputs: [HostArray], _ output: HostArray
) throws {
    let (heads, kvHeads, d) = (l.heads, l.kvHeads, l.headDim)
    guard inputs.count == 3 + 2 * l.counts.count, inputs.prefix(3).allSatisfy({ $0.dtype == .float32 }),
        l.half.count == l.counts.count, output.isRowContiguous, output.dtype == .float32
    else { throw invalid("unexpected inputs") }
    let (q, k, v) = (inputs[0], inputs[1], inputs[2])
    let rows = q.shape[1]
    guard output.shape == [1, rows, heads * d] else { throw invalid("unexpected output shape \(output.shape)") }
    // Every sequence's buffers: [1, kvHeads, room, d] of float32 or float16,
    // row-contiguous, with room for the new positions.
    var keyBuffers: [UnsafeMutableRawPointer] = [], valueBuffers: [UnsafeMutableRawPointer] = []
    var rooms: [Int] = []
    for (s, n) in l.counts.enumerated() {
        let kb = inputs[3 + 2 * s], vb = inputs[4 + 2 * s]
        let room = kb.shape.count == 4 ? kb.shape[2] : 0
        let stored: DType = l.half[s] ? .float16 : .float32
        guard kb.dtype == stored, vb.dtype == stored,
            kb.shape == [1, kvHeads, room, d], vb.shape == kb.shape, kb.isRowContiguous, vb.isRowContiguous,
            kb.available >= kvHeads * room * d, vb.available >= kvHeads * room * d, l.starts[s] + n <= room,
            l.starts[s] + n <= angles.positions
        else {
            throw invalid(
                "a cache buffer of shape \(kb.shape) cannot take positions \(l.starts[s])..<\(l.starts[s] + n)")
        }
        keyBuffers.append(kb.pointer)
        valueBuffers.append(vb.pointer)
        rooms.append(room)
    }
    func operand(_ a: HostArray) -> AttentionRows {
        AttentionRows(
            base: UnsafePointer(a.pointer.assumingMemoryBound(to: Float.self)), row: a.strides[1], head: a.strides[2],
            element: a.strides[3])
    }
    try attendRows(
        l, angles, q: operand(q), k: operand(k), v: operand(v), rows: rows, keyBuffers: keyBuffers,
        valueBuffers: valueBuffers, rooms: rooms, out: output.pointer.assumingMemoryBound(to: Float.self))
}

/// Where a step's float32 rows of q, k or v are (before rope): row r, head
/// h, feature j at base + r·row + h·head + j·element.
struct AttentionRows {
    let base: UnsafePointer<Float>
    let row: Int, head: Int, element: Int
}

/// The fused kernel on host pointers (the host-kernel node's and
/// DecodePlan's batched replay): rope and the cache writes of `rows` rows
/// (`l.counts` per sequence, sequence s's buffers at keyBuffers[s] and
/// valueBuffers[s], `[kvHeads, rooms[s], d]` of float16 or float32 per
/// `l.half[s]`, with room past `l.starts[s]`), then every row's attention,
/// into `out` `[rows, heads * d]`.
func attendRows(
    _ l: BatchedAttentionLayout, _ angles: RopeAngles, q qs: AttentionRows, k ks: AttentionRows, v vs: AttentionRows,
    rows: Int, keyBuffers: [UnsafeMutableRawPointer], valueBuffers: [UnsafeMutableRawPointer], rooms: [Int],
    out: UnsafeMutablePointer<Float>
) throws {
    let (heads, kvHeads, d) = (l.heads, l.kvHeads, l.headDim)
    let groups = heads / kvHeads
    let (pq, pk, pv) = (qs.base, ks.base, vs.base)
    // Roped queries, [rows, heads, d].
    let queries = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, rows * heads * d))
    // One rotated key or copied value on its way to a float16 cache.
    let staged = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, d))
    defer {
        queries.deallocate()
        staged.deallocate()
    }
    let half = l.rotated / 2
    func rotate(_ src: UnsafePointer<Float>, _ stride: Int, into dst: UnsafeMutablePointer<Float>, position: Int) {
        angles.cosines.withUnsafeBufferPointer { cosines in
            angles.sines.withUnsafeBufferPointer { sines in
                let at = position * half
                for i in 0..<half {
                    let c = cosines[at + i], sn = sines[at + i]
                    let (a, b) = l.traditional ? (2 * i, 2 * i + 1) : (i, i + half)
                    let x1 = src[a * stride], x2 = src[b * stride]
                    dst[a] = x1 * c - x2 * sn
                    dst[b] = x1 * sn + x2 * c
                }
            }
        }
        for j in l.rotated..<d { dst[j] = src[j * stride] }
    }
    // Rows in order: (sequence, its position); rope and the cache writes.
    var rowSequence = [Int](repeating: 0, count: rows), rowPosition = [Int](repeating: 0, count: rows)
    var r = 0
    for (s, n) in l.counts.enumerated() {
        for i in 0..<n {
            let position = l.starts[s] + i
            rowSequence[r] = s
            rowPosition[r] = position
            for h in 0..<heads {
                rotate(
                    pq + r * qs.row + h * qs.head, qs.element, into: queries + (r * heads + h) * d,
                    position: position)
            }
            for h in 0..<kvHeads {
                let at = (h * rooms[s] + position) * d
                let keySource = pk + r * ks.row + h * ks.head
                let src = pv + r * vs.row + h * vs.head
                if l.half[s] {
                    // Rounded to half as the graph's asType(.float16) rounds (tk_convert).
                    rotate(keySource, ks.element, into: staged, position: position)
                    _DecodeKernels.toHalf(staged, into: keyBuffers[s] + at * 2, count: d)
                    for j in 0..<d { staged[j] = src[j * vs.element] }
                    _DecodeKernels.toHalf(staged, into: valueBuffers[s] + at * 2, count: d)
                } else {
                    let keys = keyBuffers[s].assumingMemoryBound(to: Float.self)
                    rotate(keySource, ks.element, into: keys + at, position: position)
                    let dst = valueBuffers[s].assumingMemoryBound(to: Float.self) + at
                    for j in 0..<d { dst[j] = src[j * vs.element] }
                }
            }
            r += 1
        }
    }
    // Tasks: (row, key/value head, part), each row split over its keys as the
    // sequence alone would be; split rows' parts land in `partial` first.
    var firstKey = [Int](repeating: 0, count: rows), parts = [Int](repeating: 1, count: rows)
    var taskStart = [Int](repeating: 0, count: rows + 1), partialStart = [Int](repeating: 0, count: rows + 1)
    for r in 0..<rows {
        let end = rowPosition[r] + 1
        firstKey[r] = l.window.map { Swift.max(0, end - $0) } ?? 0
        let keys = end - firstKey[r]
        guard
            let p = AttentionSplit.parts(queryHeads: heads, kvHeads: kvHeads, keys: keys, keySize: d, valueSize: d)
        else { throw invalid("\(groups) query heads per key/value head") }
        parts[r] = p
        taskStart[r + 1] = taskStart[r] + kvHeads * p
        partialStart[r + 1] = partialStart[r] + (p > 1 ? kvHeads * p : 0)
    }
    let tasks = taskStart[rows], partials = partialStart[rows]
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, partials * groups * d))
    let stats = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, partials * groups * 2))
    defer {
        partial.deallocate()
        stats.deallocate()
    }
    func args(row r: Int, head h: Int) -> tk_attention_args {
        let s = rowSequence[r], end = rowPosition[r] + 1, first = firstKey[r]
        var a = tk_attention_args()
        a.q = UnsafePointer(queries + (r * heads + h * groups) * d)
        a.q_head_stride = d
        a.q_row_stride = heads * d
        let at = (h * rooms[s] + first) * d
        if l.half[s] {
            a.k_half = UnsafePointer(keyBuffers[s].assumingMemoryBound(to: UInt16.self) + at)
            a.v_half = UnsafePointer(valueBuffers[s].assumingMemoryBound(to: UInt16.self) + at)
        } else {
            a.k = UnsafePointer(keyBuffers[s].assumingMemoryBound(to: Float.self) + at)
            a.v = UnsafePointer(valueBuffers[s].assumingMemoryBound(to: Float.self) + at)
        }
        a.k_stride = d
        a.v_stride = d
        a.out = out + (r * heads + h * groups) * d
        (a.heads, a.lq, a.lk, a.d, a.dv) = (groups, 1, end - first, d, d)
        a.scale = l.scale
        a.causal = 0
        return a
    }
    // Rows by task index: a binary search over taskStart.
    func rowOf(_ t: Int) -> Int {
        var lo = 0, hi = rows - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if taskStart[mid] <= t { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }
    HostThreads.parallelFor(tasks) { t in
        let r = rowOf(t), local = t - taskStart[r]
        let p = parts[r], h = local / p, part = local % p
        var a = args(row: r, head: h)
        if p > 1 {
            let per = (a.lk + p - 1) / p, index = partialStart[r] + local
            a.key_begin = part * per
            a.key_end = Swift.min(a.lk, (part + 1) * per)
            a.out = partial + index * groups * d
            a.stats = stats + index * groups * 2
        }
        tk_attention(&a)
    }
    for r in 0..<rows where parts[r] > 1 {
        let p = parts[r]
        for h in 0..<kvHeads {
            let index = partialStart[r] + h * p
            tk_attention_merge(
                groups, d, p, partial + index * groups * d, stats + index * groups * 2,
                out + (r * heads + h * groups) * d)
        }
    }
}
