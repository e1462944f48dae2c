// Graph evaluation: an iterative topological sort of the unevaluated part of
// the graph, split into runs of consecutive nodes on one stream, each run
// executed by its stream's serial worker. A node is only ever computed by the
// worker of its own stream, so it is computed once without a global lock.

import Dispatch

enum Scheduler {
    /// The unevaluated nodes under `roots`, inputs before users. Iterative, so
    /// chains of any length are fine. Each node's deepest input is computed
    /// first (as MLX does): long chains, such as a backward pass, then run
    /// before short branches whose results would otherwise wait in memory.
    ///
    /// Two passes, neither hashing: the first lists the pending nodes in
    /// post-order, numbering each in its `orderMark`/`orderSlot` scratch (valid
    /// for one ordering, under `orderLock`) and computing its depth; the second
    /// walks those numbers, deepest input first (ties keep the input order).
    static func order(_ roots: [Node]) -> [Node] {
        orderLock.withLock { orderLocked(roots) }
    }

    /// Guards the nodes' ordering scratch, shared by every ordering.
    private static let orderLock = Lock()
    /// The mark of the ordering in progress (under `orderLock`).
    nonisolated(unsafe) private static var orderGeneration = 0

    private static func orderLocked(_ roots: [Node]) -> [Node] {
        orderGeneration &+= 1
        let mark = orderGeneration
        // Pass 1: pending nodes in post-order; slot -1: computed (not listed).
        var listed: [Node] = []
        var inputsOf: [[Node]] = []
        var depth: [Int] = []
        var stack: [(node: Node, inputs: [Node]?)] = roots.reversed().map { ($0, nil) }
        while let (node, expandedInputs) = stack.popLast() {
            guard let inputs = expandedInputs else {
                guard node.orderMark != mark else { continue }
                node.orderMark = mark
                node.orderSlot = -1  // computed, or not listed yet
                guard let inputs = node.pendingInputs else { continue }
                // Come back once the inputs are listed.
                stack.append((node, inputs))
                for input in inputs.reversed() where input.orderMark != mark { stack.append((input, nil)) }
                continue
            }
            var d = 0
            for input in inputs where input.orderSlot >= 0 { d = Swift.max(d, depth[input.orderSlot]) }
            node.orderSlot = listed.count
            listed.append(node)
            inputsOf.append(inputs)
            depth.append(d + 1)
        }
        // Pass 2: the same nodes by number, deepest input first.
        var order: [Node] = []
        order.reserveCapacity(listed.count)
        var done = [Bool](repeating: false, count: listed.count)
        var pending: [(slot: Int, expanded: Bool)] = []
        var children: [Int] = []
        for root in roots.reversed() where root.orderSlot >= 0 { pending.append((root.orderSlot, false)) }
        while let (slot, expanded) = pending.popLast() {
            if expanded {
                order.append(listed[slot])
                continue
            }
            guard !done[slot] else { continue }
            done[slot] = true
            pending.append((slot, true))
            children.removeAll(keepingCapacity: true)
            for input in inputsOf[slot] where input.orderSlot >= 0 {
                // Stable insertion by depth, deepest first.
                let s = input.orderSlot
                var i = children.count
                children.append(s)
                while i > 0 && depth[children[i - 1]] < depth[s] {
                    children[i] = children[i - 1]
                    i -= 1
                }
                children[i] = s
            }
            for s in children.reversed() where !done[s] { pending.append((s, false)) }
        }
        return order
    }

    /// `order` cut into maximal runs on one stream.
    static func runs(_ roots: [Node]) -> [Run] {
        var runs: [Run] = []
        for node in order(roots) {
            if let last = runs.last, last.stream == node.stream {
                last.nodes.append(node)
            } else {
                runs.append(Run(stream: node.stream, nodes: [node]))
            }
        }
        return runs
    }

    /// Consecutive nodes on one stream. Executing a run lets go of each node
    /// once it is computed, so an intermediate's buffer lives only as long as
    /// its consumers (which hold it as an input until they are computed).
    final class Run: @unchecked Sendable {
        let stream: Stream
        var nodes: [Node?]
        init(stream: Stream, nodes: [Node]) {
            self.stream = stream
            self.nodes = nodes
        }
    }

    /// Computes the run's nodes in order; called on their stream's worker.
    /// `tracing`: whether the caller is inside a transform's trace.
    static func execute(_ run: Run, tracing: Bool) throws {
        for i in run.nodes.indices {
            guard let node = run.nodes[i] else { continue }
            run.nodes[i] = nil
            let keepsInputs = node.retainsInputs && tracing
            guard var inputs = keepsInputs ? node.pendingInputs : node.takePendingInputs() else {
                continue  // computed meanwhile
            }
            let donor = keepsInputs ? nil : donatableInput(for: node, &inputs)
            let views = inputs.map { input -> ArrayView in
                guard let data = input.data else {
                    fatalError("[eval] input of \(node.primitive.name) was not computed before it")
                }
                return data
            }
            let output: ArrayView
            do {
                switch node.stream.device {
                case .cpu:
                    output = try CPUBackend.evaluate(
                        node.primitive, inputs: views, shape: node.shape, dtype: node.dtype,
                        donated: donor.map { views[$0] })
                case .gpu:
                    output = try CUDABackend.evaluate(
                        node.primitive, inputs: views, shape: node.shape, dtype: node.dtype, stream: node.stream.index)
                }
            } catch {
                if !keepsInputs { node.restoreInputs(inputs) }
                throw error
            }
            node.complete(with: output, whileTracing: tracing)
        }
    }

    /// Buffer donation: the index of an input of an element-wise node whose
    /// buffer the output may be written into, or nil. The input must be
    /// reachable from nothing but this node (its only reference is `inputs`,
    /// moved out of the node), own its buffer alone (no view of it elsewhere),
    /// and be a row-contiguous array of the output's shape and dtype that
    /// fills its buffer from offset 0. A sliceUpdate may take its base (input
    /// 0) and write the update in place: a key/value cache grows that way
    /// without copying what it holds.
    static func donatableInput(for node: Node, _ inputs: inout [Node]) -> Int? {
        let candidates: Range<Int>
        switch node.primitive {
        case .unary, .binary: candidates = inputs.indices
        case .sliceUpdate: candidates = 0..<1
        default: return nil
        }
        for i in candidates where isKnownUniquelyReferenced(&inputs[i]) {
            let input = inputs[i]
            // Ownership first: reading `data` below takes a reference of its own.
            guard input.dtype == node.dtype, input.shape == node.shape, input.stream == node.stream,
                input.ownsBufferUniquely, let view = input.data, view.offset == 0,
                view.strides == contiguousStrides(view.shape), view.buffer.byteCount == view.count * view.dtype.size
            else { continue }
            return i
        }
        return nil
    }

    /// Evaluates on the workers, blocking the caller until done.
    static func evaluate(_ roots: [Node], tracing: Bool = Tracing.isActive) throws {
        // Roots an asynchronous evaluation is computing: wait for just that
        // work, not for whatever was queued on the stream after it.
        for root in roots { root.inFlight?.wait() }
        try execute(plan: runs(roots), tracing: tracing)
    }

    /// Executes the runs in order, each on its stream's worker, blocking the caller.
    private static func execute(plan: [Run], tracing: Bool) throws {
        for run in plan {
            var failure: Error?
            StreamWorkers.shared.queue(for: run.stream).sync {
                do { try execute(run, tracing: tracing) } catch { failure = error }
            }
            if let failure { throw failure }
        }
    }

    /// Evaluates without blocking the caller; `completion` runs when done.
    static func evaluateAsync(_ roots: [Node], completion done: @escaping @Sendable (Error?) -> Void) {
        let plan = runs(roots)
        let tracing = Tracing.isActive
        guard !plan.isEmpty else { return done(nil) }
        let group = DispatchGroup()
        group.enter()
        for root in roots { root.markInFlight(group) }
        let completion: @Sendable (Error?) -> Void = { error in
            group.leave()
            done(error)
        }
        if plan.count == 1 {
            let run = plan[0]
            StreamWorkers.shared.queue(for: run.stream).async {
                do {
                    try execute(run, tracing: tracing)
                    completion(nil)
                } catch { completion(error) }
            }
        } else {
            let runs = UncheckedBox(plan)
            DispatchQueue.global().async {
                do {
                    try execute(plan: runs.value, tracing: tracing)
                    completion(nil)
                } catch { completion(error) }
            }
        }
    }
}

/// Carries a value whose thread-safety the surrounding code guarantees.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Computes `tensors` (and everything they depend on) now.
///
/// Traps with a clear message if evaluation fails (out of memory past the
/// limit, a device that cannot run, a singular matrix), as MLX's `eval`
/// raises; use ``checkedEval(_:)`` or `try await evaluated()` to handle those
/// as errors. Library code on input-reachable paths (TesseraLM, the CLI,
/// file writers) uses the throwing forms.
public func eval(_ tensors: Tensor...) { eval(tensors) }

/// Computes `tensors` (and everything they depend on) now.
public func eval(_ tensors: [Tensor]) {
    do { try checkedEval(tensors) } catch { fatalError("[eval] \(error)") }
}

/// Computes `tensors`, throwing ``TesseraError`` (for example `outOfMemory`) on failure.
public func checkedEval(_ tensors: [Tensor]) throws {
    try Scheduler.evaluate(tensors.map(\.node))
}

/// Starts computing `tensors` and returns at once; a later `eval`, `item` or
/// read waits for the work in flight.
public func asyncEval(_ tensors: Tensor...) { asyncEval(tensors) }

/// Starts computing `tensors` and returns at once.
public func asyncEval(_ tensors: [Tensor]) {
    Scheduler.evaluateAsync(tensors.map(\.node)) { _ in }
}

/// Computes `tensors` without blocking the cooperative thread pool.
public func evaluate(_ tensors: [Tensor]) async throws {
    let roots = UncheckedBox(tensors.map(\.node))
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
        Scheduler.evaluateAsync(roots.value) { error in
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }
}

extension Tensor {
    /// This tensor, computed, without blocking the cooperative thread pool.
    ///
    /// ```swift
    /// let m = try await matmul(a, b).evaluated()
    /// ```
    public func evaluated() async throws -> Tensor {
        try await evaluate([self])
        return self
    }

    /// The computed view, evaluating first if needed.
    func view() -> ArrayView {
        if let data = node.data { return data }
        eval(self)
        return node.data!
    }
}
