// Memory: statistics, the buffer cache and its limit, the memory limit's typed
// error, host/device homes, and stream ordering of writes.

import Foundation
import XCTest

@testable import Tessera

/// Device memory for tests: host RAM posing as a device, counting transfers.
final class FakeDeviceMemory: DeviceMemory, @unchecked Sendable {
    let name = "fake-gpu"
    let defaultMemoryLimit = 1 << 30
    private let lock = NSLock()
    private var _uploads = 0, _downloads = 0
    private var _log: [String] = []
    var uploads: Int { lock.withLock { _uploads } }
    var downloads: Int { lock.withLock { _downloads } }
    /// The stream of each copy and every ordering and release, in call order.
    var log: [String] { lock.withLock { _log } }

    func rawAllocate(_ bytes: Int) -> UnsafeMutableRawPointer? { malloc(bytes) }
    func rawFree(_ pointer: UnsafeMutableRawPointer) { free(pointer) }
    func copyToDevice(_ device: UnsafeMutableRawPointer, from host: UnsafeRawPointer, bytes: Int, stream: Int) {
        lock.withLock {
            _uploads += 1
            _log.append("upload on \(stream)")
        }
        device.copyMemory(from: host, byteCount: bytes)
    }
    func copyToHost(_ host: UnsafeMutableRawPointer, from device: UnsafeRawPointer, bytes: Int, stream: Int) {
        lock.withLock {
            _downloads += 1
            _log.append("download on \(stream)")
        }
        host.copyMemory(from: device, byteCount: bytes)
    }
    func order(after writer: Int, before reader: Int) {
        lock.withLock { _log.append("\(reader) waits for \(writer)") }
    }
    let hasSeveralStreams = true
    func release(usedBy streams: [Int]) {
        lock.withLock { _log.append("release used by \(streams)") }
    }
}

final class MemoryTests: XCTestCase {
    override func tearDown() {
        Memory.setMemoryLimit(Int.max)
        Memory.setCacheLimit(Int.max)
    }

    func testStatsFollowAllocationsAndTheCache() {
        Memory.clearCache()
        Memory.resetPeak()
        let baseline = Memory.activeBytes
        XCTAssertEqual(Memory.cacheBytes, 0)
        var x: Tensor? = Tensor.zeros([1024, 256])  // 1 MiB
        eval(x!)
        XCTAssertEqual(Memory.activeBytes - baseline, 1 << 20)
        XCTAssertGreaterThanOrEqual(Memory.peakBytes - baseline, 1 << 20)
        x = nil
        XCTAssertEqual(Memory.activeBytes, baseline)
        XCTAssertGreaterThanOrEqual(Memory.cacheBytes, 1 << 20, "freed buffer waits in the cache")

        // The cached block is reused for a same-size request.
        let cached = Memory.cacheBytes
        let y = Tensor.ones([1024, 256])
        eval(y)
        XCTAssertEqual(Memory.cacheBytes, cached - (1 << 20))

        Memory.clearCache()
        XCTAssertEqual(Memory.cacheBytes, 0)
        Memory.resetPeak()
        XCTAssertEqual(Memory.peakBytes, Memory.activeBytes)
    }

    func testCacheLimitTrimsTheCache() {
        Memory.clearCache()
        Memory.setCacheLimit(0)
        var x: Tensor? = Tensor.zeros([4096])
        eval(x!)
        x = nil
        XCTAssertEqual(Memory.cacheBytes, 0)
    }

    func testMemoryLimitGivesATypedError() {
        let limit = Memory.activeBytes + (1 << 20)
        Memory.setMemoryLimit(limit)
        let big = Tensor.zeros([1 << 20])  // 4 MiB > the 1 MiB left
        XCTAssertThrowsError(try checkedEval([big])) { error in
            guard case TesseraError.outOfMemory(let requested, _, let lim, let device) = error as! TesseraError else {
                return XCTFail("expected outOfMemory, got \(error)")
            }
            XCTAssertEqual(requested, 4 << 20)
            XCTAssertEqual(lim, limit)
            XCTAssertEqual(device, "cpu")
        }
        Memory.setMemoryLimit(Int.max)
        XCTAssertNoThrow(try checkedEval([big]), "the graph stays evaluable once memory allows")
        XCTAssertEqual(big.sum().item(Float.self), 0)
    }

    func testBucketSizes() {
        XCTAssertEqual(Allocator.bucketSize(1), 16)
        XCTAssertEqual(Allocator.bucketSize(17), 32)
        XCTAssertEqual(Allocator.bucketSize(4096), 4096)
        XCTAssertEqual(Allocator.bucketSize(4097), 8192)
        XCTAssertEqual(Allocator.bucketSize(10_000), 12_288)
    }

    func testHostAndDeviceHomesStayCoherent() throws {
        let memory = FakeDeviceMemory()
        let home = DeviceHome(memory: memory)
        let buffer = Buffer(byteCount: 4 * MemoryLayout<Float>.size)

        // Host write, then device read: one upload, data intact.
        let h = try buffer.hostPointer(forWriting: true).assumingMemoryBound(to: Float.self)
        for i in 0..<4 { h[i] = Float(i) }
        var d = try buffer.devicePointer(on: home).assumingMemoryBound(to: Float.self)
        XCTAssertEqual(memory.uploads, 1)
        XCTAssertEqual((0..<4).map { d[$0] }, [0, 1, 2, 3])
        XCTAssertTrue(buffer.isHostValid && buffer.isDeviceValid)

        // A second device read needs no copy.
        _ = try buffer.devicePointer(on: home)
        XCTAssertEqual(memory.uploads, 1)

        // Device write invalidates the host home; the host read downloads.
        d = try buffer.devicePointer(on: home, forWriting: true).assumingMemoryBound(to: Float.self)
        XCTAssertFalse(buffer.isHostValid)
        for i in 0..<4 { d[i] = Float(10 + i) }
        let back = try buffer.hostPointer().assumingMemoryBound(to: Float.self)
        XCTAssertEqual(memory.downloads, 1)
        XCTAssertEqual((0..<4).map { back[$0] }, [10, 11, 12, 13])

        // Host write invalidates the device home: the next device read must not be stale.
        let h2 = try buffer.hostPointer(forWriting: true).assumingMemoryBound(to: Float.self)
        XCTAssertFalse(buffer.isDeviceValid)
        h2[0] = 42
        let d2 = try buffer.devicePointer(on: home).assumingMemoryBound(to: Float.self)
        XCTAssertEqual(memory.uploads, 2)
        XCTAssertEqual(d2[0], 42)

        // A tensor whose only valid copy is on the device reads back through the host home.
        let view = ArrayView(shape: [4], dtype: .float32, buffer: buffer, offset: 0, strides: [1])
        _ = try buffer.devicePointer(on: home, forWriting: true)
        XCTAssertEqual(Tensor(evaluated: view).toArray(Float.self), [42, 11, 12, 13])
        XCTAssertEqual(memory.downloads, 2)
        XCTAssertEqual(home.allocator.stats.active, Allocator.bucketSize(16))
    }

    func testStreamsWaitOnlyForAnotherStreamsWrites() throws {
        let memory = FakeDeviceMemory()
        let home = DeviceHome(memory: memory)
        var buffer: Buffer? = Buffer(byteCount: 16)

        // Written and read on stream 0 alone: no ordering at all.
        _ = try buffer!.devicePointer(on: home, stream: 0, forWriting: true)
        _ = try buffer!.devicePointer(on: home, stream: 0)
        XCTAssertEqual(memory.log, [])

        // Read on stream 2: it waits for the writer, once per read; a second read on 0 does not.
        _ = try buffer!.devicePointer(on: home, stream: 2)
        _ = try buffer!.devicePointer(on: home, stream: 0)
        XCTAssertEqual(memory.log, ["2 waits for 0"])

        // A write on stream 1 follows every other user (0 and 2); a read on 2 then waits for 1.
        _ = try buffer!.devicePointer(on: home, stream: 1, forWriting: true)
        _ = try buffer!.devicePointer(on: home, stream: 1)
        _ = try buffer!.devicePointer(on: home, stream: 2)
        XCTAssertEqual(memory.log, ["2 waits for 0", "1 waits for 0", "1 waits for 2", "2 waits for 1"])

        // The host read downloads on the last writer's stream; freeing names every user.
        _ = try buffer!.hostPointer()
        buffer = nil
        XCTAssertEqual(memory.log.suffix(2), ["download on 1", "release used by [0, 2, 1]"])

        // An upload goes on the reading stream, which then counts as the writer.
        let fresh = Buffer(byteCount: 16)
        _ = try fresh.hostPointer(forWriting: true)
        _ = try fresh.devicePointer(on: home, stream: 3)
        _ = try fresh.devicePointer(on: home, stream: 3)
        _ = try fresh.hostPointer()
        XCTAssertEqual(memory.log.suffix(1), ["upload on 3"])
    }

    func testStreamsToWaitFor() {
        XCTAssertEqual(Buffer.streamsToWaitFor(stream: 0, forWriting: false, writer: 0, users: [0]), [])
        XCTAssertEqual(Buffer.streamsToWaitFor(stream: 1, forWriting: false, writer: 0, users: [0]), [0])
        XCTAssertEqual(
            Buffer.streamsToWaitFor(stream: 1, forWriting: false, writer: 0, users: []), [],
            "a home no stream has written needs no wait")
        XCTAssertEqual(Buffer.streamsToWaitFor(stream: 1, forWriting: true, writer: 0, users: [0, 1, 2]), [0, 2])
        XCTAssertEqual(Buffer.streamsToWaitFor(stream: 0, forWriting: true, writer: 0, users: [0]), [])
    }
}
