// Buffer: one logical allocation with up to two homes, host memory and device
// memory, each with a valid bit. Kernels on a device read the device home
// (uploading first if only the host copy is valid); host access reads the
// host home (downloading first if needed). Writing a home invalidates the other.
// A device home remembers the stream that last wrote it and the streams that
// used it: a use on another stream is ordered after that write (or, for a
// write, after every other user), and a download goes on the writer's stream.
// Use on one stream alone costs nothing extra.

import CTesseraKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Memory of a device that needs explicit copies to and from the host.
/// Streams are the indices of the device's Tessera streams; copies complete before returning.
protocol DeviceMemory: MemoryProvider {
    func copyToDevice(_ device: UnsafeMutableRawPointer, from host: UnsafeRawPointer, bytes: Int, stream: Int)
    func copyToHost(_ host: UnsafeMutableRawPointer, from device: UnsafeRawPointer, bytes: Int, stream: Int)
    /// Makes work queued later on `reader` wait for the work queued so far on `writer`.
    func order(after writer: Int, before reader: Int) throws
    /// Whether more than one stream has used this device (so a freed block,
    /// which any stream may take next, needs `release`).
    var hasSeveralStreams: Bool { get }
    /// Called before a block that `streams` used goes back to the allocator
    /// while several streams run: orders later work after theirs.
    func release(usedBy streams: [Int])
}

/// A device's memory and the caching allocator in front of it.
struct DeviceHome: @unchecked Sendable {
    let memory: DeviceMemory
    let allocator: Allocator

    init(memory: DeviceMemory) {
        self.memory = memory
        allocator = Allocator(provider: memory)
    }
}

final class Buffer: @unchecked Sendable {
    static let hostAllocator = Allocator(provider: HostMemory())

    let byteCount: Int
    private let lock = Lock()
    private var host: Block?
    /// Keeps memory Tessera did not allocate (a mapped file) alive; such a
    /// host home is never returned to the allocator.
    private var externalOwner: AnyObject?
    private var hostValid = false
    private var device: Block?
    private var deviceHome: DeviceHome?
    private var deviceValid = false
    /// The stream that last wrote the device home (or uploaded to it).
    private var deviceWriter = 0
    /// The first stream to use the device home (-1: none yet) and any others,
    /// kept apart so one stream alone allocates nothing.
    private var deviceUser = -1
    private var moreDeviceUsers: [Int] = []
    private var deviceUsers: [Int] { deviceUser < 0 ? [] : [deviceUser] + moreDeviceUsers }

    /// A buffer with no home yet; the first writer allocates one.
    init(byteCount: Int) {
        self.byteCount = byteCount
    }

    /// A buffer whose host home is memory owned by `owner` (for example a
    /// mapped file), valid from the start.
    init(external pointer: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject) {
        self.byteCount = byteCount
        host = Block(pointer: pointer, capacity: byteCount)
        externalOwner = owner
        hostValid = true
    }

    deinit {
        if let host, externalOwner == nil { Buffer.hostAllocator.free(host) }
        if let device, let deviceHome {
            if deviceUser >= 0, deviceHome.memory.hasSeveralStreams { deviceHome.memory.release(usedBy: deviceUsers) }
            deviceHome.allocator.free(device)
        }
    }

    /// For a buffer over a memory-mapped file (``MappedFile``, a private
    /// mapping): returns the whole pages inside it to the kernel
    /// (madvise MADV_DONTNEED), so they leave the process's resident set; a
    /// later read faults the file's bytes back in. Pages shared with the
    /// neighbouring bytes are kept. Values written into the mapping (a donated
    /// buffer) would be lost, so only for data that is read and finished with.
    /// Returns the bytes released (0 for any other buffer).
    func releaseMappedPages() -> Int {
        lock.withLock {
            guard externalOwner is MappedFile, let host, byteCount > 0 else { return 0 }
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            guard page > 0 else { return 0 }
            let base = Int(bitPattern: host.pointer)
            let start = (base + page - 1) / page * page, end = (base + byteCount) / page * page
            guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start),
                madvise(p, end - start, Int32(MADV_DONTNEED)) == 0
            else { return 0 }
            return end - start
        }
    }

    var isHostValid: Bool { lock.withLock { hostValid } }
    var isDeviceValid: Bool { lock.withLock { deviceValid } }

    /// The host home, made current. Writing makes it the only valid home.
    /// `ignoringLimit`: allocate past the memory limit (for copies of data the
    /// caller already holds in memory, such as a tensor made from a Swift array).
    func hostPointer(forWriting: Bool = false, ignoringLimit: Bool = false) throws -> UnsafeMutableRawPointer {
        try lock.withLock {
            if host == nil { host = try Buffer.hostAllocator.allocate(byteCount, ignoringLimit: ignoringLimit) }
            let h = host!.pointer
            if !hostValid && !forWriting, deviceValid, let device, let deviceHome {
                deviceHome.memory.copyToHost(h, from: device.pointer, bytes: byteCount, stream: deviceWriter)
            }
            hostValid = true
            if forWriting { deviceValid = false }
            return h
        }
    }

    /// The home on `home`'s device, made current for work queued next on
    /// `stream`. Writing makes it the only valid home.
    func devicePointer(on home: DeviceHome, stream: Int = 0, forWriting: Bool = false) throws -> UnsafeMutableRawPointer
    {
        try lock.withLock {
            if device == nil {
                device = try home.allocator.allocate(byteCount)
                deviceHome = home
            }
            precondition(deviceHome!.allocator === home.allocator, "a buffer lives on one device")
            let d = device!.pointer
            if !deviceValid && !forWriting, hostValid, let host {
                home.memory.copyToDevice(d, from: host.pointer, bytes: byteCount, stream: stream)
                deviceWriter = stream
            }
            if deviceUser < 0 {
                deviceUser = stream
            } else if deviceUser != stream || !moreDeviceUsers.isEmpty || deviceWriter != stream {
                for other in Buffer.streamsToWaitFor(
                    stream: stream, forWriting: forWriting, writer: deviceWriter, users: deviceUsers)
                {
                    try home.memory.order(after: other, before: stream)
                }
                if deviceUser != stream && !moreDeviceUsers.contains(stream) { moreDeviceUsers.append(stream) }
            }
            deviceValid = true
            if forWriting {
                hostValid = false
                deviceWriter = stream
            }
            return d
        }
    }

    /// The streams whose queued work a use of the device home on `stream` must
    /// follow: a read follows the last writer, a write every other user.
    static func streamsToWaitFor(stream: Int, forWriting: Bool, writer: Int, users: [Int]) -> [Int] {
        if forWriting { return users.filter { $0 != stream } }
        return users.contains(writer) && writer != stream ? [writer] : []
    }
}

/// Memory statistics and limits of the host allocator (the one CPU tensors use).
public enum Memory {
    /// Bytes held by live tensors (rounded up to allocation buckets).
    public static var activeBytes: Int { Buffer.hostAllocator.stats.active }
    /// The highest `activeBytes` since start or the last `resetPeak()`.
    public static var peakBytes: Int { Buffer.hostAllocator.stats.peak }
    /// Bytes freed by tensors and kept for reuse.
    public static var cacheBytes: Int { Buffer.hostAllocator.stats.cache }
    public static var cacheLimit: Int { Buffer.hostAllocator.limits.cache }
    public static var memoryLimit: Int { Buffer.hostAllocator.limits.memory }

    /// Sets how many freed bytes may be cached; returns the previous limit.
    @discardableResult
    public static func setCacheLimit(_ bytes: Int) -> Int { Buffer.hostAllocator.setCacheLimit(bytes) }

    /// Sets the most bytes live tensors may hold (past it, evaluation reports
    /// `TesseraError.outOfMemory`); returns the previous limit.
    @discardableResult
    public static func setMemoryLimit(_ bytes: Int) -> Int { Buffer.hostAllocator.setMemoryLimit(bytes) }

    /// Returns every cached block to the system.
    public static func clearCache() { Buffer.hostAllocator.clearCache() }

    /// Starts `peakBytes` again from the current `activeBytes`.
    public static func resetPeak() { Buffer.hostAllocator.resetPeak() }

    /// Lets the C allocator (glibc) keep at most `count` arenas: threads started
    /// later share them instead of each taking its own, whose freed memory no
    /// other thread reuses (glibc's default allows 8 per core). Call before the
    /// threads start; false where the C library has no such setting.
    @discardableResult
    public static func limitMallocArenas(_ count: Int) -> Bool { tk_limit_malloc_arenas(Int32(clamping: count)) != 0 }

    /// Lets the C allocator (glibc) give every block of at least `bytes` a mapping
    /// of its own, unmapped when freed, and keeps that threshold fixed (glibc
    /// otherwise raises it to the largest such block freed, up to 32 MiB, after
    /// which the load's freed temporaries stay as holes in the arenas). False
    /// where the C library has no such setting or `bytes` is not in 1...32 MiB.
    @discardableResult
    public static func setMallocMappingThreshold(_ bytes: Int) -> Bool {
        tk_set_malloc_mmap_threshold(bytes) != 0
    }

    /// Returns the whole free pages inside the C allocator's arenas to the system
    /// (glibc's malloc_trim); true when some were.
    @discardableResult
    public static func releaseFreeMallocPages() -> Bool { tk_malloc_trim() != 0 }

    /// The C allocator's arenas and byte totals now (glibc's malloc_info and
    /// mallinfo2); nil where the C library does not report them.
    public static func mallocStatistics() -> MallocStatistics? {
        var raw = tk_malloc_stats_t()
        guard tk_malloc_stats(&raw) != 0 else { return nil }
        return MallocStatistics(
            arenas: raw.arenas, heapBytes: Int(raw.heap_bytes), inUseBytes: Int(raw.in_use_bytes),
            freeBytes: Int(raw.free_bytes), mappedBytes: Int(raw.mmapped_bytes))
    }
}

/// What the C allocator holds (``Memory/mallocStatistics()``).
public struct MallocStatistics: Sendable, Equatable {
    /// Arenas, the main one included: a thread that allocates before
    /// ``Memory/limitMallocArenas(_:)`` keeps its own.
    public var arenas: Int
    /// Bytes the arenas took from the system (brk heap and arena heaps).
    public var heapBytes: Int
    /// Of those, bytes handed out.
    public var inUseBytes: Int
    /// Of those, bytes free inside the arenas (resident once touched, until trimmed).
    public var freeBytes: Int
    /// Bytes in blocks of their own mmap (returned to the system when freed).
    public var mappedBytes: Int
}
