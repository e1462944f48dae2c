// vmap: traces the function on one slice of the batch, then replays the
// traced graph with batched inputs, each primitive through its batching rule.
// Rules receive inputs with the batch axis moved to the front (or unbatched)
// and return the output batched on axis 0.

/// `f` mapped over axis `inAxes[i]` of argument i (nil: not mapped), with the
/// mapped axis of output j placed at `outAxes[j]`.
///
/// ```swift
/// let rowSums = vmap({ [$0[0].sum()] }, inAxes: [0])([x])   // one sum per row
/// ```
public func vmap(
    _ f: @escaping ([Tensor]) -> [Tensor], inAxes: [Int?]? = nil, outAxes: [Int]? = nil
) -> ([Tensor]) -> [Tensor] {
    { args in
        let axes = inAxes ?? [Int?](repeating: 0, count: args.count)
        opPrecondition(axes.count == args.count, "vmap", "\(axes.count) inAxes for \(args.count) arguments")
        var batch: Int?
        var normalized: [Int?] = []
        for (arg, axis) in zip(args, axes) {
            guard let axis else {
                normalized.append(nil)
                continue
            }
            let a = normalizeAxis(axis, arg.ndim, "vmap")
            opPrecondition(
                batch == nil || batch == arg.shape[a], "vmap",
                "mapped axes have different sizes: \(batch ?? 0) and \(arg.shape[a])")
            batch = arg.shape[a]
            normalized.append(a)
        }
        guard let batch else { fatalError("[vmap] at least one input must be mapped") }

        // Trace on the first slice of each mapped argument.
        let slices = zip(args, normalized).map { arg, axis -> Tensor in
            guard let axis else { return arg }
            var index = [TensorIndex](repeating: .slice(), count: arg.ndim)
            index[axis] = .index(0)
            return arg[index]
        }
        let traced = tracedPrimals(slices)
        let outputs = Tracing.with(true) { f(traced) }
        let outAxes = outAxes ?? [Int](repeating: 0, count: outputs.count)
        opPrecondition(outAxes.count == outputs.count, "vmap", "\(outAxes.count) outAxes for \(outputs.count) outputs")

        // Replay with batched values; unmapped arguments stay as they are.
        var batched: [ObjectIdentifier: Tensor] = [:]
        var primalIDs = Set<ObjectIdentifier>()
        for (i, t) in traced.enumerated() {
            primalIDs.insert(ObjectIdentifier(t.node))
            if let axis = normalized[i] {
                batched[ObjectIdentifier(t.node)] = args[i].movedAxis(source: axis, destination: 0)
            }
        }
        for node in tracedTape(outputs: outputs.map(\.node), primals: primalIDs) {
            let inputs = node.inputs.map(Tensor.init(node:))
            let values = inputs.map { batched[ObjectIdentifier($0.node)] }
            if values.allSatisfy({ $0 == nil }) { continue }
            let ins = zip(inputs, values).map { BatchedInput(value: $1 ?? $0, isBatched: $1 != nil) }
            batched[ObjectIdentifier(node)] = vmapRule(node, ins, batch: batch)
        }
        return zip(outputs, outAxes).map { output, outAxis in
            let value =
                batched[ObjectIdentifier(output.node)]
                ?? output.expandedDimensions(axis: 0).broadcast(to: [batch] + output.shape)
            return value.movedAxis(source: 0, destination: normalizeAxis(outAxis, value.ndim, "vmap"))
        }
    }
}

/// `f` mapped over axis `inAxis` of its argument, the mapped axis placed at `outAxis`.
public func vmap(_ f: @escaping (Tensor) -> Tensor, inAxes: Int = 0, outAxes: Int = 0) -> (Tensor) -> Tensor {
    let g = vmap({ [f($0[0])] }, inAxes: [inAxes], outAxes: [outAxes])
    return { g([$0])[0] }
}

/// An input of a node during a vmap replay: batched on axis 0, or as traced.
struct BatchedInput {
    let value: Tensor
    let isBatched: Bool
}

/// The batching rule of every primitive; the result is batched on axis 0.
func vmapRule(_ node: Node, _ inputs: [BatchedInput], batch: Int) -> Tensor {
    /// Input i batched on axis 0 (broadcast along it when it was not mapped).
    func b(_ i: Int) -> Tensor {
        let x = inputs[i]
        return x.isBatched ? x.value : x.value.expandedDimensions(axis: 0).broadcast(to: [batch] + x.value.shape)
    }
    let x = inputs[0].value
    let shape = [batch] + node.shape
    switch node.primitive {
    case .constant, .arange:
        fatalError("[vmap] \(node.primitive.name) has no inputs to map")
    case .unary(let op):
        return unary(op, x)
    case .binary(let op):
        // Unmapped inputs broadcast against the leading batch axis by themselves.
        return binary(op, inputs[0].value, inputs[1].value)
    case .select:
        return which(inputs[0].value, inputs[1].value, inputs[2].value)
    case .asType:
        return x.asType(node.dtype)
    case .reduce(let op, let axes):
        return Tensor(
            shape: shape, dtype: node.dtype, primitive: .reduce(op, axes: axes.map { $0 + 1 }), inputs: [b(0)])
    case .argReduce(let op, let axis):
        return Tensor(shape: shape, dtype: node.dtype, primitive: .argReduce(op, axis: axis + 1), inputs: [b(0)])
    case .reshape:
        return b(0).reshaped(shape)
    case .transpose(let axes):
        return b(0).transposed(axes: [0] + axes.map { $0 + 1 })
    case .broadcast:
        let inShape = inputs[0].value.shape.dropFirst()
        let lead = node.shape.count - inShape.count
        return b(0).reshaped([batch] + [Int](repeating: 1, count: lead) + inShape).broadcast(to: shape)
    case .slice(let start, let stride):
        return Tensor(
            shape: shape, dtype: node.dtype, primitive: .slice(start: [0] + start, stride: [1] + stride),
            inputs: [b(0)])
    case .copy:
        return b(0).contiguous()
    case .identity:
        return b(0)
    case .stopGradient:
        return stopGradient(b(0))
    case .concatenate(let axis):
        return concatenated(inputs.indices.map(b), axis: axis + 1)
    case .matmul:
        return matmul(inputs[0].value, inputs[1].value)
    case .sliceUpdate(let start, let stride):
        return sliceUpdate(b(0), b(1), start: [0] + start, stride: [1] + stride)
    case .gather(let axes, let sliceSizes):
        let indices = inputs.indices.dropFirst().map(b)
        if !inputs[0].isBatched {
            return gather(x, indices, axes: axes, sliceSizes: sliceSizes, "gather")
        }
        // Index the batch axis too, with each batch entry's own position.
        let indexShape = indices.first?.shape ?? [batch]
        let position = Tensor.arange(0, batch).reshaped([batch] + [Int](repeating: 1, count: indexShape.count - 1))
            .broadcast(to: indexShape)
        return gather(
            b(0), [position] + indices, axes: [0] + axes.map { $0 + 1 }, sliceSizes: [1] + sliceSizes, "gather"
        ).reshaped(shape)
    case .scatter(let op, let axes):
        let indices = inputs.indices.dropFirst(2).map(b)
        let indexShape = indices.first?.shape ?? [batch]
        let position = Tensor.arange(0, batch).reshaped([batch] + [Int](repeating: 1, count: indexShape.count - 1))
            .broadcast(to: indexShape)
        let updates = b(1)
        let window = Array(updates.shape.suffix(node.shape.count))
        return scatter(
            b(0), updates.reshaped(indexShape + [1] + window), [position] + indices, axes: [0] + axes.map { $0 + 1 },
            op,
            "scatter")
    case .sort(let op, let axis):
        return Tensor(shape: shape, dtype: node.dtype, primitive: .sort(op, axis: axis + 1), inputs: [b(0)])
    case .scan(let op, let axis, let reverse, let inclusive):
        return Tensor(
            shape: shape, dtype: node.dtype,
            primitive: .scan(op, axis: axis + 1, reverse: reverse, inclusive: inclusive),
            inputs: [b(0)])
    case .softmax, .logSoftmax, .rmsNorm, .layerNorm, .rope, .scaledDotProductAttention:
        // Map the fallback graph the fused op stands for.
        let primitive = node.primitive
        return vmap({ [fastFallback(primitive, inputs: $0)!] }, inAxes: inputs.map { $0.isBatched ? 0 : nil })(
            inputs.map(\.value))[0]
    case .quantizedMatmul:
        // x and batched weights share batch axes: one more leading one. A
        // shared 2-D weight stays shared; mapped, it gets size-1 batch axes
        // (the backends broadcast them).
        let mapped = (0..<4).map { i -> Tensor in
            let v = inputs[i].value
            guard i > 0, v.ndim - (inputs[i].isBatched ? 1 : 0) == 2 else { return b(i) }
            guard inputs[i].isBatched else { return v }
            return v.reshaped(
                [v.dim(0)] + [Int](repeating: 1, count: node.shape.count - 2) + Array(v.shape.dropFirst()))
        }
        return Tensor(shape: shape, dtype: node.dtype, primitive: node.primitive, inputs: mapped)
    case .affineQuantizeParameters, .affineQuantizePack, .affineDequantize, .randomBits, .inverse, .solve,
        .cholesky, .qr, .svd, .eigh:
        // Row-wise (or per-matrix, per-key) primitives: the batch is one more leading axis.
        return Tensor(shape: shape, dtype: node.dtype, primitive: node.primitive, inputs: inputs.indices.map(b))
    case .gatherQuantizedMatmul:
        fatalError("[vmap] gatherQuantizedMatmul has no batching rule yet")
    case .custom(let rules, let index):
        let primals = Array(inputs[0..<rules.primalCount])
        return rules.vmap(primals.map(\.value), primals.map { $0.isBatched ? 0 : nil })[index]
    case .collective(let c):
        return collectiveBatched(c, b(0), shape: shape)
    case .host(let kernel):
        fatalError("[vmap] the host kernel \(kernel.name) has no batching rule")
    case .compiled(let kernel):
        return vmap(kernel.replay, inAxes: inputs.map { $0.isBatched ? 0 : nil })(inputs.map(\.value))[0]
    }
}
