// The lazy graph: laziness, release of evaluated inputs, deep chains, async
// evaluation, evaluation order and views of computed tensors.

import Foundation
import XCTest

@testable import Tessera

/// Laziness, evaluation, release of inputs, long chains, async and concurrent evaluation.
final class GraphTests: XCTestCase {
    func testOpsAreLazyUntilEvaluated() {
        let a = Tensor([1, 2, 3] as [Float])
        let b = exp(a) * 2
        XCTAssertTrue(a.isEvaluated)
        XCTAssertFalse(b.isEvaluated)
        eval(b)
        XCTAssertTrue(b.isEvaluated)
        XCTAssertEqual(b.toArray(Float.self), [1, 2, 3].map { 2 * Foundation.exp(Float($0)) })
    }

    func testEvaluatedNodesReleaseTheirInputs() {
        let baseline = Memory.activeBytes
        var x: Tensor? = Tensor.ones([1 << 16])
        var y: Tensor? = x! + 1
        var z: Tensor? = y! * 3
        y = nil
        x = nil
        eval(z!)
        // Only z's own buffer (256 KiB) is still held: the constant and y were freed.
        XCTAssertNil(z!.node.pendingInputs)
        XCTAssertEqual(Memory.activeBytes - baseline, 1 << 18)
        XCTAssertEqual(z!.sum().item(Float.self), 6 * Float(1 << 16))
        z = nil
        XCTAssertEqual(Memory.activeBytes, baseline)
    }

    func testHundredThousandNodeChainEvaluatesAndFrees() {
        let baseline = Memory.activeBytes
        do {
            var x = Tensor(0 as Int32)
            for _ in 0..<100_000 { x = x + 1 }
            XCTAssertEqual(x.item(Int.self), 100_000)
        }
        do {
            // Dropping an unevaluated chain must not recurse once per node either.
            var x = Tensor(0 as Int32)
            for _ in 0..<100_000 { x = x + 1 }
            _ = x.shape
        }
        XCTAssertEqual(Memory.activeBytes, baseline)
    }

    func testAsyncEvaluation() async throws {
        let a = Tensor.arange(0, 1000, dtype: .float32)
        let s = try await (a * a).sum().evaluated()
        XCTAssertTrue(s.isEvaluated)
        XCTAssertEqual(s.item(Double.self), 332_833_500, accuracy: 64)  // float32 spacing there is 32

        let b = sqrt(a)
        asyncEval(b)
        XCTAssertEqual(b[4].item(Float.self), 2)
    }

    func testReshapesFoldAndUnitAxisTransposesAreReshapes() {
        let x = exp(Tensor.arange(0, 12, dtype: .float32) / 10)  // pending
        let r = x.reshaped([1, 3, 4]).reshaped([3, 1, 4])
        XCTAssertTrue(
            r.inputs.count == 1 && r.inputs[0].node === x.node, "a reshape of a pending reshape reshapes its input")
        XCTAssertTrue(x.reshaped([3, 4]).reshaped([12]).node === x.node)
        // [3, 1, 4] → [1, 3, 4]: only the unit axis moves.
        let t = r.transposed(axes: [1, 0, 2])
        guard case .reshape = t.node.primitive else { return XCTFail("\(t.node.primitive.name)") }
        XCTAssertTrue(t.inputs[0].node === x.node)
        let moved = x.reshaped([3, 4]).transposed()  // a real transpose stays one
        guard case .transpose = moved.node.primitive else { return XCTFail("\(moved.node.primitive.name)") }
        let expected = (0..<12).map { Float(Foundation.exp(Double($0) / 10)) }
        for (got, want) in zip(t.toArray(Float.self), expected) { XCTAssertEqual(got, want, accuracy: 1e-6) }
        XCTAssertEqual(t.shape, [1, 3, 4])
        for (got, want) in zip(moved.toArray(Float.self), [0, 4, 8].map { expected[$0] }) {
            XCTAssertEqual(got, want, accuracy: 1e-6)
        }
    }

    func testReadingAnAsyncResultWaitsOnlyForItsOwnWork() {
        let stream = Stream.new(on: .cpu)
        let queue = StreamWorkers.shared.queue(for: stream)
        let before = DispatchSemaphore(value: 0), after = DispatchSemaphore(value: 0)
        queue.async { before.wait() }  // holds the stream until `a` is being read
        let a = withStream(stream) { Tensor.arange(0, 8, dtype: .float32) * 3 }
        asyncEval(a)
        queue.async { after.wait() }  // later work on the stream, held throughout
        let read = DispatchSemaphore(value: 0)
        let values = Locked<[Float]>([])
        Thread {
            let v = a.toArray(Float.self)
            values.withLock { $0 = v }
            read.signal()
        }.start()
        before.signal()
        let outcome = read.wait(timeout: .now() + 60)
        after.signal()
        XCTAssertEqual(outcome, .success, "reading `a` waited for the work queued after it")
        if outcome == .timedOut { _ = read.wait(timeout: .now() + 60) }
        XCTAssertEqual(values.withLock { $0 }, [0, 3, 6, 9, 12, 15, 18, 21])
    }

    func testOrderPutsInputsFirstAndTheDeepestInputBeforeShorterOnes() {
        let a = Tensor([1, 2, 3] as [Float])
        let short = a + Tensor([1, 1, 1] as [Float])
        let e1 = -a, e2 = -e1, e3 = -e2
        let shared = short * Tensor([2, 2, 2] as [Float])  // reached twice below, listed once
        let root = (shared + e3) + shared
        let order = Scheduler.order([root.node])
        let ids = order.map(ObjectIdentifier.init)
        func at(_ t: Tensor) -> Int? { ids.firstIndex(of: ObjectIdentifier(t.node)) }
        // Every pending node once, the computed constant not at all.
        XCTAssertEqual(order.count, 7)
        XCTAssertEqual(Set(ids).count, 7)
        XCTAssertNil(at(a))
        // `shared + e3` takes its deeper input (the negations, depth 3) first.
        XCTAssertEqual(order.prefix(3).map(ObjectIdentifier.init), [e1, e2, e3].map { ObjectIdentifier($0.node) })
        XCTAssertEqual(at(short), 3)
        XCTAssertEqual(at(shared), 4)
        XCTAssertEqual(at(root), 6)
        // Ordering again (nothing computed yet) gives the same list; once computed, nothing.
        XCTAssertEqual(Scheduler.order([root.node]).map(ObjectIdentifier.init), ids)
        eval(root)
        XCTAssertTrue(Scheduler.order([root.node, e2.node]).isEmpty)
        let v = [Float]([1, 2, 3]).map { x in 2 * (x + 1) - x + 2 * (x + 1) }
        XCTAssertEqual(root.toArray(Float.self), v)
    }

    func testViewsOfComputedTensorsAreMadeAtOnceOutsideTraces() {
        let a = Tensor((0..<6).map(Float.init), shape: [2, 3])
        let t = a.transposed(axes: [1, 0])
        let b = a.broadcast(to: [4, 2, 3])
        let r = a.reshaped([3, 2])
        let s = a[0..., 1...]
        for view in [t, b, r, s] {
            XCTAssertTrue(view.isEvaluated)
            XCTAssertTrue(view.inputs.isEmpty)
        }
        XCTAssertEqual(t.toArray(Float.self), [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(b.sum().item(Float.self), 60)
        XCTAssertEqual(r.toArray(Float.self), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(s.toArray(Float.self), [1, 2, 4, 5])
        // A reshape that needs a copy, and a view of a pending tensor, stay lazy.
        let copied = t.reshaped([6])
        let pending = exp(a).transposed(axes: [1, 0])
        XCTAssertFalse(copied.isEvaluated)
        XCTAssertFalse(pending.isEvaluated)
        XCTAssertEqual(copied.toArray(Float.self), [0, 3, 1, 4, 2, 5])
        // A transform's trace keeps the graph.
        let traced = Tracing.with(true) { a.transposed(axes: [1, 0]) }
        XCTAssertFalse(traced.isEvaluated)
        XCTAssertEqual(traced.inputs.count, 1)
        XCTAssertEqual(traced.toArray(Float.self), [0, 3, 1, 4, 2, 5])
    }

    func testSixteenTasksEvaluatingOverlappingGraphs() async {
        let shared = Tensor.arange(0, 10_000, dtype: .float32)
        let common = sqrt(shared) + 1  // one node every task depends on
        let results = await withTaskGroup(of: (Int, Double).self) { group in
            for i in 0..<16 {
                group.addTask {
                    let mine = (common * Float(i) + shared).sum()
                    try? await evaluate([mine])
                    return (i, mine.item(Double.self))
                }
            }
            var out: [Int: Double] = [:]
            for await (i, v) in group { out[i] = v }
            return out
        }
        let roots = (0..<10_000).map { (Double($0).squareRoot() + 1) }
        let rootSum = roots.reduce(0, +)
        let plain = (0..<10_000).reduce(0.0) { $0 + Double($1) }
        for i in 0..<16 {
            XCTAssertEqual(results[i]!, Double(i) * rootSum + plain, accuracy: 1e-4 * (Double(i) * rootSum + plain))
        }
    }

    func testConcurrentSynchronousEvalOfOneGraph() {
        let x = Tensor.linspace(-1, 1, count: 4096)
        let y = tanh(x * 3).sum()
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            let v = y.item(Double.self)
            XCTAssertEqual(v, 0, accuracy: 1e-3)
        }
    }

    func testStreamsHandOffResults() {
        let other = Stream.new(on: .cpu)
        let a = withStream(other) { Tensor.arange(0, 10, dtype: .float32) * 2 }
        XCTAssertEqual(a.node.stream, other)
        let b = a + 1  // default stream, input from `other`
        XCTAssertEqual(b.toArray(Float.self), (0..<10).map { Float($0) * 2 + 1 })
    }

    func testWithDeviceScopesTheDefault() async {
        XCTAssertEqual(withDevice(.cpu) { Device.default }, .cpu)
        let d = await withDevice(.cpu) { () async -> Device in
            await Task { Device.default }.value
        }
        XCTAssertEqual(d, .cpu)
    }
}
