// The transform rules of the collectives, as MLX defines them: a value that
// a collective makes the same on every rank (allSum, allMax, allMin,
// allGather) is used the same way by every rank, so its cotangent is the same
// everywhere and each rank takes back its own part; a value a collective
// shards (sumScatter) carries one block's cotangent per rank, which the
// backward gathers. Tangents go through the same collective as the values.
// Point-to-point pairs reverse: the backward of a send is a recv from its
// destination, the backward of a recv a send of its cotangent to its source.

/// The cotangent of the input of collective `c` (nil for `recv`, which has none).
func collectiveVJP(_ c: Collective, x: Tensor?, output: Tensor, g: Tensor) -> Tensor? {
    guard let x else { return nil }
    switch c.op {
    case .allSum:
        return g
    case .allMax, .allMin:
        // The ranks holding the extreme share its cotangent.
        let mask = (x .== output).asType(g.dtype)
        let holders = collective(.allSum, mask, c.group, shape: mask.shape)
        return g * mask / holders
    case .allGather:
        let block = x.shape[0]
        var lo = [Int](repeating: 0, count: g.ndim), hi = g.shape
        lo[0] = c.group.rank * block
        hi[0] = lo[0] + block
        return g.slice(start: lo, end: hi, stride: [Int](repeating: 1, count: g.ndim)).reshaped(x.shape)
    case .sumScatter:
        return collective(.allGather, g, c.group, shape: x.shape)
    case .send(let peer):
        // The output is the input here, and the peer's copy carries the peer's
        // cotangent back: a recv from the destination (pairs reversed), after
        // the forward send so the two ranks agree on the order. The peer's
        // backward sends it (see `receivedCotangentSend`).
        return g + recvAfter([output], shape: x.shape, dtype: x.dtype, from: peer, group: c.group)
    case .recv:
        return nil
    case .depend:
        return g
    }
}

/// The backward of a `recv`: its cotangent goes back to the rank it came from.
/// `backward` ties these sends to the gradients it returns (`depending`).
func receivedCotangentSend(_ node: Node, cotangent g: Tensor) -> Tensor? {
    guard case .collective(let c) = node.primitive, case .recv(let peer) = c.op else { return nil }
    return collective(.send(to: peer), g, c.group, shape: g.shape)
}

/// Whether the backward pass exchanges a cotangent for `node` with another
/// rank (a send or a recv): such a node takes part even when its cotangent is
/// zero, so that both ranks of the pair call the reversed operation.
func exchangesCotangent(_ node: Node) -> Bool {
    guard case .collective(let c) = node.primitive else { return false }
    switch c.op {
    case .send, .recv: return true
    default: return false
    }
}

/// Whether `node` is a `recv`, which reverse mode treats as a source of the
/// traced function (its cotangent is sent back even though no primal reaches it).
func isReceive(_ node: Node) -> Bool {
    guard case .collective(let c) = node.primitive, case .recv = c.op else { return false }
    return true
}

/// The tangent of collective `c`'s output given the tangent `t` of its input.
func collectiveJVP(_ c: Collective, x: Tensor, output: Tensor, t: Tensor) -> Tensor {
    switch c.op {
    case .allSum, .allGather, .sumScatter:
        return collective(c.op, t, c.group, shape: output.shape)
    case .allMax, .allMin:
        let mask = (x .== output).asType(t.dtype)
        let holders = collective(.allSum, mask, c.group, shape: mask.shape)
        return collective(.allSum, t * mask, c.group, shape: mask.shape) / holders
    case .send, .depend:
        return t
    case .recv:
        // A recv's inputs only order it: the values received carry no tangent from them.
        return Tensor.zeros(output.shape, dtype: output.dtype)
    }
}

/// `c` applied to `x` batched on axis 0; the result is batched on axis 0.
func collectiveBatched(_ c: Collective, _ x: Tensor, shape: [Int]) -> Tensor {
    switch c.op {
    case .allSum, .allMax, .allMin, .send:
        return collective(c.op, x, c.group, shape: x.shape)
    case .allGather, .sumScatter:
        // These work along axis 0 of each example: put the batch second for the call.
        let moved = x.movedAxis(source: 0, destination: 1)
        var outShape = moved.shape
        outShape[0] = shape[1]
        return collective(c.op, moved, c.group, shape: outShape).movedAxis(source: 1, destination: 0)
    case .recv:
        // Batched only through an ordering input (the backward of a vmapped
        // send, whose output is like the value received): the peer's matching
        // send is batched too, so the whole batch is received.
        return Tensor(shape: shape, dtype: x.dtype, primitive: .collective(c), inputs: [x])
    case .depend:
        return x
    }
}

/// `g` tied to the backward's `sends`, so that computing a gradient sends the
/// received values' cotangents back to their ranks.
func dependingOnSends(_ g: Tensor, _ sends: [Tensor]) -> Tensor {
    guard let first = sends.first, case .collective(let c) = first.node.primitive else { return g }
    return depending(g, on: sends, group: c.group)
}
