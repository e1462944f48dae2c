// The transform rules of the collectives, as MLX defines them: a value that
// a collective makes the same on every rank (allSum, allMax, allMin,
// allGather) is used the same way by every rank, so its cotangent is the same
// everywhere and each rank takes back its own part; a value a collective
// shards (sumScatter) carries one block's cotangent per rank, which the
// backward gathers. Tangents go through the same collective as the values.

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
    case .send:
        // The output is the input on this rank; what the peer does with its copy is its own graph.
        return g
    case .recv:
        return nil
    }
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
    case .send:
        return t
    case .recv:
        // Unreachable: the jvp rule returns nil before this for a node without inputs.
        fatalError("[jvp] recv has no input to carry a tangent")
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
        // Unreachable: vmap batches a node only through a batched input, and recv has none.
        fatalError("[vmap] recv has no inputs to map")
    }
}
