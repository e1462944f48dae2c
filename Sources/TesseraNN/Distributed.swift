// Data- and tensor-parallel helpers over Tessera's collectives (MLX's
// `mlx.nn.layers.distributed` and `average_gradients`): gradients averaged
// across ranks in a few large all-reduces, and linear layers whose weights
// are split across the ranks of a group.

import Tessera

/// The mean of `gradients` over the ranks of `group`: small tensors of one
/// dtype are flattened and packed into buckets of up to `bucketBytes`, so a
/// model's many small gradients cost a few large all-reduces.
///
/// ```swift
/// let (loss, grads) = step(model, xs, ys)       // this rank's part of the batch
/// optimizer.update(model: model, gradients: averageGradients(grads, group: group))
/// ```
public func averageGradients(_ gradients: ModuleParameters, group: Group? = nil, bucketBytes: Int = 32 << 20)
    -> ModuleParameters
{
    let group = group ?? .world
    guard group.size > 1 else { return gradients }
    let leaves = gradients.flattened()
    var averaged = [Tensor?](repeating: nil, count: leaves.count)
    let scale = 1 / Double(group.size)
    // Buckets of one dtype, in key order (the same on every rank).
    var bucket: [Int] = []
    var bucketSize = 0
    func flush() {
        defer { bucket = []; bucketSize = 0 }
        guard !bucket.isEmpty else { return }
        if bucket.count == 1 {
            let i = bucket[0]
            averaged[i] = mean(allSum(leaves[i].value, group: group), scale)
            return
        }
        let packed = concatenated(bucket.map { leaves[$0].value.reshaped([-1]) }, axis: 0)
        let summed = mean(allSum(packed, group: group), scale)
        var start = 0
        for i in bucket {
            let t = leaves[i].value
            averaged[i] = summed[start..<(start + t.size)].reshaped(t.shape)
            start += t.size
        }
    }
    for (i, leaf) in leaves.enumerated() {
        let bytes = leaf.value.nbytes
        if let first = bucket.first, leaves[first].value.dtype != leaf.value.dtype || bucketSize + bytes > bucketBytes {
            flush()
        }
        bucket.append(i)
        bucketSize += bytes
    }
    flush()
    return ModuleParameters(flattened: zip(leaves, averaged).map { ($0.key, $1 ?? $0.value) })
}

private func mean(_ sum: Tensor, _ scale: Double) -> Tensor {
    sum.dtype.isInexact ? sum * Tensor(scale).asType(sum.dtype) : sum
}

/// The input unchanged; in the backward pass its cotangent is summed over
/// `group` (the input of a layer whose output is sharded is used by every rank).
public func sumGradients(_ x: Tensor, group: Group) -> Tensor {
    guard group.size > 1 else { return x }
    let f = customFunction({ $0 }, vjp: { _, cotangents, _ in cotangents.map { allSum($0, group: group) } })
    return f([x])[0]
}

/// How `shardLinear` splits a layer.
public enum LinearSharding: Sendable {
    /// Each rank keeps a block of output features: replicated input, sharded output.
    case allToSharded
    /// Each rank keeps a block of input features: sharded input, output summed over ranks.
    case shardedToAll
}

/// A linear layer that keeps rank r's block of output features: the input is
/// the same on every rank, the output is this rank's slice of the features.
open class AllToShardedLinear: Linear {
    public let group: Group

    /// A layer over this rank's `weight` [out / size, in] and `bias` [out / size].
    public init(weight: Tensor, bias: Tensor?, group: Group) {
        self.group = group
        super.init(weight: weight, bias: bias)
    }

    open override func callAsFunction(_ x: Tensor) -> Tensor {
        super.callAsFunction(sumGradients(x, group: group))
    }
}

/// A linear layer that keeps rank r's block of input features: the input is
/// this rank's slice of the features, the output (summed over ranks) the same everywhere.
open class ShardedToAllLinear: Linear {
    public let group: Group

    /// A layer over this rank's `weight` [out, in / size] and the full `bias` [out].
    public init(weight: Tensor, bias: Tensor?, group: Group) {
        self.group = group
        super.init(weight: weight, bias: bias)
    }

    open override func callAsFunction(_ x: Tensor) -> Tensor {
        let y = allSum(matmul(x, weight.T), group: group)
        return bias.map { y + $0 } ?? y
    }
}

/// A quantized linear layer (MLX's affine format) keeping rank r's block of output features.
open class QuantizedAllToShardedLinear: QuantizedLinear {
    public let group: Group

    public init(weight: Tensor, scales: Tensor, biases: Tensor, bias: Tensor?, groupSize: Int, bits: Int, group: Group)
    {
        self.group = group
        super.init(weight: weight, scales: scales, biases: biases, bias: bias, groupSize: groupSize, bits: bits)
    }

    open override func callAsFunction(_ x: Tensor) -> Tensor {
        super.callAsFunction(sumGradients(x, group: group))
    }
}

/// A quantized linear layer keeping rank r's block of input features; the output is summed over ranks.
open class QuantizedShardedToAllLinear: QuantizedLinear {
    public let group: Group

    public init(weight: Tensor, scales: Tensor, biases: Tensor, bias: Tensor?, groupSize: Int, bits: Int, group: Group)
    {
        self.group = group
        super.init(weight: weight, scales: scales, biases: biases, bias: bias, groupSize: groupSize, bits: bits)
    }

    open override func callAsFunction(_ x: Tensor) -> Tensor {
        let y = allSum(
            quantizedMatmul(
                x, weight, scales: scales, biases: biases, transpose: true, groupSize: groupSize, bits: bits),
            group: group)
        return bias.map { y + $0 } ?? y
    }
}

/// This rank's part of `linear`, split over `group` as `sharding` says; the
/// sharded dimension must divide by the group's size (for a quantized layer,
/// a block of input features must be whole quantization groups).
///
/// ```swift
/// let up = shardLinear(mlp.up, .allToSharded, group: group)
/// let down = shardLinear(mlp.down, .shardedToAll, group: group)
/// let y = down(gelu(up(x)))      // equals the unsharded mlp on every rank
/// ```
public func shardLinear(_ linear: Linear, _ sharding: LinearSharding, group: Group) throws -> Linear {
    let w = linear.weight
    let (n, r) = (group.size, group.rank)
    if let q = linear as? QuantizedLinear { return try shardQuantized(q, sharding, group: group) }
    switch sharding {
    case .allToSharded:
        let out = w.dim(0)
        guard out % n == 0 else {
            throw DistributedError.badConfiguration("\(out) output features do not split over \(n) ranks")
        }
        let block = out / n
        return AllToShardedLinear(
            weight: w[(r * block)..<((r + 1) * block)], bias: linear.bias.map { $0[(r * block)..<((r + 1) * block)] },
            group: group)
    case .shardedToAll:
        let inFeatures = w.dim(1)
        guard inFeatures % n == 0 else {
            throw DistributedError.badConfiguration("\(inFeatures) input features do not split over \(n) ranks")
        }
        let block = inFeatures / n
        return ShardedToAllLinear(
            weight: w[0..., (r * block)..<((r + 1) * block)], bias: linear.bias, group: group)
    }
}

private func shardQuantized(_ q: QuantizedLinear, _ sharding: LinearSharding, group: Group) throws -> Linear {
    let (n, r) = (group.size, group.rank)
    switch sharding {
    case .allToSharded:
        let out = q.weight.dim(0)
        guard out % n == 0 else {
            throw DistributedError.badConfiguration("\(out) output features do not split over \(n) ranks")
        }
        let rows = (r * out / n)..<((r + 1) * out / n)
        return QuantizedAllToShardedLinear(
            weight: q.weight[rows], scales: q.scales[rows], biases: q.biases[rows], bias: q.bias.map { $0[rows] },
            groupSize: q.groupSize, bits: q.bits, group: group)
    case .shardedToAll:
        let groups = q.scales.dim(1), words = q.weight.dim(1)
        guard groups % n == 0, words % n == 0 else {
            throw DistributedError.badConfiguration(
                "\(groups) quantization groups of input features do not split over \(n) ranks")
        }
        let g = (r * groups / n)..<((r + 1) * groups / n), w = (r * words / n)..<((r + 1) * words / n)
        return QuantizedShardedToAllLinear(
            weight: q.weight[0..., w], scales: q.scales[0..., g], biases: q.biases[0..., g], bias: q.bias,
            groupSize: q.groupSize, bits: q.bits, group: group)
    }
}

/// Replaces `linear`'s parameters with this rank's part, split over `group`
/// as `sharding` says (MLX's `shard_inplace`): the layer keeps its type and
/// does no communication, so the caller sums a sharded-to-all layer's output
/// over the ranks. The bias of a sharded-to-all layer stays on rank 0 only
/// (zeros elsewhere), so that sum adds it once. Nothing changes in a group of one.
///
/// ```swift
/// try shardInPlace(mlp.up, .allToSharded, group: group)
/// try shardInPlace(mlp.down, .shardedToAll, group: group)
/// let y = allSum(mlp.down(gelu(mlp.up(x))), group: group)   // the unsharded mlp's output
/// ```
public func shardInPlace(_ linear: Linear, _ sharding: LinearSharding, group: Group) throws {
    guard group.size > 1 else { return }
    let part = try shardLinear(linear, sharding, group: group)
    linear.weight = part.weight.contiguous()
    if let q = linear as? QuantizedLinear, let p = part as? QuantizedLinear {
        q.scales = p.scales.contiguous()
        q.biases = p.biases.contiguous()
    }
    switch sharding {
    case .allToSharded: linear.bias = part.bias?.contiguous()
    case .shardedToAll: if group.rank != 0 { linear.bias = linear.bias.map { Tensor.zerosLike($0) } }
    }
}
