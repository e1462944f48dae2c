// Reverse and forward mode differentiation: vjp, jvp, grad, valueAndGrad,
// stopGradient. A transform traces the function on identity copies of the
// primals (nodes built while tracing retain their inputs even once computed),
// walks the traced part of the graph, and applies each primitive's rule
// (VJPRules.swift, JVPRules.swift). The rules build ordinary lazy ops, so
// transforms compose: grad of grad, jvp of vjp, vmap of grad.

/// The nodes between `primals` and `outputs` that depend on a primal, inputs
/// before users. Iterative, so deep graphs are fine.
func tracedTape(outputs: [Node], primals: Set<ObjectIdentifier>) -> [Node] {
    var order: [Node] = []
    var dependent = Set<ObjectIdentifier>()
    var visited = Set<ObjectIdentifier>()
    var stack: [(node: Node, expanded: Bool)] = outputs.reversed().map { ($0, false) }
    while let (node, expanded) = stack.popLast() {
        let id = ObjectIdentifier(node)
        if expanded {
            // A recv is a source too: its cotangent goes back to its sender (CollectiveRules.swift).
            if isReceive(node)
                || differentiableInputs(node).contains(where: {
                    primals.contains(ObjectIdentifier($0)) || dependent.contains(ObjectIdentifier($0))
                })
            {
                dependent.insert(id)
                order.append(node)
            }
            continue
        }
        guard visited.insert(id).inserted, !primals.contains(id) else { continue }
        stack.append((node, true))
        for input in differentiableInputs(node).reversed() where !visited.contains(ObjectIdentifier(input)) {
            stack.append((input, false))
        }
    }
    return order
}

/// The inputs a transform follows: a custom function's outputs are reached
/// through its rules, not through the graph that computed them.
private func differentiableInputs(_ node: Node) -> [Node] {
    let inputs = node.inputs
    if case .custom(let rules, _) = node.primitive { return Array(inputs.prefix(rules.primalCount)) }
    return inputs
}

/// Identity copies of `primals` that mark where a traced function starts.
func tracedPrimals(_ primals: [Tensor]) -> [Tensor] {
    Tracing.with(true) {
        primals.map { Tensor(shape: $0.shape, dtype: $0.dtype, primitive: .identity, inputs: [$0]) }
    }
}

/// Reverse mode over a traced function: the cotangents of `primals`.
func backward(outputs: [Tensor], cotangents: [Tensor], primals: [Tensor]) -> [Tensor] {
    let primalIDs = Set(primals.map { ObjectIdentifier($0.node) })
    let tape = tracedTape(outputs: outputs.map(\.node), primals: primalIDs)
    let onPath = primalIDs.union(tape.map { ObjectIdentifier($0) })
    var cotangent: [ObjectIdentifier: Tensor] = [:]
    func accumulate(_ node: Node, _ g: Tensor) {
        let id = ObjectIdentifier(node)
        cotangent[id] = cotangent[id].map { $0 + g } ?? g
    }
    for (output, g) in zip(outputs, cotangents) {
        opPrecondition(
            g.shape == output.shape, "vjp", "cotangent shape \(g.shape) does not match output shape \(output.shape)")
        accumulate(output.node, g)
    }
    // The sends of received values' cotangents, returned tied to the gradients.
    var sends: [Tensor] = []
    for node in tape.reversed() {
        var g = cotangent.removeValue(forKey: ObjectIdentifier(node))
        // Both ranks of a send/recv pair exchange a cotangent, a zero one too.
        if g == nil, exchangesCotangent(node) { g = Tensor.zeros(node.shape, dtype: node.dtype) }
        guard let g else { continue }
        if let send = receivedCotangentSend(node, cotangent: g) { sends.append(send) }
        let inputs = node.inputs.map(Tensor.init(node:))
        let grads = vjpRule(node, inputs: inputs, output: Tensor(node: node), cotangent: g)
        for (input, grad) in zip(inputs, grads) {
            if let grad, onPath.contains(ObjectIdentifier(input.node)) { accumulate(input.node, grad) }
        }
    }
    return primals.map { p in
        let g = cotangent[ObjectIdentifier(p.node)] ?? Tensor.zeros(p.shape, dtype: p.dtype)
        return sends.isEmpty ? g : dependingOnSends(g, sends)
    }
}

/// The outputs of `f` at `primals`, and the vector-Jacobian products of
/// `cotangents` (one per output) with respect to each primal.
///
/// ```swift
/// let (out, vjps) = vjp({ [sin($0[0])] }, primals: [x], cotangents: [Tensor.onesLike(x)])
/// // vjps[0] == cos(x)
/// ```
public func vjp(
    _ f: ([Tensor]) -> [Tensor], primals: [Tensor], cotangents: [Tensor]
) -> (outputs: [Tensor], vjps: [Tensor]) {
    let traced = tracedPrimals(primals)
    let outputs = Tracing.with(true) { f(traced) }
    opPrecondition(
        outputs.count == cotangents.count, "vjp",
        "\(outputs.count) outputs but \(cotangents.count) cotangents")
    return (outputs, backward(outputs: outputs, cotangents: cotangents, primals: traced))
}

/// The outputs of `f` at `primals`, and the Jacobian-vector products with
/// `tangents` (one per primal).
public func jvp(
    _ f: ([Tensor]) -> [Tensor], primals: [Tensor], tangents: [Tensor]
) -> (outputs: [Tensor], jvps: [Tensor]) {
    opPrecondition(primals.count == tangents.count, "jvp", "\(primals.count) primals but \(tangents.count) tangents")
    for (p, t) in zip(primals, tangents) {
        opPrecondition(p.shape == t.shape, "jvp", "tangent shape \(t.shape) does not match primal shape \(p.shape)")
    }
    let traced = tracedPrimals(primals)
    let outputs = Tracing.with(true) { f(traced) }
    let tape = tracedTape(outputs: outputs.map(\.node), primals: Set(traced.map { ObjectIdentifier($0.node) }))
    var tangent: [ObjectIdentifier: Tensor] = [:]
    for (p, t) in zip(traced, tangents) { tangent[ObjectIdentifier(p.node)] = t }
    for node in tape {
        let inputs = node.inputs.map(Tensor.init(node:))
        let ts = inputs.map { tangent[ObjectIdentifier($0.node)] }
        if ts.allSatisfy({ $0 == nil }) { continue }
        tangent[ObjectIdentifier(node)] = jvpRule(node, inputs: inputs, tangents: ts, output: Tensor(node: node))
    }
    let jvps = outputs.map { o in tangent[ObjectIdentifier(o.node)] ?? Tensor.zeros(o.shape, dtype: o.dtype) }
    return (outputs, jvps)
}

/// `f`'s value and its gradients with respect to the arguments at
/// `argumentNumbers`. `f` returns the scalar loss first; any further outputs
/// are auxiliary values, returned with the loss and not differentiated.
public func valueAndGrad(
    _ f: @escaping ([Tensor]) -> [Tensor], argumentNumbers: [Int] = [0]
) -> ([Tensor]) -> ([Tensor], [Tensor]) {
    { args in
        for i in argumentNumbers {
            opPrecondition(
                i >= 0 && i < args.count, "grad", "argument number \(i) out of range for \(args.count) arguments")
        }
        let traced = tracedPrimals(argumentNumbers.map { args[$0] })
        var full = args
        for (k, i) in argumentNumbers.enumerated() { full[i] = traced[k] }
        let outputs = Tracing.with(true) { f(full) }
        opPrecondition(!outputs.isEmpty, "grad", "the function returned no outputs")
        let loss = outputs[0]
        opPrecondition(loss.size == 1, "grad", "the function must return a scalar first, got shape \(loss.shape)")
        let seed = Tensor.ones(loss.shape, dtype: loss.dtype)
        return (outputs, backward(outputs: [loss], cotangents: [seed], primals: traced))
    }
}

/// The gradients of the scalar `f` with respect to the arguments at `argumentNumbers`.
public func grad(_ f: @escaping ([Tensor]) -> Tensor, argumentNumbers: [Int] = [0]) -> ([Tensor]) -> [Tensor] {
    let vg = valueAndGrad({ [f($0)] }, argumentNumbers: argumentNumbers)
    return { vg($0).1 }
}

/// The gradient of a scalar function of one tensor.
///
/// ```swift
/// let df = grad { (x: Tensor) in (x * x).sum() }
/// df(Tensor([1, 2, 3] as [Float]))   // array([2, 4, 6], dtype=float32)
/// ```
public func grad(_ f: @escaping (Tensor) -> Tensor) -> (Tensor) -> Tensor {
    let g = grad({ f($0[0]) }, argumentNumbers: [0])
    return { g([$0])[0] }
}

/// The gradients of a scalar function of two tensors, with respect to both.
public func grad(_ f: @escaping (Tensor, Tensor) -> Tensor) -> (Tensor, Tensor) -> (Tensor, Tensor) {
    let g = grad({ f($0[0], $0[1]) }, argumentNumbers: [0, 1])
    return { a, b in
        let r = g([a, b])
        return (r[0], r[1])
    }
}

/// The value and gradient of a scalar function of one tensor.
public func valueAndGrad(_ f: @escaping (Tensor) -> Tensor) -> (Tensor) -> (Tensor, Tensor) {
    let vg = valueAndGrad({ [f($0[0])] }, argumentNumbers: [0])
    return { x in
        let (values, grads) = vg([x])
        return (values[0], grads[0])
    }
}

/// `x` itself, through which no gradient flows.
public func stopGradient(_ x: Tensor) -> Tensor {
    Tensor(shape: x.shape, dtype: x.dtype, primitive: .stopGradient, inputs: [x])
}
