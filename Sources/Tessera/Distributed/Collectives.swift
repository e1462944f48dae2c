// Collectives as ops: each builds a lazy node of the `collective` primitive,
// so communication is scheduled with the rest of the graph and composes with
// eval/asyncEval and the transforms. On a group of one every collective is
// the identity (no node). The CPU backend computes the nodes through the
// group's communicator (CollectiveKernels below); the GPU backend routes them
// through host memory.

/// A collective operation over a group, the payload of `Primitive.collective`.
public struct Collective: Sendable, CustomStringConvertible {
    public enum Op: Sendable, Equatable {
        case allSum, allMax, allMin
        /// Concatenation of every rank's input along axis 0, in rank order.
        case allGather
        /// The sum over ranks, of which rank r keeps the r-th block of axis 0.
        case sumScatter
        /// Sends the input to `peer`; the output is the input.
        case send(to: Int)
        /// Receives the output from `peer`. Its inputs, if any, are only
        /// computed first (the backward of `send` receives after the forward send).
        case recv(from: Int)
        /// The first input, once the others are computed (ties the sends of a
        /// backward pass to the gradients it returns; no communication).
        case depend
    }

    public let op: Op
    public let group: Group

    public var name: String {
        switch op {
        case .allSum: return "allSum"
        case .allMax: return "allMax"
        case .allMin: return "allMin"
        case .allGather: return "allGather"
        case .sumScatter: return "sumScatter"
        case .send: return "send"
        case .recv: return "recv"
        case .depend: return "depend"
        }
    }

    public var description: String { "\(name)(\(op), \(group))" }
}

/// Resolves the group argument of a collective: the given one, or the world.
private func resolved(_ group: Group?) -> Group { group ?? .world }

func collective(_ op: Collective.Op, _ x: Tensor, _ group: Group, shape: [Int]) -> Tensor {
    Tensor(shape: shape, dtype: x.dtype, primitive: .collective(Collective(op: op, group: group)), inputs: [x])
}

/// The element-wise sum of `x` over every rank of `group` (default: the world).
///
/// ```swift
/// let group = try Distributed(backend: .any)
/// let total = allSum(localGradient, group: group)
/// ```
public func allSum(_ x: Tensor, group: Group? = nil) -> Tensor {
    let g = resolved(group)
    return g.size == 1 ? x : collective(.allSum, x, g, shape: x.shape)
}

/// The element-wise maximum of `x` over every rank of `group`.
public func allMax(_ x: Tensor, group: Group? = nil) -> Tensor {
    let g = resolved(group)
    return g.size == 1 ? x : collective(.allMax, x, g, shape: x.shape)
}

/// The element-wise minimum of `x` over every rank of `group`.
public func allMin(_ x: Tensor, group: Group? = nil) -> Tensor {
    let g = resolved(group)
    return g.size == 1 ? x : collective(.allMin, x, g, shape: x.shape)
}

/// Every rank's `x` concatenated along axis 0 in rank order (a scalar counts as shape [1]).
public func allGather(_ x: Tensor, group: Group? = nil) -> Tensor {
    let g = resolved(group)
    let x = x.ndim == 0 ? x.reshaped([1]) : x
    guard g.size > 1 else { return x }
    return collective(.allGather, x, g, shape: [x.shape[0] * g.size] + x.shape.dropFirst())
}

/// The sum of `x` over the ranks, split along axis 0 into `group.size` blocks
/// of which rank r keeps block r (MLX's `sum_scatter`, MPI's reduce-scatter).
public func sumScatter(_ x: Tensor, group: Group? = nil) -> Tensor {
    let g = resolved(group)
    guard g.size > 1 else { return x }
    opPrecondition(
        x.ndim >= 1 && x.shape[0] % g.size == 0, "sumScatter",
        "axis 0 of shape \(x.shape) must divide into \(g.size) ranks")
    return collective(.sumScatter, x, g, shape: [x.shape[0] / g.size] + x.shape.dropFirst())
}

/// Sends `x` to rank `peer` of `group` when evaluated; the result is `x`
/// itself, to evaluate (or depend on) so that the send happens.
public func send(_ x: Tensor, to peer: Int, group: Group? = nil) -> Tensor {
    let g = resolved(group)
    opPrecondition(peer >= 0 && peer < g.size && peer != g.rank, "send", "peer \(peer) is not another rank of \(g)")
    return collective(.send(to: peer), x, g, shape: x.shape)
}

/// A tensor of `shape` and `dtype` received from rank `peer` of `group` when evaluated.
public func recv(shape: [Int], dtype: DType, from peer: Int, group: Group? = nil) -> Tensor {
    let g = resolved(group)
    opPrecondition(peer >= 0 && peer < g.size && peer != g.rank, "recv", "peer \(peer) is not another rank of \(g)")
    return Tensor(
        shape: shape, dtype: dtype, primitive: .collective(Collective(op: .recv(from: peer), group: g)), inputs: [])
}

/// A receive from `peer` of `group` that runs after `after` is computed.
func recvAfter(_ after: [Tensor], shape: [Int], dtype: DType, from peer: Int, group: Group) -> Tensor {
    Tensor(
        shape: shape, dtype: dtype, primitive: .collective(Collective(op: .recv(from: peer), group: group)),
        inputs: after)
}

/// `x`, computed only after every tensor of `others` (the backward's sends).
func depending(_ x: Tensor, on others: [Tensor], group: Group) -> Tensor {
    others.isEmpty
        ? x
        : Tensor(
            shape: x.shape, dtype: x.dtype, primitive: .collective(Collective(op: .depend, group: group)),
            inputs: [x] + others)
}

/// A tensor shaped and typed like `x`, received from rank `peer`.
public func recvLike(_ x: Tensor, from peer: Int, group: Group? = nil) -> Tensor {
    recv(shape: x.shape, dtype: x.dtype, from: peer, group: group)
}

/// Computes collective nodes on host memory.
enum CollectiveKernels {
    static func evaluate(_ c: Collective, inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView {
        guard let comm = c.group.communicator else {
            // A group of one: nothing to exchange (ops build no node then, but stay total).
            if case .recv = c.op { throw DistributedError.badConfiguration("recv in a group of one") }
            return inputs[0]
        }
        switch c.op {
        case .allSum, .allMax, .allMin:
            // Read the input where it lies, write a new array: no copy first.
            let input = try contiguous(inputs[0])
            let out = ArrayView.allocate(shape: shape, dtype: dtype)
            let kind: ReduceKind = c.op == .allSum ? .sum : c.op == .allMax ? .max : .min
            try comm.allReduce(
                from: try bytes(input), into: try out.buffer.hostPointer(forWriting: true),
                count: out.count, dtype: dtype, op: kind)
            return out
        case .allGather:
            let input = try contiguous(inputs[0])
            let out = ArrayView.allocate(shape: shape, dtype: dtype)
            try comm.allGather(
                try bytes(input), bytes: input.count * dtype.size,
                into: try out.buffer.hostPointer(forWriting: true))
            return out
        case .sumScatter:
            let all = try ShapeKernels.contiguousCopy(inputs[0])
            try comm.allReduce(try all.buffer.hostPointer(forWriting: true), count: all.count, dtype: dtype, op: .sum)
            let block = all.count / comm.size
            return all.with(shape: shape, offset: comm.rank * block, strides: contiguousStrides(shape))
        case .send(let peer):
            let input = try contiguous(inputs[0])
            try comm.send(try bytes(input), bytes: input.count * dtype.size, to: peer)
            return inputs[0]
        case .depend:
            return inputs[0]
        case .recv(let peer):
            let out = ArrayView.allocate(shape: shape, dtype: dtype)
            try comm.recv(try out.buffer.hostPointer(forWriting: true), bytes: out.count * dtype.size, from: peer)
            return out
        }
    }

    /// The first byte of `view`'s element 0 (its offset counts elements, not bytes).
    private static func bytes(_ view: ArrayView) throws -> UnsafeRawPointer {
        UnsafeRawPointer(try view.buffer.hostPointer() + view.offset * view.dtype.size)
    }

    private static func contiguous(_ view: ArrayView) throws -> ArrayView {
        view.isRowContiguous && view.strides.allSatisfy({ $0 != 0 }) || view.count <= 1
            ? view : try ShapeKernels.contiguousCopy(view)
    }
}

/// Combines host arrays element by element with the CPU backend's kernels.
struct HostReducer {
    let dtype: DType
    let op: BinaryOp

    init(dtype: DType, op: ReduceKind) throws {
        self.dtype = dtype
        switch op {
        case .sum: self.op = .add
        case .max: self.op = .maximum
        case .min: self.op = .minimum
        }
        if dtype == .complex64 && op != .sum {
            throw DistributedError.unsupported("\(op.rawValue) reduction of complex64 (no order)")
        }
    }

    /// `destination[i] = destination[i] op source[i]` for `count` elements.
    func combine(into destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int) throws {
        guard count > 0 else { return }
        let bytes = count * dtype.size
        let owner = HostReducerOwner()
        let a = ArrayView(
            shape: [count], dtype: dtype, buffer: Buffer(external: destination, byteCount: bytes, owner: owner),
            offset: 0,
            strides: [1])
        let b = ArrayView(
            shape: [count], dtype: dtype,
            buffer: Buffer(external: UnsafeMutableRawPointer(mutating: source), byteCount: bytes, owner: owner),
            offset: 0,
            strides: [1])
        try dispatch(dtype, BinaryKernel(op: op, a: a, b: b, output: a))
    }

    /// `destination[i] = a[i] op b[i]` for `count` elements (`destination` may be `a`).
    func combine(
        _ first: UnsafeRawPointer, _ second: UnsafeRawPointer, into destination: UnsafeMutableRawPointer, count: Int
    ) throws {
        guard count > 0 else { return }
        let bytes = count * dtype.size
        let owner = HostReducerOwner()
        func view(_ p: UnsafeRawPointer) -> ArrayView {
            ArrayView(
                shape: [count], dtype: dtype,
                buffer: Buffer(external: UnsafeMutableRawPointer(mutating: p), byteCount: bytes, owner: owner),
                offset: 0, strides: [1])
        }
        let a = view(first), b = view(second), output = view(UnsafeRawPointer(destination))
        try dispatch(dtype, BinaryKernel(op: op, a: a, b: b, output: output))
    }
}

private final class HostReducerOwner {}
