// Device memory of one CUDA device: plain cuMemAlloc allocations (the
// Allocator in front caches and limits them), and copies through two reused
// pinned staging buffers so the memcpy of one chunk overlaps the DMA of the
// other. A copy goes on the CUDA stream of the Tessera stream it serves (an
// upload: the reader's; a download: the last writer's), so it is ordered with
// that stream's kernels; both wait for their stream before returning.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

final class CUDAMemory: DeviceMemory, @unchecked Sendable {
    /// Bytes per staging chunk (two are kept).
    static let stagingBytes = 8 << 20

    let device: CUDADevice
    let name: String
    let defaultMemoryLimit: Int
    private let lock = Lock()
    private var staging: [UnsafeMutableRawPointer] = []
    private var stagingDone: [CUhandle?] = []

    init(device: CUDADevice) throws {
        self.device = device
        name = "gpu(\(device.ordinal))"
        var free = 0, total = 0
        try device.driver.check(device.driver.cuMemGetInfo(&free, &total), "cuMemGetInfo")
        defaultMemoryLimit = Self.defaultLimit(freeBytes: free)
    }

    /// 90% of the memory free when Tessera starts.
    static func defaultLimit(freeBytes: Int) -> Int { Int(Double(freeBytes) * 0.9) }

    func rawAllocate(_ bytes: Int) -> UnsafeMutableRawPointer? {
        var address: CUdeviceptr = 0
        guard (try? device.makeCurrent()) != nil, device.driver.cuMemAlloc(&address, bytes) == 0 else { return nil }
        return UnsafeMutableRawPointer(bitPattern: UInt(address))
    }

    func rawFree(_ pointer: UnsafeMutableRawPointer) {
        // Frees wait for kernels still using the block (cuMemFree synchronizes).
        _ = try? device.makeCurrent()
        _ = device.driver.cuMemFree(CUdeviceptr(UInt(bitPattern: pointer)))
    }

    func order(after writer: Int, before reader: Int) throws {
        try device.order(after: writer, before: reader)
    }

    var hasSeveralStreams: Bool { device.usesSeveralStreams }

    /// On one stream alone, stream order keeps a reused block safe; once
    /// several streams run, every stream's later work (a reuse of the block)
    /// waits for the work its users queued so far. No host wait.
    func release(usedBy streams: [Int]) {
        do {
            for user in streams {
                for other in device.streamIndices where other != user { try device.order(after: user, before: other) }
            }
        } catch {
            fatalError("[gpu] ordering streams on \(name) failed: \(error)")
        }
    }

    func copyToDevice(_ deviceAddress: UnsafeMutableRawPointer, from host: UnsafeRawPointer, bytes: Int, stream: Int) {
        transfer(stream) { driver, stream, buffers, done in
            var offset = 0, chunk = 0
            while offset < bytes {
                let n = min(Self.stagingBytes, bytes - offset), slot = chunk % 2
                try driver.check(driver.cuEventSynchronize(done[slot]), "cuEventSynchronize")
                buffers[slot].copyMemory(from: host + offset, byteCount: n)
                try driver.check(
                    driver.cuMemcpyHtoDAsync(
                        CUdeviceptr(UInt(bitPattern: deviceAddress + offset)), buffers[slot], n, stream),
                    "cuMemcpyHtoDAsync")
                try driver.check(driver.cuEventRecord(done[slot], stream), "cuEventRecord")
                offset += n
                chunk += 1
            }
            try driver.check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
        }
    }

    func copyToHost(_ host: UnsafeMutableRawPointer, from deviceAddress: UnsafeRawPointer, bytes: Int, stream: Int) {
        transfer(stream) { driver, stream, buffers, done in
            // Chunk i+1's download is queued before chunk i is copied out.
            var pending: [(offset: Int, count: Int, slot: Int)] = []
            var offset = 0, chunk = 0
            func enqueue() throws {
                guard offset < bytes else { return }
                let n = min(Self.stagingBytes, bytes - offset), slot = chunk % 2
                try driver.check(
                    driver.cuMemcpyDtoHAsync(
                        buffers[slot], CUdeviceptr(UInt(bitPattern: deviceAddress + offset)), n, stream),
                    "cuMemcpyDtoHAsync")
                try driver.check(driver.cuEventRecord(done[slot], stream), "cuEventRecord")
                pending.append((offset, n, slot))
                offset += n
                chunk += 1
            }
            try enqueue()
            while !pending.isEmpty {
                try enqueue()
                let next = pending.removeFirst()
                try driver.check(driver.cuEventSynchronize(done[next.slot]), "cuEventSynchronize")
                (host + next.offset).copyMemory(from: buffers[next.slot], byteCount: next.count)
            }
        }
    }

    /// Runs a copy with the staging buffers (allocated on first use); a
    /// failing copy is a broken device, which no caller can recover from.
    private func transfer(
        _ stream: Int, _ body: (CUDADriver, CUhandle?, [UnsafeMutableRawPointer], [CUhandle?]) throws -> Void
    ) {
        lock.withLock {
            do {
                try device.makeCurrent()
                let driver = device.driver
                while staging.count < 2 {
                    var p: UnsafeMutableRawPointer?
                    try driver.check(driver.cuMemAllocHost(&p, Self.stagingBytes), "cuMemAllocHost")
                    var event: CUhandle?
                    try driver.check(driver.cuEventCreate(&event, 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate")
                    try driver.check(driver.cuEventRecord(event, device.stream), "cuEventRecord")
                    staging.append(p!)
                    stagingDone.append(event)
                }
                try body(driver, try device.stream(stream), staging, stagingDone)
            } catch {
                fatalError("[gpu] copy between host and \(name) failed: \(error)")
            }
        }
    }
}
