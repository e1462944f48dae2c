// Tensor-parallel inference (Megatron-style, as mlx-lm's `shard`): every rank
// of a group holds a block of each layer's attention heads and MLP columns.
// q/k/v and gate/up keep their rows of the block (all-to-sharded), o_proj and
// down_proj the matching input columns (sharded-to-all), and the two partial
// outputs of each layer are summed over the ranks (one allSum after the
// attention, one after the MLP). Embeddings, norms and the LM head stay whole
// on every rank, so every rank computes the same logits.
//
// Blocks need not be equal: key/value heads are dealt out as evenly as the
// count allows (SmolLM2's 3 key/value heads over 2 ranks: 2 and 1), each
// query head going with its key/value head, and MLP columns in whole
// quantization groups. The sharded layers are plain `Linear` /
// `QuantizedLinear` over their blocks, so the stacked q/k/v and gate/up
// products (ProjectionStack) and the quantized kernels run as in one process.

import Tessera
import TesseraNN

/// The split of a model over the ranks of `group` for tensor-parallel inference.
///
/// ```swift
/// let group = Group.world                         // under `tessera launch -n 2`
/// let model = try ModelLoader.load(path, tensorParallel: TensorParallel(group: group)).model
/// ```
public struct TensorParallel: Sendable {
    public let group: Group

    public init(group: Group) { self.group = group }

    /// This rank's block of `count` items dealt out in blocks of `unit` items,
    /// as evenly as possible (the first ranks take one block more).
    func part(_ count: Int, unit: Int = 1, what: String) throws -> Range<Int> {
        let (n, r) = (group.size, group.rank)
        guard unit > 0, count % unit == 0, count / unit >= n else {
            throw ModelError.invalidConfiguration(
                "\(count) \(what) do not split over \(n) ranks" + (unit > 1 ? " in blocks of \(unit)" : ""))
        }
        let blocks = count / unit
        let (base, extra) = (blocks / n, blocks % n)
        let start = r * base + min(r, extra)
        let length = base + (r < extra ? 1 : 0)
        return (start * unit)..<((start + length) * unit)
    }

    /// The sum over the ranks of a layer's partial output.
    func reduce(_ x: Tensor) -> Tensor { allSum(x, group: group) }
}

extension WeightSource {
    /// `name` as a layer of this rank's `rows` (several blocks are stacked
    /// in order: a fused projection's parts) and `columns` of its weight
    /// `[outputs, inputs]`, copied out of the file's tensor. The bias follows
    /// the rows; with `columns`, it is added once (rank 0's block keeps it).
    func shardedLinear(
        _ name: String, inputs: Int, outputs: Int, bias: Bool = false, rows: [Range<Int>]? = nil,
        columns: Range<Int>? = nil, stored: StoredWeight? = nil, rank: Int = 0
    ) throws -> Linear {
        var w = try stored ?? weight(name, shape: [outputs, inputs])
        var b = bias ? try vector(name, size: outputs, suffix: ".bias") : nil
        if let rows {
            w = w.mapRows { t in rows.count == 1 ? t[rows[0]] : concatenated(rows.map { t[$0] }, axis: 0) }
            b = b.map { b in rows.count == 1 ? b[rows[0]] : concatenated(rows.map { b[$0] }, axis: 0) }
        }
        if let columns {
            switch w {
            case .dense(let t): w = .dense(t[0..., columns])
            case .quantized(let q):
                let g = q.groupSize
                guard columns.lowerBound % g == 0, columns.count % g == 0 else {
                    throw ModelError.invalidConfiguration(
                        "\(describe(name)): input features \(columns) are not whole quantization groups of \(g)")
                }
                let words = (columns.lowerBound * q.bits / 32)..<(columns.upperBound * q.bits / 32)
                let groups = (columns.lowerBound / g)..<(columns.upperBound / g)
                w = .quantized(
                    QuantizedWeight(
                        weight: q.weight[0..., words], scales: q.scales[0..., groups], biases: q.biases[0..., groups],
                        groupSize: g, bits: q.bits))
            }
            if rank != 0 { b = nil }
        }
        // Own copies of the blocks: the file's whole tensors are not kept.
        w = w.mapRows { $0.contiguous() }
        b = b.map { $0.contiguous() }
        switch w {
        case .dense(let t):
            try checkedEval([t] + (b.map { [$0] } ?? []))
            return Linear(weight: t, bias: b)
        case .quantized(let q):
            try checkedEval([q.weight, q.scales, q.biases] + (b.map { [$0] } ?? []))
            return QuantizedLinear(
                weight: q.weight, scales: q.scales, biases: q.biases, bias: b, groupSize: q.groupSize, bits: q.bits)
        }
    }
}
