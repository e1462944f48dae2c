// CPU fused kernels: softmax and logSoftmax (last axis), rmsNorm, layerNorm,
// rope and scaled dot-product attention. Inputs may have any strides; the
// output is a fresh row-contiguous array. Rows are processed one at a time in
// the compute type (float32 for half types, float64 for float64), rounding to
// the element type once at the end.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Calls `body(row, offset)` for each row along the last axis of `view`
/// (row-major), with the element offset of the row's start.
/// The rows of `view`'s last axis split over the pool: `body` gets a run of
/// (row index, offset of its first element) pairs, `grain` rows at least.
private func parallelLastAxisRows(_ view: ArrayView, grain: Int, _ body: ([(Int, Int)]) -> Void) {
    let shape = Array(view.shape.dropLast()), strides = Array(view.strides.dropLast())
    let rows = shape.reduce(1, *)
    ThreadPool.shared.parallelRanges(rows, grain: grain) { range in
        body(
            range.map { r in
                var offset = 0, rest = r
                for axis in stride(from: shape.count - 1, through: 0, by: -1) {
                    offset += (rest % shape[axis]) * strides[axis]
                    rest /= shape[axis]
                }
                return (r, offset)
            })
    }
}

private func forEachLastAxisRow(_ view: ArrayView, _ body: (Int, Int) -> Void) {
    forEachBatch(shape: Array(view.shape.dropLast()), strides: [Array(view.strides.dropLast())]) { row, o in
        body(row, o[0])
    }
}

struct FastKernel: KindVisitor {
    let primitive: Primitive
    let inputs: [ArrayView]
    let output: ArrayView

    func visitFloat<T: FloatElement>(_: T.Type) throws {
        if try simdRows(T.self) { return }
        let out = try output.buffer.hostPointer(forWriting: true).assumingMemoryBound(to: T.self)
        switch primitive {
        case .softmax: try softmax(T.self, out: out, log: false)
        case .logSoftmax: try softmax(T.self, out: out, log: true)
        case .rmsNorm(let eps, let hasWeight):
            try normalize(T.self, out: out, eps: eps, center: false, weight: hasWeight ? 1 : nil, bias: nil)
        case .layerNorm(let eps, let hasWeight, let hasBias):
            try normalize(
                T.self, out: out, eps: eps, center: true, weight: hasWeight ? 1 : nil,
                bias: hasBias ? (hasWeight ? 2 : 1) : nil)
        case .rope(let dims, let traditional, let base, let scale, let offset, let hasFreqs):
            try rope(
                T.self, out: out, dims: dims, traditional: traditional, base: base, scale: scale, offset: offset,
                hasFreqs: hasFreqs)
        case .scaledDotProductAttention(let scale, let causal):
            if try AttentionKernels.attention(inputs, scale: scale, causal: causal, into: output) { return }
            try attention(T.self, out: out, scale: scale, causal: causal)
        default:
            fatalError("[\(primitive.name)] is not a fused op")
        }
    }

    /// softmax, rmsNorm and layerNorm in float32/float16/bfloat16 through the
    /// SIMD row kernels (CPUFast+SIMD.swift), split over the thread pool.
    private func simdRows<T: FloatElement>(_: T.Type) throws -> Bool {
        guard SIMDKernels.code(T.self) != nil, inputs[0].count > 0 else { return false }
        switch primitive {
        case .softmax:
            try RowKernels.softmax(inputs[0], into: output)
        case .rmsNorm(let eps, let hasWeight):
            try RowKernels.rmsNorm(inputs[0], weight: hasWeight ? inputs[1] : nil, eps: eps, into: output)
        case .layerNorm(let eps, let hasWeight, let hasBias):
            try RowKernels.layerNorm(
                inputs[0], weight: hasWeight ? inputs[1] : nil, bias: hasBias ? inputs[hasWeight ? 2 : 1] : nil,
                eps: eps, into: output)
        default:
            return false
        }
        return true
    }

    private func softmax<T: FloatElement>(_: T.Type, out: UnsafeMutablePointer<T>, log: Bool) throws {
        let x = inputs[0]
        let n = x.shape.last ?? 1, s = x.strides.last ?? 1
        let p = try x.hostPointer(T.self)
        // Rows split over the pool (each row as before, so the same bits): a
        // training loss's log-softmax is 1024 rows of a 49k vocabulary.
        parallelLastAxisRows(x, grain: Swift.max(1, 32768 / Swift.max(n, 1))) { rows in
            let row = UnsafeMutableBufferPointer<T.Math>.allocate(capacity: Swift.max(n, 1))
            defer { row.deallocate() }
            for (r, offset) in rows {
                softmaxRow(p: p, offset: offset, s: s, n: n, row: row, o: out + r * n, log: log)
            }
        }
    }

    private func softmaxRow<T: FloatElement>(
        p: UnsafePointer<T>, offset: Int, s: Int, n: Int, row: UnsafeMutableBufferPointer<T.Math>,
        o: UnsafeMutablePointer<T>, log: Bool
    ) {
        do {
            var m = -T.Math.infinity
            for j in 0..<n {
                let v = p[offset + j * s].math
                row[j] = v
                if v > m || v.isNaN { m = v }
            }
            // All -inf: exp(x - 0) gives 0/0 = NaN, as MLX. A +inf stays the max: inf - inf makes
            // the whole row NaN, as MLX and torch give.
            if m == -T.Math.infinity { m = 0 }
            var sum: T.Math = 0
            for j in 0..<n { sum += T.Math.exp(row[j] - m) }
            if log {
                let logSum = T.Math.log(sum)
                for j in 0..<n { o[j] = T(math: row[j] - m - logSum) }
            } else {
                for j in 0..<n { o[j] = T(math: T.Math.exp(row[j] - m) / sum) }
            }
        }
    }

    /// rmsNorm (center: false) and layerNorm (center: true); `weight`/`bias` are input indices.
    private func normalize<T: FloatElement>(
        _: T.Type, out: UnsafeMutablePointer<T>, eps: Float, center: Bool, weight: Int?, bias: Int?
    ) throws {
        let x = inputs[0]
        let n = x.shape.last ?? 1, s = x.strides.last ?? 1
        let p = try x.hostPointer(T.self)
        let w = try weight.map { (try inputs[$0].hostPointer(T.self), inputs[$0].strides[0]) }
        let b = try bias.map { (try inputs[$0].hostPointer(T.self), inputs[$0].strides[0]) }
        let epsilon = T.Math(eps)
        forEachLastAxisRow(x) { r, offset in
            var mean: T.Math = 0
            if center {
                for j in 0..<n { mean += p[offset + j * s].math }
                mean /= T.Math(n)
            }
            var squares: T.Math = 0
            for j in 0..<n {
                let v = p[offset + j * s].math - mean
                squares += v * v
            }
            let inverse = 1 / (squares / T.Math(n) + epsilon).squareRoot()
            let o = out + r * n
            for j in 0..<n {
                var y = (p[offset + j * s].math - mean) * inverse
                if let (wp, ws) = w { y *= wp[j * ws].math }
                if let (bp, bs) = b { y += bp[j * bs].math }
                o[j] = T(math: y)
            }
        }
    }

    private func rope<T: FloatElement>(
        _: T.Type, out: UnsafeMutablePointer<T>, dims: Int, traditional: Bool, base: Float, scale: Float, offset: Int,
        hasFreqs: Bool
    ) throws {
        let x = inputs[0]
        let nd = x.shape.count
        let n = x.shape[nd - 1], length = x.shape[nd - 2], s = x.strides[nd - 1]
        let p = try x.hostPointer(T.self)
        let half = dims / 2
        let positions = Swift.max(length, 1)
        let table: RopeTable
        if hasFreqs {
            let f = try inputs[1].hostPointer(Float.self), fs = inputs[1].strides[0]
            table = RopeTable(
                offset: offset, positions: positions, scale: scale, inverse: (0..<half).map { 1 / Double(f[$0 * fs]) })
        } else {
            table = RopeTable.cached(offset: offset, positions: positions, dims: dims, base: base, scale: scale)
        }
        if T.self == Float.self, !traditional, s == 1, half % 8 == 0, half > 0 {
            ropeRows(
                x, p: UnsafePointer<Float>(OpaquePointer(p)), out: UnsafeMutablePointer<Float>(OpaquePointer(out)),
                n: n, dims: dims, positions: positions, table: table)
            return
        }
        let cosines = table.cosines, sines = table.sines
        forEachLastAxisRow(x) { r, rowOffset in
            let angles = (r % positions) * half
            let o = out + r * n
            let src = p + rowOffset
            for i in 0..<half {
                let c = T.Math(cosines[angles + i]), sn = T.Math(sines[angles + i])
                let (a, b) = traditional ? (2 * i, 2 * i + 1) : (i, i + half)
                let x1 = src[a * s].math, x2 = src[b * s].math
                o[a] = T(math: x1 * c - x2 * sn)
                o[b] = T(math: x1 * sn + x2 * c)
            }
            for j in dims..<n { o[j] = src[j * s] }
        }
    }

    /// rope on float32 rows with unit stride along the last axis (the
    /// halves rotated as pairs, not traditional): 8 pairs at a time with the
    /// scalar loop's operations in its order (x1·c − x2·s, x1·s + x2·c, each
    /// product rounded, no fused multiply-add), on the angles' float32
    /// values, so the same bits; rows split over the pool.
    private func ropeRows(
        _ x: ArrayView, p: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, n: Int, dims: Int, positions: Int,
        table: RopeTable
    ) {
        let half = dims / 2
        let shape = Array(x.shape.dropLast()), strides = Array(x.strides.dropLast())
        let rows = shape.reduce(1, *)
        let (cosines, sines) = table.floatValues
        cosines.withUnsafeBufferPointer { cb in
            sines.withUnsafeBufferPointer { sb in
                let cp = cb.baseAddress!, sp = sb.baseAddress!
                ThreadPool.shared.parallelRanges(rows, grain: 64) { range in
                    for r in range {
                        var offset = 0, rest = r
                        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
                            offset += (rest % shape[axis]) * strides[axis]
                            rest /= shape[axis]
                        }
                        let src = p + offset, o = out + r * n
                        let angles = (r % positions) * half
                        for i in stride(from: 0, to: half, by: 8) {
                            let c = UnsafeRawPointer(cp + angles + i).loadUnaligned(as: SIMD8<Float>.self)
                            let sn = UnsafeRawPointer(sp + angles + i).loadUnaligned(as: SIMD8<Float>.self)
                            let x1 = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
                            let x2 = UnsafeRawPointer(src + half + i).loadUnaligned(as: SIMD8<Float>.self)
                            let a = x1 * c - x2 * sn, b = x1 * sn + x2 * c
                            UnsafeMutableRawPointer(o + i).storeBytes(of: a, as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(o + half + i).storeBytes(of: b, as: SIMD8<Float>.self)
                        }
                        for j in dims..<n { o[j] = src[j] }
                    }
                }
            }
        }
    }

    private func attention<T: FloatElement>(_: T.Type, out: UnsafeMutablePointer<T>, scale: Float, causal: Bool)
        throws
    {
        let q = inputs[0], k = inputs[1], v = inputs[2]
        let (batches, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (hk, lk, dv) = (k.shape[1], k.shape[2], v.shape[3])
        let groups = hq / hk
        let pq = try q.hostPointer(T.self), pk = try k.hostPointer(T.self), pv = try v.hostPointer(T.self)
        let mask = inputs.count > 3 ? inputs[3] : nil
        let boolMask = try mask.flatMap { $0.dtype == .bool ? try $0.hostPointer(Bool.self) : nil }
        let addMask = try mask.flatMap { $0.dtype == .bool ? nil : try $0.hostPointer(T.self) }
        let sc = T.Math(scale)
        let scores = UnsafeMutableBufferPointer<T.Math>.allocate(capacity: Swift.max(lk, 1))
        let acc = UnsafeMutableBufferPointer<T.Math>.allocate(capacity: Swift.max(dv, 1))
        defer {
            scores.deallocate()
            acc.deallocate()
        }
        var o = out
        for b in 0..<batches {
            for h in 0..<hq {
                let kh = h / groups
                let kBase = b * k.strides[0] + kh * k.strides[1], vBase = b * v.strides[0] + kh * v.strides[1]
                for i in 0..<lq {
                    let qRow = pq + b * q.strides[0] + h * q.strides[1] + i * q.strides[2]
                    var m = -T.Math.infinity
                    for j in 0..<lk {
                        var score: T.Math
                        if causal && j > i + lk - lq {
                            score = -.infinity
                        } else {
                            let kRow = pk + kBase + j * k.strides[2]
                            var dot: T.Math = 0
                            for e in 0..<d { dot += qRow[e * q.strides[3]].math * kRow[e * k.strides[3]].math }
                            score = dot * sc
                        }
                        if let mask {
                            let at =
                                b * mask.strides[0] + h * mask.strides[1] + i * mask.strides[2] + j * mask.strides[3]
                            if let boolMask, !boolMask[at] { score = -.infinity }
                            if let addMask { score += addMask[at].math }
                        }
                        scores[j] = score
                        if score > m { m = score }
                    }
                    for e in 0..<dv { acc[e] = 0 }
                    var sum: T.Math = 0
                    for j in 0..<lk {
                        let weight = T.Math.exp(scores[j] - m)  // NaN for a fully masked row, as the fallback
                        sum += weight
                        let vRow = pv + vBase + j * v.strides[2]
                        for e in 0..<dv { acc[e] += weight * vRow[e * v.strides[3]].math }
                    }
                    for e in 0..<dv { o[e] = T(math: acc[e] / sum) }
                    o += dv
                }
            }
        }
    }

    func visitBool() throws { unsupported(primitive.name, .bool) }
    func visitInteger<T: IntegerElement>(_: T.Type) throws { unsupported(primitive.name, T.dtype) }
    func visitComplex() throws { unsupported(primitive.name, .complex64) }
}

/// Rope's cosines and sines per position and frequency, in double so long
/// positions keep their angles.
final class RopeTable: Sendable {
    let cosines: [Double]
    let sines: [Double]

    init(offset: Int, positions: Int, scale: Float, inverse: [Double]) {
        let half = inverse.count
        var cosines = [Double](repeating: 0, count: positions * half), sines = cosines
        for t in 0..<positions {
            let position = Double(offset + t) * Double(scale)
            for i in 0..<half {
                let theta = position * inverse[i]
                cosines[t * half + i] = Glibc.cos(theta)
                sines[t * half + i] = Glibc.sin(theta)
            }
        }
        self.cosines = cosines
        self.sines = sines
        floatValues = (cosines.map { Float($0) }, sines.map { Float($0) })
    }

    /// The cosines and sines rounded to float32 (what the float32 loop multiplies by).
    let floatValues: (cosines: [Float], sines: [Float])

    private struct Key: Equatable {
        let offset, positions, dims: Int
        let base, scale: Float
    }

    /// The last table built from a base, kept: every layer of a decode step
    /// rotates its queries and keys at the same positions.
    private static let last = Locked<(key: Key, table: RopeTable)?>(nil)

    static func cached(offset: Int, positions: Int, dims: Int, base: Float, scale: Float) -> RopeTable {
        let key = Key(offset: offset, positions: positions, dims: dims, base: base, scale: scale)
        if let hit = last.withLock({ $0 }), hit.key == key { return hit.table }
        let inverse = (0..<dims / 2).map { Glibc.pow(Double(base), -2 * Double($0) / Double(dims)) }
        let table = RopeTable(offset: offset, positions: positions, scale: scale, inverse: inverse)
        last.withLock { $0 = (key, table) }
        return table
    }
}
