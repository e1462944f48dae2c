// The jvp rule of every primitive: given the node's inputs, their tangents
// (nil: zero) and the output, the tangent of the output (nil: zero).

func jvpRule(_ node: Node, inputs: [Tensor], tangents: [Tensor?], output: Tensor) -> Tensor? {
    if !output.dtype.isFloatingPoint {
        opPrecondition(output.dtype != .complex64, "jvp", "\(node.primitive.name) is not differentiable for complex64")
        return nil
    }
    /// Tangent i, zeros when absent.
    func t(_ i: Int) -> Tensor { tangents[i] ?? Tensor.zeros(inputs[i].shape, dtype: inputs[i].dtype) }
    /// The same primitive applied to the tangents: the rule of every linear primitive.
    func linear() -> Tensor {
        Tensor(shape: node.shape, dtype: node.dtype, primitive: node.primitive, inputs: inputs.indices.map(t))
    }
    func sum(_ terms: Tensor?...) -> Tensor? {
        var total: Tensor?
        for term in terms.compactMap({ $0 }) { total = total.map { $0 + term } ?? term }
        return total
    }
    switch node.primitive {
    case .constant, .arange, .argReduce, .stopGradient:
        return nil
    case .unary(let op):
        return tangents[0].flatMap { unaryDerivative(op, x: inputs[0], out: output).times($0) }
    case .binary(let op):
        let (dx, dy) = binaryPartials(op, x: inputs[0], y: inputs[1], out: output)
        return sum(tangents[0].flatMap { dx.times($0) }, tangents[1].flatMap { dy.times($0) })
    case .select:
        return which(inputs[0], t(1), t(2))
    case .asType:
        return inputs[0].dtype.isFloatingPoint ? tangents[0]?.asType(node.dtype) : nil
    case .reduce(let op, let axes):
        guard let tx = tangents[0] else { return nil }
        let x = inputs[0]
        switch op {
        case .sum:
            return linear()
        case .prod:
            return (tx * productOfOthers(x, axes: axes)).sum(axes: axes, keepDims: true)
        case .max, .min:
            let mask = (x .== output).asType(tx.dtype)
            return (tx * mask).sum(axes: axes, keepDims: true) / mask.sum(axes: axes, keepDims: true)
        case .all, .any:
            return nil
        }
    case .reshape, .transpose, .broadcast, .slice, .copy, .identity, .concatenate, .sliceUpdate:
        return linear()
    case .matmul:
        return sum(
            tangents[0].map { rawMatmul($0, inputs[1]).asType(node.dtype) },
            tangents[1].map { rawMatmul(inputs[0], $0).asType(node.dtype) })
    case .gather:
        // Linear in x; the indices pass through unchanged.
        guard tangents[0] != nil else { return nil }
        return Tensor(
            shape: node.shape, dtype: node.dtype, primitive: node.primitive, inputs: [t(0)] + inputs.dropFirst())
    case .scatter(let op, _):
        guard tangents[0] != nil || tangents[1] != nil else { return nil }
        switch op {
        case .set, .add:
            return Tensor(
                shape: node.shape, dtype: node.dtype, primitive: node.primitive,
                inputs: [t(0), t(1)] + inputs.dropFirst(2))
        case .prod, .max, .min:
            opPrecondition(false, "jvp", "scatter_\(op.rawValue) has no jvp rule (MLX has none either)")
            return nil
        }
    case .sort(let op, let axis):
        guard let tx = tangents[0] else { return nil }
        switch op {
        case .sort, .argSort: return tx.takeAlongAxis(inputs[0].argSort(axis: axis), axis: axis)
        case .partition(let kth), .argPartition(let kth):
            return tx.takeAlongAxis(inputs[0].argPartition(kth: kth, axis: axis), axis: axis)
        }
    case .scan(let op, let axis, let reverse, let inclusive):
        guard let tx = tangents[0] else { return nil }
        switch op {
        case .sum:
            return linear()
        case .prod:
            return cumprodJVP(x: inputs[0], output: output, tx: tx, axis: axis, reverse: reverse, inclusive: inclusive)
        case .max, .min:
            opPrecondition(false, "jvp", "cum\(op.rawValue) has no jvp rule")
            return nil
        }
    case .softmax, .logSoftmax, .rmsNorm, .layerNorm, .rope, .scaledDotProductAttention:
        // The tangent of the fallback graph the fused op stands for.
        let primitive = node.primitive
        let floating = inputs.indices.filter { inputs[$0].dtype.isFloatingPoint }
        let (_, out) = jvp(
            { xs in
                var all = inputs
                for (i, x) in zip(floating, xs) { all[i] = x }
                return [fastFallback(primitive, inputs: all)!]
            }, primals: floating.map { inputs[$0] }, tangents: floating.map(t))
        return out[0]
    case .quantizedMatmul:
        // Linear in x; the packed weights carry no tangent.
        guard tangents[0] != nil else { return nil }
        return Tensor(shape: node.shape, dtype: node.dtype, primitive: node.primitive, inputs: [t(0)] + inputs[1...])
    case .affineQuantizeParameters, .affineQuantizePack, .randomBits:
        return nil
    case .inverse:
        guard let dA = tangents[0] else { return nil }
        return -rawMatmul(rawMatmul(output, dA), output)
    case .solve:
        // dX = A⁻¹ (dB - dA X).
        var rhs = tangents[1] ?? Tensor.zeros(output.shape, dtype: output.dtype)
        if let dA = tangents[0] { rhs = rhs - rawMatmul(dA, output) }
        return Tensor(shape: output.shape, dtype: output.dtype, primitive: .solve, inputs: [inputs[0], rhs])
    case .affineDequantize(let groupSize, let bits):
        // Linear in scales and biases: dw = dscale * q + dbias per group.
        let scales = inputs[1]
        let groupedShape = Array(output.shape.dropLast()) + [scales.dim(-1), groupSize]
        let expand = { (t: Tensor) in t.expandedDimensions(axis: -1).broadcast(to: groupedShape).reshaped(output.shape)
        }
        // The integer levels: the same words dequantized with scale 1 and bias 0.
        let q = dequantize(
            inputs[0], scales: Tensor.onesLike(scales), biases: Tensor.zerosLike(scales), groupSize: groupSize,
            bits: bits
        ).asType(output.dtype)
        var result: Tensor?
        if let ds = tangents[1] { result = expand(ds.asType(output.dtype)) * q }
        if let db = tangents[2] {
            result = (result ?? Tensor.zeros(output.shape, dtype: output.dtype)) + expand(db.asType(output.dtype))
        }
        return result
    case .gatherQuantizedMatmul, .cholesky, .qr, .svd, .eigh, .host:
        opPrecondition(
            false, "jvp", "\(node.primitive.name) is not differentiable in Tessera yet (see docs/ARCHITECTURE.md)")
        return nil
    case .custom(let rules, let index):
        let primals = Array(inputs[0..<rules.primalCount])
        let outputs = Array(inputs[rules.primalCount...])
        return rules.jvp(primals, primals.indices.map(t), outputs)[index]
    case .collective(let c):
        guard let dx = tangents.first ?? nil else { return nil }
        return collectiveJVP(c, x: inputs[0], output: output, t: dx)
    case .compiled(let kernel):
        if tangents.allSatisfy({ $0 == nil }) { return nil }
        return Tessera.jvp(kernel.replay, primals: inputs, tangents: inputs.indices.map(t)).jvps[0]
    }
}
