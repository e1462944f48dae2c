// The pieces the architectures share: attention (grouped-query, rope, optional
// biases, q/k norms, soft-capping, sliding window) and the gated MLP.

import Tessera

/// Projections of one input (q, k, v; or gate, up), applied as one product
/// when their weights stack: one pass over the input and one job split over
/// the pool (alone, the small k and v projections of a decode step ran on one
/// thread). The outputs are views of the product's columns.
struct Projections: Sendable {
    /// The stacked weight, or nil when the parts' formats differ.
    let stacked: Weight?
    /// The separate weights, kept only when they could not be stacked.
    let parts: [Weight]
    /// Each part's output count.
    let sizes: [Int]

    init(_ parts: [Weight]) {
        sizes = parts.map { $0.shape[0] }
        stacked = Weight.stacked(parts)
        self.parts = stacked == nil ? parts : []
    }

    /// A weight that already holds the parts one after another (phi3's qkv_proj).
    init(stacked: Weight, sizes: [Int]) {
        self.stacked = stacked
        self.sizes = sizes
        parts = []
    }

    /// `x @ Wᵢᵀ` for each part.
    func apply(_ x: Tensor) -> [Tensor] {
        guard let stacked else { return parts.map { $0.apply(x) } }
        var bounds: [Int] = []
        for size in sizes.dropLast() { bounds.append((bounds.last ?? 0) + size) }
        return stacked.apply(x).split(indices: bounds, axis: -1)
    }
}

/// Self-attention of one layer.
struct Attention: Sendable {
    let qkv: Projections
    let o: Weight
    let qBias, kBias, vBias: Tensor?
    let qNorm, kNorm: Tensor?
    let rope: RopeParameters
    let slidingWindow: Int?

    init(_ w: WeightSource, layer i: Int, _ c: TransformerConfiguration) throws {
        let qOut = c.headCount * c.headDim, kvOut = c.kvHeadCount * c.headDim
        if c.fusedQKV {
            let stacked = try w.weight(.qkv(i), shape: [qOut + 2 * kvOut, c.hiddenSize])
            qkv = Projections(stacked: stacked, sizes: [qOut, kvOut, kvOut])
        } else {
            qkv = Projections([
                try w.weight(.q(i), shape: [qOut, c.hiddenSize]), try w.weight(.k(i), shape: [kvOut, c.hiddenSize]),
                try w.weight(.v(i), shape: [kvOut, c.hiddenSize]),
            ])
        }
        o = try w.weight(.o(i), shape: [c.hiddenSize, qOut])
        if c.attentionBias {
            qBias = try w.vector(.q(i), size: qOut, suffix: ".bias")
            kBias = try w.vector(.k(i), size: kvOut, suffix: ".bias")
            vBias = try w.vector(.v(i), size: kvOut, suffix: ".bias")
        } else {
            (qBias, kBias, vBias) = (nil, nil, nil)
        }
        if c.queryKeyNorms {
            qNorm = try w.vector(.qNorm(i), size: c.headDim) + c.normWeightOffset
            kNorm = try w.vector(.kNorm(i), size: c.headDim) + c.normWeightOffset
        } else {
            (qNorm, kNorm) = (nil, nil)
        }
        let sliding = c.slidingLayers[i]
        rope = sliding ? c.localRope ?? c.rope : c.rope
        slidingWindow = sliding ? c.slidingWindow : nil
    }

    func callAsFunction(_ x: Tensor, cache: KVCache, _ c: TransformerConfiguration) -> Tensor {
        let (b, l) = (x.dim(0), x.dim(1))
        let projected = qkv.apply(x)
        func project(_ i: Int, _ bias: Tensor?) -> Tensor { bias.map { projected[i] + $0 } ?? projected[i] }
        func heads(_ t: Tensor, _ n: Int, _ norm: Tensor?) -> Tensor {
            let split = t.reshaped([b, l, n, c.headDim])
            let normed = norm.map { Fast.rmsNorm(split, weight: $0, eps: c.rmsNormEps) } ?? split
            return normed.transposed(axes: [0, 2, 1, 3])
        }
        let rotated = c.ropeDimensions ?? c.headDim
        let offset = cache.offset
        let queries = rope.apply(
            heads(project(0, qBias), c.headCount, qNorm), dimensions: rotated, traditional: c.ropeTraditional,
            offset: offset)
        let newKeys = rope.apply(
            heads(project(1, kBias), c.kvHeadCount, kNorm), dimensions: rotated, traditional: c.ropeTraditional,
            offset: offset)
        let (keys, values) = cache.update(keys: newKeys, values: heads(project(2, vBias), c.kvHeadCount, nil))
        let mask = attentionMask(queryOffset: offset, queries: l, keys: keys.dim(2), window: slidingWindow)
        let attended = attention(queries, keys, values, scale: c.attentionScale, softcap: c.attentionSoftcap, mask: mask)
        return o.apply(attended.transposed(axes: [0, 2, 1, 3]).reshaped([b, l, c.headCount * c.headDim]))
    }
}

/// Which keys each query sees: causal, and within `window` positions when given.
/// The `keys` cached positions end at the last query's position.
func attentionMask(queryOffset: Int, queries: Int, keys: Int, window: Int?) -> AttentionMask {
    let firstKey = queryOffset + queries - keys
    // Only build a mask when the window hides a key causality would show.
    guard let window, queryOffset + queries - 1 - firstKey >= window else { return queries > 1 ? .causal : .none }
    var keep = [Bool](repeating: false, count: queries * keys)
    for i in 0..<queries {
        let position = queryOffset + i
        for j in 0..<keys {
            let key = firstKey + j
            keep[i * keys + j] = key <= position && position - key < window
        }
    }
    return .array(Tensor(keep, shape: [1, 1, queries, keys]))
}

/// `softmax(cap·tanh(q·kᵀ·scale / cap) + mask) v`: soft-capped scores need the
/// unfused path (grouped-query heads share their key/value head).
func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float, softcap: Float?, mask: AttentionMask) -> Tensor {
    guard let softcap else {
        return Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: mask)
    }
    let (b, hq, lq, d) = (q.dim(0), q.dim(1), q.dim(2), q.dim(3))
    let (hk, lk) = (k.dim(1), k.dim(2))
    let grouped = q.reshaped([b, hk, hq / hk * lq, d])
    var scores = matmul(grouped * scale, k.transposed(axes: [0, 1, 3, 2])).reshaped([b, hk, hq / hk, lq, lk])
    scores = tanh(scores / softcap) * softcap
    switch mask {
    case .none: break
    case .causal:
        let keep = Tensor.ones([lq, lk], dtype: .bool).tril(k: lk - lq)
        scores = which(keep, scores, -Float.infinity)
    case .array(let m):
        scores = which(m.reshaped([lq, lk]), scores, -Float.infinity)
    }
    let weights = softmax(scores, axis: -1).reshaped([b, hk, hq / hk * lq, lk])
    return matmul(weights, v).reshaped([b, hq, lq, v.dim(3)])
}

/// The gated MLP: `down(act(gate(x)) * up(x))`.
struct MLP: Sendable {
    let gateUp: Projections
    let down: Weight

    init(_ w: WeightSource, layer i: Int, _ c: TransformerConfiguration) throws {
        let n = c.intermediateSize
        if c.fusedGateUp {
            gateUp = Projections(stacked: try w.weight(.gateUp(i), shape: [2 * n, c.hiddenSize]), sizes: [n, n])
        } else {
            gateUp = Projections([
                try w.weight(.gate(i), shape: [n, c.hiddenSize]), try w.weight(.up(i), shape: [n, c.hiddenSize]),
            ])
        }
        down = try w.weight(.down(i), shape: [c.hiddenSize, n])
    }

    func callAsFunction(_ x: Tensor, _ activation: TransformerConfiguration.Activation) -> Tensor {
        let projected = gateUp.apply(x)
        let g = projected[0]
        let activated: Tensor
        switch activation {
        case .silu: activated = g * sigmoid(g)
        case .geluTanh:
            let c = Float((2 / Double.pi).squareRoot())
            activated = 0.5 * g * (1 + tanh(c * (g + 0.044715 * g * g * g)))
        }
        return down.apply(activated * projected[1])
    }
}
