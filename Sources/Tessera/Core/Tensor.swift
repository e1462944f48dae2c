// Tensor: an immutable handle to a node of the lazy graph. Ops validate,
// promote dtypes and add a node; evaluation (eval, item, printing) computes.

import Dispatch

/// An evaluated array: a buffer and the strided window of it the tensor sees.
struct ArrayView: @unchecked Sendable {
    let shape: [Int]
    let dtype: DType
    /// `var` only so that donation can test it for unique ownership in place.
    var buffer: Buffer
    /// Offset of element 0, in elements.
    let offset: Int
    /// Element strides; 0 on broadcast axes.
    let strides: [Int]

    var count: Int { shape.reduce(1, *) }
    var isRowContiguous: Bool { strides == contiguousStrides(shape) || count <= 1 || hasContiguousLayout }

    /// Contiguity ignoring the strides of size-1 axes.
    private var hasContiguousLayout: Bool {
        var expected = 1
        for (n, s) in zip(shape, strides).reversed() where n != 1 {
            if s != expected { return false }
            expected *= n
        }
        return true
    }

    /// The host home, current, typed, at element 0 of this view.
    func hostPointer<T>(_: T.Type) throws -> UnsafeMutablePointer<T> {
        try buffer.hostPointer().bindMemory(to: T.self, capacity: 1) + offset
    }

    /// A fresh row-contiguous array to write into.
    static func allocate(shape: [Int], dtype: DType) -> ArrayView {
        let count = shape.reduce(1, *)
        return ArrayView(
            shape: shape, dtype: dtype, buffer: Buffer(byteCount: count * dtype.size), offset: 0,
            strides: contiguousStrides(shape))
    }

    func with(shape: [Int], offset: Int, strides: [Int]) -> ArrayView {
        ArrayView(shape: shape, dtype: dtype, buffer: buffer, offset: offset, strides: strides)
    }
}

/// Row-major strides of `shape`, in elements.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = acc
        acc *= max(shape[i], 1)
    }
    return strides
}

/// One node of the graph. Its inputs are released once it is computed.
final class Node: Sendable {
    let shape: [Int]
    let dtype: DType
    let primitive: Primitive
    let stream: Stream
    /// Nodes built while a transform traces keep their inputs when computed
    /// during a trace, so the transform can still walk the graph (see `Tracing`).
    let retainsInputs: Bool
    /// Guards `guarded` (see `state`).
    private let stateLock = SpinLock()
    @exclusivity(unchecked) nonisolated(unsafe) private var guarded: State
    /// Scratch of `Scheduler.order`: the ordering that last reached this node
    /// and the node's number in it (-1: not listed). Only touched under the
    /// scheduler's ordering lock.
    nonisolated(unsafe) var orderMark = 0
    nonisolated(unsafe) var orderSlot = -1

    struct State: @unchecked Sendable {
        var inputs: [Node]
        var data: ArrayView?
        /// The asynchronous evaluation that will compute this node (a root of
        /// it), until computed: a synchronous evaluation waits for just that.
        var inFlight: DispatchGroup?
    }

    init(shape: [Int], dtype: DType, primitive: Primitive, inputs: [Node], stream: Stream, data: ArrayView? = nil) {
        self.shape = shape
        self.dtype = dtype
        self.primitive = primitive
        self.stream = stream
        retainsInputs = Tracing.isActive
        guarded = State(inputs: inputs, data: data)
    }

    /// The node's inputs and data, under its lock (`state.withLock { ... }`).
    private var state: StateAccess { StateAccess(node: self) }

    struct StateAccess {
        unowned(unsafe) let node: Node

        @inline(__always)
        func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
            node.stateLock.lock()
            defer { node.stateLock.unlock() }
            return try body(&node.guarded)
        }
    }

    // Releasing a long unevaluated chain would recurse once per node; unlink
    // uniquely owned inputs iteratively instead.
    deinit {
        var pending = state.withLock { s in
            let inputs = s.inputs
            s.inputs = []
            return inputs
        }
        while !pending.isEmpty {
            var node = pending.removeLast()
            if isKnownUniquelyReferenced(&node) {
                pending.append(contentsOf: node.takeInputs())
            }
        }
    }

    private func takeInputs() -> [Node] {
        state.withLock { s in
            let inputs = s.inputs
            s.inputs = []
            return inputs
        }
    }

    var data: ArrayView? { state.withLock { $0.data } }

    /// Marks this node, unless computed, as a root of the asynchronous
    /// evaluation `group` tracks (an earlier one, computing it sooner, stays).
    func markInFlight(_ group: DispatchGroup) {
        state.withLock { s in
            if s.data == nil && s.inFlight == nil { s.inFlight = group }
        }
    }

    /// The asynchronous evaluation computing this node, if one is.
    var inFlight: DispatchGroup? { state.withLock { $0.data == nil ? $0.inFlight : nil } }
    var isEvaluated: Bool { state.withLock { $0.data != nil } }

    /// The inputs still needed, or nil once the node is computed.
    var pendingInputs: [Node]? { state.withLock { $0.data == nil ? $0.inputs : nil } }

    /// Moves the inputs out for computing, or nil once computed; the caller
    /// then holds the only references this node had (see donation in
    /// `Scheduler.execute`) and gives them back with `restoreInputs` on failure.
    func takePendingInputs() -> [Node]? {
        state.withLock { s in
            guard s.data == nil else { return nil }
            let inputs = s.inputs
            s.inputs = []
            return inputs
        }
    }

    func restoreInputs(_ inputs: [Node]) {
        state.withLock { s in
            if s.data == nil { s.inputs = inputs }
        }
    }

    /// Whether this node's computed buffer has no other owner (no view of it
    /// held by another node or array).
    var ownsBufferUniquely: Bool {
        state.withLock { s in
            guard s.data != nil else { return false }
            return isKnownUniquelyReferenced(&s.data!.buffer)
        }
    }

    /// The inputs as built (empty once computed, unless the node retains them).
    var inputs: [Node] { state.withLock { $0.inputs } }

    /// Records the result and drops the inputs, so the graph is freed as it
    /// goes; a traced node computed while tracing keeps them for the transform.
    func complete(with data: ArrayView, whileTracing tracing: Bool) {
        state.withLock { s in
            s.data = data
            s.inFlight = nil
            if !(retainsInputs && tracing) { s.inputs = [] }
        }
    }
}

/// A lazily evaluated n-dimensional array.
///
/// Tensors are immutable values; operations build a graph that is computed
/// when a result is needed (`eval`, `item`, `toArray`, printing).
///
/// ```swift
/// let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
/// let c = (a * 2).sum(axes: [1])   // nothing computed yet
/// print(c)                         // array([12, 30], dtype=float32)
/// ```
public struct Tensor: Sendable {
    let node: Node

    init(node: Node) { self.node = node }

    /// A new node on the current stream. On a device that cannot run (no GPU
    /// driver) the node is built all the same and its evaluation throws
    /// `TesseraError.deviceUnavailable`: a missing library is never a trap.
    package init(shape: [Int], dtype: DType, primitive: Primitive, inputs: [Tensor]) {
        let stream = Stream.current
        if inputs.count == 1, let view = Self.immediateView(primitive, of: inputs[0].node, shape: shape, on: stream) {
            node = Node(shape: shape, dtype: dtype, primitive: primitive, inputs: [], stream: stream, data: view)
            return
        }
        node = Node(shape: shape, dtype: dtype, primitive: primitive, inputs: inputs.map(\.node), stream: stream)
    }

    /// A view (broadcast, transpose, slice, or a reshape that needs no copy)
    /// of a computed CPU tensor, made at once: it costs no memory and no
    /// work, so scheduling it later would only add per-node overhead (a
    /// decode step broadcasts every weight it multiplies by). Not while a
    /// transform traces, which needs the graph; the node is then what a lazy
    /// one is once computed outside a trace.
    private static func immediateView(_ primitive: Primitive, of input: Node, shape: [Int], on stream: Stream)
        -> ArrayView?
    {
        switch primitive {
        case .broadcast, .transpose, .slice, .reshape: break
        default: return nil
        }
        guard case .cpu = stream.device, case .cpu = input.stream.device, !Tracing.isActive, let data = input.data
        else { return nil }
        switch primitive {
        case .broadcast: return ShapeKernels.broadcast(data, to: shape)
        case .transpose(let axes): return ShapeKernels.transpose(data, axes: axes)
        case .slice(let start, let stride): return ShapeKernels.slice(data, start: start, stride: stride, shape: shape)
        case .reshape:
            guard data.count > 0, let strides = ShapeKernels.reshapedStrides(data, to: shape) else { return nil }
            return data.with(shape: shape, offset: data.offset, strides: strides)
        default: return nil
        }
    }

    /// An evaluated tensor over `view`.
    init(evaluated view: ArrayView) {
        node = Node(
            shape: view.shape, dtype: view.dtype, primitive: .constant, inputs: [], stream: Stream.current,
            data: view)
    }

    public var shape: [Int] { node.shape }
    public var dtype: DType { node.dtype }
    public var ndim: Int { node.shape.count }
    /// The number of elements.
    public var size: Int { node.shape.reduce(1, *) }
    public var nbytes: Int { size * dtype.size }
    /// The device this tensor is computed on.
    public var device: Device { node.stream.device }
    /// The operation that produces this tensor.
    public var primitive: Primitive { node.primitive }
    /// The tensors this one is computed from (empty once computed, outside transforms).
    var inputs: [Tensor] { node.inputs.map(Tensor.init(node:)) }
    /// Whether the value has been computed.
    public var isEvaluated: Bool { node.isEvaluated }

    /// Whether both handles are the same node (not merely equal values), e.g.
    /// to tell whether a value derived from parameters is still current.
    public func isIdentical(to other: Tensor) -> Bool { node === other.node }

    /// The size of `axis` (negative counts from the end).
    public func dim(_ axis: Int) -> Int { shape[normalizeAxis(axis, ndim, "dim")] }
}

/// Whether nodes being built belong to a function a transform is tracing.
enum Tracing {
    @TaskLocal static var isActive = false

    /// Runs `body` with tracing on (or off), for the current task tree.
    static func with<R>(_ active: Bool, _ body: () throws -> R) rethrows -> R {
        try $isActive.withValue(active, operation: body)
    }
}

/// `axis` in `0..<ndim`, with negative axes counted from the end; traps naming `op` otherwise.
func normalizeAxis(_ axis: Int, _ ndim: Int, _ op: String) -> Int {
    let a = axis < 0 ? axis + ndim : axis
    opPrecondition(a >= 0 && a < ndim, op, "axis \(axis) is out of range for an array with \(ndim) dimensions")
    return a
}
