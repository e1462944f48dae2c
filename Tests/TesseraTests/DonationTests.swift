// Buffer donation: chains reuse one buffer, and no donation where a view or another user needs it.

import XCTest

@testable import Tessera

/// Buffer donation: element-wise ops write into an input's buffer when nothing
/// else can see it, and never when a view, a user handle or another consumer
/// still needs it.
final class DonationTests: XCTestCase {
    let n = 1 << 18  // 1 MiB of float32

    func testChainOfUnaryOpsReusesOneBufferAndPeakDrops() {
        Memory.clearCache()
        let base = Tensor.full([n], value: 0.5, dtype: .float32)
        eval(base)
        let before = Memory.activeBytes
        Memory.resetPeak()
        // base + 1 needs a fresh buffer (the user holds base); each exp after
        // it may write in place.
        let y = exp(exp(exp(base + 1) * 0.25) - 1)
        eval(y)
        let peak = Memory.peakBytes - before
        XCTAssertLessThanOrEqual(peak, 4 * n + 4096, "one intermediate buffer, not two")
        let want = Foundation.exp(Foundation.exp(Foundation.exp(1.5) * 0.25) - 1)
        XCTAssertEqual(y.toArray(Float.self)[n - 1], Float(want), accuracy: Float(want) * 1e-6)
        XCTAssertEqual(base.toArray(Float.self)[0], 0.5, "the held input is untouched")
    }

    func testNoDonationIntoAViewsBufferOrAnInputOthersNeed() {
        let a = Tensor((0..<n).map { Float($0 % 7) })
        // x is dropped by the caller, but a slice view of it was computed and
        // is held: x's buffer must survive exp(x).
        func viewCase() -> (Tensor, Tensor) {
            let x = a + 1
            let v = x[0..<4]
            eval(v)
            return (exp(x), v)
        }
        let (y, v) = viewCase()
        eval(y)
        XCTAssertEqual(v.toArray(Float.self), [1, 2, 3, 4])
        XCTAssertEqual(y.toArray(Float.self)[1], Foundation.exp(2), accuracy: 1e-5)

        // x feeds two consumers: the first computed must not clobber it.
        func sharedCase() -> (Tensor, Tensor) {
            let x = a * 2
            return (exp(x), x + 3)
        }
        let (p, q) = sharedCase()
        eval(p, q)
        XCTAssertEqual(q.toArray(Float.self)[3], 9)
        XCTAssertEqual(p.toArray(Float.self)[3], Foundation.exp(6), accuracy: 1e-3)

        // x + x: the input appears twice; donating it is still safe for
        // element-wise ops, and the result must be right either way.
        func twiceCase() -> Tensor {
            let x = a - 1
            return x + x
        }
        XCTAssertEqual(twiceCase().toArray(Float.self)[2], 2)
    }

    /// A key/value cache's pattern: a buffer owned only by a chain of
    /// sliceUpdates is written in place, one window per step.
    func testSliceUpdateChainWritesItsBaseInPlace() {
        Memory.clearCache()
        var buffer = Tensor.zeros([n / 64, 64])
        eval(buffer)
        let before = Memory.activeBytes
        Memory.resetPeak()
        for step in 0..<8 {
            buffer[step..<(step + 1)] = Tensor.full([1, 64], value: Float(step + 1), dtype: .float32)
            eval(buffer)
        }
        XCTAssertLessThanOrEqual(Memory.peakBytes - before, 4096, "no copy of the 1 MiB buffer per step")
        let values = buffer.toArray(Float.self)
        XCTAssertEqual(values[0], 1)
        XCTAssertEqual(values[7 * 64 + 63], 8)
        XCTAssertEqual(values[8 * 64], 0)
    }

    func testNoSliceUpdateInPlaceWhenTheBaseIsHeldOrTheUpdateViewsIt() {
        let held = Tensor((0..<n).map { Float($0 % 7) }) * 1
        eval(held)
        var copy = held
        copy[0..<2] = Tensor([100, 200] as [Float])
        XCTAssertEqual(copy.toArray(Float.self)[0..<3], [100, 200, 2])
        XCTAssertEqual(held.toArray(Float.self)[0..<3], [0, 1, 2], "the held base is untouched")

        // The update is a view of the base: it must be read before the base is written.
        func shifted() -> Tensor {
            var x = Tensor((0..<n).map { Float($0 % 7) }) * 1
            x[1..<4] = x[0..<3]
            return x
        }
        XCTAssertEqual(shifted().toArray(Float.self)[0..<5], [0, 0, 1, 2, 4])
    }

    func testBinaryDonationWithBroadcastOperand() {
        func make() -> Tensor {
            let x = Tensor((0..<n).map { Float($0 % 5) }, shape: [n / 4, 4]) * 1
            return x - Tensor([1, 2, 3, 4] as [Float])
        }
        let r = make().toArray(Float.self)
        XCTAssertEqual(Array(r[0..<8]), [-1, -1, -1, -1, 3, -2, -2, -2])
    }
}

import Foundation
