// One forward pass over the rows of several sequences (BatchedEngine's step):
// the new tokens of every sequence in the step (one for a decoding sequence,
// a chunk of its prompt for a prefilling one) are stacked as the rows of one
// [1, R, hidden] activation, so each product (q/k/v, o, gate/up, down, the
// head) reads its weights once for all of them; rope, the cache update and
// attention run per sequence against its own cache, each row alone against
// the keys up to its position. In a pass of at most `batchedMaxRows` rows
// every row is computed exactly as it would be alone: the quantized products
// compute rows independently (qmv, up to 16 rows), norms and elementwise ops
// are per row, and a row's attention sees the same keys whatever else is in
// the step, so a sequence's tokens do not depend on the batch. A longer
// prompt chunk is a pass of its own (BatchedEngine.step): its products take
// the prefill GEMM (integer dot products on x rounded per block of 32, as
// `TokenGenerator`'s prefill), so its keys and values are those of its chunk,
// alone or beside other sequences, though not bit for bit those the row-wise
// products would give.

import Tessera
import TesseraNN

/// A sequence's part of a step: its cache (one per layer) and its new tokens.
struct StepSegment {
    var cache: [KVCache]
    var tokens: [Int]
    /// Whether the step returns logits for the segment's last row.
    var wantsLogits: Bool
}

extension TransformerModel {
    /// Rows of several sequences per forward pass: the most the quantized
    /// products compute row by row (QuantizedKernels.qmvMaxRows); a step with
    /// more rows runs as several passes, a longer prompt chunk as a pass of its own.
    static let batchedMaxRows = 16

    /// Fresh growing full-precision caches of `type`, one per layer (windows
    /// are applied when attending, so the same cache serves every layer kind).
    func makeStepCache(_ type: KVCacheType) -> [KVCache] {
        (0..<configuration.layerCount).map { _ in KVCache(type: type) }
    }

    /// Logits `[n, vocab]` for the last rows of the segments that want them
    /// (in order), after appending every segment's rows to its caches, and
    /// what to evaluate for the step (the logits, the caches' buffers, and
    /// the last hidden state when no segment wants logits, so that the fused
    /// attention nodes writing the caches run). Batch invariance needs the
    /// segments' rows together to be at most `batchedMaxRows`, or one segment
    /// alone.
    func stepOutputs(_ segments: [StepSegment]) -> (logits: Tensor?, evaluate: [Tensor]) {
        TensorParallelServing.willStep(self, segments)  // rank 0 of a tensor-parallel server: the others run it too
        let ids = segments.flatMap(\.tokens)
        guard !ids.isEmpty else { return (nil, []) }
        var h = model.embedTokens.rows(Tensor(ids.map { Int32($0) }, shape: [1, ids.count]))
        if let scale = model.embeddingScale { h = h * scale }
        let counts = segments.map(\.tokens.count)
        for (i, layer) in model.layers.enumerated() {
            h = layer.step(h, caches: segments.map { $0.cache[i] }, counts: counts)
        }
        let buffers = segments.flatMap { $0.cache.flatMap(\.storage) }
        var lastRows: [Int32] = []
        var at = 0
        for segment in segments {
            at += segment.tokens.count
            if segment.wantsLogits { lastRows.append(Int32(at - 1)) }
        }
        guard !lastRows.isEmpty else { return (nil, [h] + buffers) }
        let picked = h.take(Tensor(lastRows, shape: [lastRows.count]), axis: 1)
        let normed = model.norm(picked)
        var logits = (lmHead.map { $0(normed) } ?? model.embedTokens.asLinear(normed))
            .reshaped([lastRows.count, configuration.vocabularySize])
        if let cap = configuration.finalSoftcap { logits = tanh(logits / cap) * cap }
        return (logits, [logits] + buffers)
    }
}

extension DecoderLayer {
    /// The layer on stacked rows `[1, R, hidden]`, `counts[s]` rows for the sequence of `caches[s]`.
    func step(_ h: Tensor, caches: [KVCache], counts: [Int]) -> Tensor {
        let attended = selfAttention.step(inputLayerNorm(h), caches: caches, counts: counts, configuration)
        guard sandwich, let preFeedForward = preFeedForwardLayerNorm, let postFeedForward = postFeedForwardLayerNorm
        else {
            let h = h + attended
            return h + mlp(postAttentionLayerNorm(h))
        }
        let mid = h + postAttentionLayerNorm(attended)
        return mid + postFeedForward(mlp(preFeedForward(mid)))
    }
}

extension Attention {
    /// Attention for stacked rows of several sequences: one q/k/v and one
    /// output product for all rows; rope, the cache update and each row's
    /// attention over its sequence's keys up to its position (within the
    /// sliding window, when the layer has one) in one fused node
    /// (BatchedAttention.swift), or per sequence where that does not apply.
    func step(_ x: Tensor, caches: [KVCache], counts: [Int], _ c: TransformerConfiguration) -> Tensor {
        let rows = x.dim(1)
        // This rank's heads (all of them unless the model is split over ranks: TensorParallelServing).
        let kvOut = localKVHeads * c.headDim
        let projected = qkv({ projections }, sizes: [localHeads * c.headDim, kvOut, kvOut], x)
        let (qNorm, kNorm) = queryKeyNorms ? (self.qNorm, self.kNorm) : (nil, nil)
        func heads(_ t: Tensor, _ n: Int, _ norm: RMSNorm?) -> Tensor {
            let split = t.reshaped([1, rows, n, c.headDim])
            return norm.map { $0(split) } ?? split
        }
        let (q, k, v) = (
            heads(projected[0], localHeads, qNorm), heads(projected[1], localKVHeads, kNorm),
            heads(projected[2], localKVHeads, nil)
        )
        let rotated = c.ropeDimensions ?? c.headDim
        let fused =
            c.attentionSoftcap == nil
            ? batchedAttention(
                q: q, k: k, v: v, caches: caches, counts: counts, rope: rope, rotated: rotated,
                traditional: c.ropeTraditional, scale: c.attentionScale, window: slidingWindow) : nil
        let attended =
            fused
            ?? perSequenceAttention(
                q: q, k: k, v: v, caches: caches, counts: counts, rope: rope, rotated: rotated,
                traditional: c.ropeTraditional, scale: c.attentionScale, softcap: c.attentionSoftcap,
                window: slidingWindow)
        let out = output({ [oProj] }, attended)[0]
        return parallel?.reduce(out) ?? out
    }
}

/// The per-sequence graph of a batched step's attention (what
/// `batchedAttention` fuses, and its reference): `q` `[1, R, heads, d]`,
/// `k`/`v` `[1, R, kvHeads, d]`; per sequence, rope at its offset and the
/// cache update; per row, attention over its sequence's keys up to its
/// position. Returns `[1, R, heads * d]`.
func perSequenceAttention(
    q: Tensor, k: Tensor, v: Tensor, caches: [KVCache], counts: [Int], rope: RopeParameters, rotated: Int,
    traditional: Bool, scale: Float, softcap: Float?, window: Int?
) -> Tensor {
    let rows = q.dim(1), heads = q.dim(2)
    let (q, k, v) = (
        q.transposed(axes: [0, 2, 1, 3]), k.transposed(axes: [0, 2, 1, 3]), v.transposed(axes: [0, 2, 1, 3])
    )
    var outputs: [Tensor] = []
    outputs.reserveCapacity(rows)
    var start = 0
    for (cache, n) in zip(caches, counts) {
        let range = start..<(start + n)
        start += n
        let offset = cache.offset
        let queries = rope.apply(q[0..., 0..., range], dimensions: rotated, traditional: traditional, offset: offset)
        let newKeys = rope.apply(k[0..., 0..., range], dimensions: rotated, traditional: traditional, offset: offset)
        let (keys, values) = cache.update(keys: newKeys, values: v[0..., 0..., range])
        for i in 0..<n {
            let end = offset + i + 1
            let first = window.map { Swift.max(0, end - $0) } ?? 0
            outputs.append(
                attention(
                    n == 1 ? queries : queries[0..., 0..., i..<(i + 1)], keys[0..., 0..., first..<end],
                    values[0..., 0..., first..<end], scale: scale, softcap: softcap, mask: .none))
        }
    }
    let attended = outputs.count == 1 ? outputs[0] : concatenated(outputs, axis: 2)
    return attended.transposed(axes: [0, 2, 1, 3]).reshaped([1, rows, heads * q.dim(3)])
}
