// The vjp rule of every primitive: given the node's inputs, its output and
// the cotangent of the output, the cotangent of each input (nil: none flows).
// Non-floating outputs (comparisons, arg-reductions, integer math) pass no
// gradient, as in MLX. complex64 is not differentiable yet and says so.

func vjpRule(_ node: Node, inputs: [Tensor], output: Tensor, cotangent g: Tensor) -> [Tensor?] {
    let none = [Tensor?](repeating: nil, count: inputs.count)
    if !output.dtype.isFloatingPoint {
        opPrecondition(output.dtype != .complex64, "vjp", "\(node.primitive.name) is not differentiable for complex64")
        return none
    }
    /// `grad` where the input is floating point, else nil.
    func forInput(_ i: Int, _ grad: @autoclosure () -> Tensor?) -> Tensor? {
        inputs[i].dtype.isFloatingPoint ? grad() : nil
    }
    switch node.primitive {
    case .constant, .arange:
        return none
    case .unary(let op):
        return [unaryDerivative(op, x: inputs[0], out: output).times(g)]
    case .binary(let op):
        let (dx, dy) = binaryPartials(op, x: inputs[0], y: inputs[1], out: output)
        return [dx.times(g), dy.times(g)]
    case .select:
        return [nil, which(inputs[0], g, 0.0), which(inputs[0], 0.0, g)]
    case .asType:
        return [forInput(0, g.asType(inputs[0].dtype))]
    case .reduce(let op, let axes):
        let x = inputs[0]
        switch op {
        case .sum:
            return [g.broadcast(to: x.shape)]
        case .prod:
            return [g * productOfOthers(x, axes: axes)]
        case .max, .min:
            let mask = (x .== output).asType(g.dtype)
            return [g * mask / mask.sum(axes: axes, keepDims: true)]
        case .all, .any:
            return none
        }
    case .argReduce:
        return none
    case .reshape:
        return [g.reshaped(inputs[0].shape)]
    case .transpose(let axes):
        var inverse = axes
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return [g.transposed(axes: inverse)]
    case .broadcast:
        return [sumToShape(g, inputs[0].shape)]
    case .slice(let start, let stride):
        let zeros = Tensor.zeros(inputs[0].shape, dtype: g.dtype)
        return [sliceUpdate(zeros, g, start: start, stride: stride)]
    case .copy, .identity:
        return [g]
    case .stopGradient:
        return none
    case .concatenate(let axis):
        var start = 0
        return inputs.map { input in
            var lo = [Int](repeating: 0, count: g.ndim), hi = g.shape
            lo[axis] = start
            hi[axis] = start + input.shape[axis]
            start = hi[axis]
            return g.slice(start: lo, end: hi, stride: [Int](repeating: 1, count: g.ndim))
        }
    case .matmul:
        let (a, b) = (inputs[0], inputs[1])
        // Operands may mix float32 with a half type (matmulOperand): each cotangent takes its input's dtype.
        return [
            rawMatmul(g, b.swappedAxes(-1, -2)).asType(a.dtype), rawMatmul(a.swappedAxes(-1, -2), g).asType(b.dtype)
        ]
    case .sliceUpdate(let start, let stride):
        let update = inputs[1]
        let cleared = sliceUpdate(g, Tensor.zeros(update.shape, dtype: g.dtype), start: start, stride: stride)
        let window = Tensor(
            shape: update.shape, dtype: g.dtype, primitive: .slice(start: start, stride: stride), inputs: [g])
        return [cleared, window]
    case .gather(let axes, _):
        // Every gathered window adds its cotangent back where it came from.
        let indices = Array(inputs.dropFirst())
        let dx = scatter(Tensor.zeros(inputs[0].shape, dtype: g.dtype), g, indices, axes: axes, .add, "vjp")
        return [dx] + [Tensor?](repeating: nil, count: indices.count)
    case .scatter(let op, let axes):
        let (x, updates, indices) = (inputs[0], inputs[1], Array(inputs.dropFirst(2)))
        let window = Array(updates.shape.suffix(x.ndim))
        let dUpdates = gather(g, indices, axes: axes, sliceSizes: window, "vjp")
        let none = [Tensor?](repeating: nil, count: indices.count)
        switch op {
        case .set:
            return [scatter(g, Tensor.zeros(updates.shape, dtype: g.dtype), indices, axes: axes, .set, "vjp"), dUpdates]
                + none
        case .add:
            return [g, dUpdates] + none
        case .prod, .max, .min:
            opPrecondition(false, "vjp", "scatter_\(op.rawValue) has no vjp rule (MLX has none either)")
            return none
        }
    case .sort(let op, let axis):
        // The values moved by a permutation: send each cotangent back to its source.
        let x = inputs[0]
        let order: Tensor
        switch op {
        case .sort, .argSort: order = x.argSort(axis: axis)
        case .partition(let kth), .argPartition(let kth): order = x.argPartition(kth: kth, axis: axis)
        }
        return [Tensor.zeros(x.shape, dtype: g.dtype).putAlongAxis(order, values: g, axis: axis)]
    case .scan(let op, let axis, let reverse, let inclusive):
        let x = inputs[0]
        switch op {
        case .sum:
            return [g.cumsum(axis: axis, reverse: !reverse, inclusive: inclusive)]
        case .prod:
            return [cumprodVJP(x: x, output: output, g: g, axis: axis, reverse: reverse, inclusive: inclusive)]
        case .max, .min:
            opPrecondition(false, "vjp", "cum\(op.rawValue) has no vjp rule")
            return none
        }
    case .softmax, .logSoftmax, .rmsNorm, .layerNorm, .rope, .scaledDotProductAttention:
        // The written-out rules (FastVJPRules.swift) where they apply, else
        // differentiate the fallback graph the fused op stands for.
        let primitive = node.primitive
        if let rule = fastVJP(primitive, inputs: inputs, output: output, cotangent: g) { return rule }
        let floating = inputs.indices.filter { inputs[$0].dtype.isFloatingPoint }
        let (_, grads) = vjp(
            { xs in
                var all = inputs
                for (i, x) in zip(floating, xs) { all[i] = x }
                return [fastFallback(primitive, inputs: all)!]
            }, primals: floating.map { inputs[$0] }, cotangents: [g])
        var result = none
        for (i, grad) in zip(floating, grads) { result[i] = grad }
        return result
    case .quantizedMatmul(let groupSize, let bits, let transpose):
        // Only x has a gradient: the product with the same weights the other way round.
        // (The node's inputs are already broadcast and in the compute dtype, so build the node directly.)
        let dx = Tensor(
            shape: inputs[0].shape, dtype: g.dtype,
            primitive: .quantizedMatmul(groupSize: groupSize, bits: bits, transpose: !transpose),
            inputs: [g, inputs[1], inputs[2], inputs[3]])
        return [dx, nil, nil, nil]
    case .affineQuantizeParameters, .affineQuantizePack, .randomBits:
        return none
    case .inverse:
        // d(A⁻¹) = -A⁻¹ dA A⁻¹, so gA = -A⁻ᵀ g A⁻ᵀ.
        let inverseT = output.swappedAxes(-1, -2)
        return [-rawMatmul(rawMatmul(inverseT, g), inverseT)]
    case .solve:
        // X = A⁻¹ B: gB = A⁻ᵀ g, gA = -gB Xᵀ.
        let gB = Tensor(shape: g.shape, dtype: g.dtype, primitive: .solve, inputs: [inputs[0].swappedAxes(-1, -2), g])
        return [-rawMatmul(gB, output.swappedAxes(-1, -2)), gB]
    case .affineDequantize(let groupSize, let bits):
        // w = scale * q + bias per group: linear in scales and biases, none for the packed q.
        let scales = inputs[1]
        let grouped = g.reshaped(Array(g.shape.dropLast()) + [scales.dim(-1), groupSize])
        // The integer levels: the same words dequantized with scale 1 and bias 0.
        let q = dequantize(
            inputs[0], scales: Tensor.onesLike(scales), biases: Tensor.zerosLike(scales), groupSize: groupSize,
            bits: bits
        ).asType(output.dtype)
        let perGroup = { (t: Tensor) in t.reshaped(grouped.shape).sum(axis: -1) }
        return [nil, forInput(1, perGroup(g * q).asType(scales.dtype)), forInput(2, perGroup(g).asType(scales.dtype))]
    case .gatherQuantizedMatmul, .cholesky, .qr, .svd, .eigh, .host:
        opPrecondition(
            false, "vjp", "\(node.primitive.name) is not differentiable in Tessera yet (see docs/ARCHITECTURE.md)")
        return none
    case .custom(let rules, let index):
        let primals = Array(inputs[0..<rules.primalCount])
        let outputs = Array(inputs[rules.primalCount...])
        let cotangents = outputs.indices.map { $0 == index ? g : Tensor.zerosLike(outputs[$0]) }
        return rules.vjp(primals, cotangents, outputs) + [Tensor?](repeating: nil, count: outputs.count)
    case .collective(let c):
        return [collectiveVJP(c, x: inputs.first, output: output, g: g)]
    case .compiled(let kernel):
        // The rules of the unfused program the kernel was made from.
        let grads = Tessera.vjp(kernel.replay, primals: inputs, cotangents: [g]).vjps
        return inputs.indices.map { forInput($0, grads[$0]) }
    }
}

/// `g` summed over the axes that broadcasting `shape` up to `g.shape` added or stretched.
func sumToShape(_ g: Tensor, _ shape: [Int]) -> Tensor {
    let lead = g.ndim - shape.count
    var axes = Array(0..<lead)
    for i in shape.indices where shape[i] == 1 && g.shape[lead + i] != 1 { axes.append(lead + i) }
    let summed = axes.isEmpty ? g : g.sum(axes: axes, keepDims: true)
    return summed.reshaped(shape)
}

/// A copy of `base` with `update` written into the window `start + i * stride`.
package func sliceUpdate(_ base: Tensor, _ update: Tensor, start: [Int], stride: [Int]) -> Tensor {
    Tensor(
        shape: base.shape, dtype: base.dtype, primitive: .sliceUpdate(start: start, stride: stride),
        inputs: [base, update.asType(base.dtype)])
}

/// A matmul node over inputs whose batch axes already match.
func rawMatmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let batch = broadcastShapes(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), "matmul")
    let m = a.dim(-2), k = a.dim(-1), n = b.dim(-1)
    let dtype = promoteTypes(a.dtype, b.dtype)
    return Tensor(
        shape: batch + [m, n], dtype: dtype, primitive: .matmul,
        inputs: [
            matmulOperand(a, dtype).broadcast(to: batch + [m, k]), matmulOperand(b, dtype).broadcast(to: batch + [k, n])
        ])
}
