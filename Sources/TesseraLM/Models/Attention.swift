// Self-attention of one layer, as the Hugging Face module `self_attn`:
// grouped-query heads, rope, optional q/k/v biases (in the projections),
// q/k norms, soft-capping, sliding window. Separate q_proj/k_proj/v_proj run
// as one stacked product (ProjectionStack); phi3's fused qkv_proj is split.

import Tessera
import TesseraNN

final class Attention: Module {
    @ModuleInfo(key: "q_proj") var qProj: Linear? = nil
    @ModuleInfo(key: "k_proj") var kProj: Linear? = nil
    @ModuleInfo(key: "v_proj") var vProj: Linear? = nil
    /// Phi-3: q, k and v rows in one projection.
    @ModuleInfo(key: "qkv_proj") var qkvProj: Linear? = nil
    @ModuleInfo(key: "o_proj") var oProj: Linear
    @ModuleInfo(key: "q_norm") var qNorm: RMSNorm? = nil
    @ModuleInfo(key: "k_norm") var kNorm: RMSNorm? = nil

    let rope: RopeParameters
    let slidingWindow: Int?
    let queryKeyNorms: Bool
    /// This rank's query and key/value heads (all of them without tensor parallelism).
    let localHeads: Int, localKVHeads: Int
    let parallel: TensorParallel?
    let qkv = ProjectionStack(), output = ProjectionStack()

    /// Layer `i`'s attention, its tensors read from `w` under `prefix` (`model.layers.i.self_attn`).
    init(_ w: WeightSource, prefix: String, layer i: Int, _ c: TransformerConfiguration) throws {
        let sliding = c.slidingLayers[i]
        rope = sliding ? c.localRope ?? c.rope : c.rope
        slidingWindow = sliding ? c.slidingWindow : nil
        queryKeyNorms = c.queryKeyNorms
        parallel = w.parallel
        let qOut = c.headCount * c.headDim, kvOut = c.kvHeadCount * c.headDim
        let hidden = c.hiddenSize
        guard let parallel = w.parallel else {
            (localHeads, localKVHeads) = (c.headCount, c.kvHeadCount)
            super.init()
            try loadWhole(w, prefix: prefix, c, qOut: qOut, kvOut: kvOut)
            return
        }
        // Each rank takes a block of key/value heads and the query heads that share them.
        let kv = try parallel.part(c.kvHeadCount, what: "key/value heads")
        let perGroup = c.headCount / c.kvHeadCount, d = c.headDim
        let qRows = (kv.lowerBound * perGroup * d)..<(kv.upperBound * perGroup * d)
        let kvRows = (kv.lowerBound * d)..<(kv.upperBound * d)
        (localHeads, localKVHeads) = (kv.count * perGroup, kv.count)
        super.init()
        if c.fusedQKV {
            let rows = [
                qRows, (qOut + kvRows.lowerBound)..<(qOut + kvRows.upperBound),
                (qOut + kvOut + kvRows.lowerBound)..<(qOut + kvOut + kvRows.upperBound)
            ]
            qkvProj = try w.shardedLinear(prefix + ".qkv_proj", inputs: hidden, outputs: qOut + 2 * kvOut, rows: rows)
        } else {
            qProj = try w.shardedLinear(
                prefix + ".q_proj", inputs: hidden, outputs: qOut, bias: c.attentionBias, rows: [qRows])
            kProj = try w.shardedLinear(
                prefix + ".k_proj", inputs: hidden, outputs: kvOut, bias: c.attentionBias, rows: [kvRows])
            vProj = try w.shardedLinear(
                prefix + ".v_proj", inputs: hidden, outputs: kvOut, bias: c.attentionBias, rows: [kvRows])
        }
        oProj = try w.shardedLinear(
            prefix + ".o_proj", inputs: qOut, outputs: hidden, columns: qRows, rank: parallel.group.rank)
        try loadNorms(w, prefix: prefix, c)
    }

    private func loadWhole(_ w: WeightSource, prefix: String, _ c: TransformerConfiguration, qOut: Int, kvOut: Int)
        throws
    {
        let hidden = c.hiddenSize
        if c.fusedQKV {
            qkvProj = try w.linear(prefix + ".qkv_proj", inputs: hidden, outputs: qOut + 2 * kvOut)
        } else {
            qProj = try w.linear(prefix + ".q_proj", inputs: hidden, outputs: qOut, bias: c.attentionBias)
            kProj = try w.linear(prefix + ".k_proj", inputs: hidden, outputs: kvOut, bias: c.attentionBias)
            vProj = try w.linear(prefix + ".v_proj", inputs: hidden, outputs: kvOut, bias: c.attentionBias)
        }
        oProj = try w.linear(prefix + ".o_proj", inputs: qOut, outputs: hidden)
        try loadNorms(w, prefix: prefix, c)
    }

    private func loadNorms(_ w: WeightSource, prefix: String, _ c: TransformerConfiguration) throws {
        if c.queryKeyNorms {
            qNorm = try w.norm(prefix + ".q_norm", size: c.headDim, c)
            kNorm = try w.norm(prefix + ".k_norm", size: c.headDim, c)
        }
        qkv.share(projections)
        output.share([oProj])
    }

    /// q, k and v projections, or the fused one.
    var projections: [Linear] {
        if let qProj, let kProj, let vProj { return [qProj, kProj, vProj] }
        return qkvProj.map { [$0] } ?? []
    }

    /// Attends over `cache` (filled in place with the new keys and values), or
    /// over `x` alone, causally, without one (training).
    func callAsFunction(_ x: Tensor, cache: KVCache?, _ c: TransformerConfiguration) -> Tensor {
        let (b, l) = (x.dim(0), x.dim(1))
        let kvOut = localKVHeads * c.headDim
        let projected = qkv({ projections }, sizes: [localHeads * c.headDim, kvOut, kvOut], x)
        let (qNorm, kNorm) = queryKeyNorms ? (self.qNorm, self.kNorm) : (nil, nil)
        func heads(_ t: Tensor, _ n: Int, _ norm: RMSNorm?) -> Tensor {
            let split = t.reshaped([b, l, n, c.headDim])
            let normed = norm.map { $0(split) } ?? split
            return normed.transposed(axes: [0, 2, 1, 3])
        }
        let rotated = c.ropeDimensions ?? c.headDim
        let offset = cache?.offset ?? 0
        let queries = rope.apply(
            heads(projected[0], localHeads, qNorm), dimensions: rotated, traditional: c.ropeTraditional, offset: offset)
        let newKeys = rope.apply(
            heads(projected[1], localKVHeads, kNorm), dimensions: rotated, traditional: c.ropeTraditional,
            offset: offset)
        let newValues = heads(projected[2], localKVHeads, nil)
        let (keys, values) = cache?.update(keys: newKeys, values: newValues) ?? (newKeys, newValues)
        let mask = attentionMask(queryOffset: offset, queries: l, keys: keys.dim(2), window: slidingWindow)
        let attended = attention(
            queries, keys, values, scale: c.attentionScale, softcap: c.attentionSoftcap, mask: mask)
        let out = output({ [oProj] }, attended.transposed(axes: [0, 2, 1, 3]).reshaped([b, l, localHeads * c.headDim]))[
            0]
        return parallel?.reduce(out) ?? out
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
