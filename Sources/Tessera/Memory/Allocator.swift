// Allocators for one memory home, with a size-bucketed cache of freed blocks,
// active/peak/cache counters, a cache limit and a memory limit.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The raw operations of one kind of memory (host RAM, a device's memory).
protocol MemoryProvider: AnyObject, Sendable {
    /// A name for messages: "cpu", "gpu(0)".
    var name: String { get }
    /// The memory limit used until one is set.
    var defaultMemoryLimit: Int { get }
    func rawAllocate(_ bytes: Int) -> UnsafeMutableRawPointer?
    func rawFree(_ pointer: UnsafeMutableRawPointer)
}

/// Host memory from the C allocator, 64-byte aligned for SIMD kernels.
final class HostMemory: MemoryProvider {
    let name = "cpu"

    var defaultMemoryLimit: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && pageSize > 0 ? Int(Double(pages * pageSize) * 0.9) : Int.max
    }

    func rawAllocate(_ bytes: Int) -> UnsafeMutableRawPointer? {
        var p: UnsafeMutableRawPointer?
        return posix_memalign(&p, 64, max(bytes, 1)) == 0 ? p : nil
    }

    func rawFree(_ pointer: UnsafeMutableRawPointer) { free(pointer) }
}

/// One block handed out by an ``Allocator``.
struct Block: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    /// The bucket size actually reserved (≥ the requested size).
    let capacity: Int
}

/// A caching allocator over one ``MemoryProvider``.
///
/// Requests are rounded up to a bucket (powers of two up to 4 KiB, then whole
/// pages), freed blocks wait in a per-bucket cache for reuse, and the cache is
/// trimmed oldest-bucket-first when it passes the cache limit.
final class Allocator: @unchecked Sendable {
    let provider: MemoryProvider
    private let lock = Lock()
    private var cache: [Int: [UnsafeMutableRawPointer]] = [:]
    private(set) var activeBytes = 0
    private(set) var peakBytes = 0
    private(set) var cacheBytes = 0
    private var cacheLimit: Int
    private var memoryLimit: Int

    init(provider: MemoryProvider) {
        self.provider = provider
        memoryLimit = provider.defaultMemoryLimit
        cacheLimit = memoryLimit
    }

    static func bucketSize(_ bytes: Int) -> Int {
        if bytes <= 16 { return 16 }
        if bytes <= 4096 { return 1 << (Int.bitWidth - (bytes - 1).leadingZeroBitCount) }
        return (bytes + 4095) & ~4095
    }

    /// A block of at least `bytes`; throws `outOfMemory` past the memory limit
    /// (unless `ignoringLimit`) or when the system has no memory left.
    func allocate(_ bytes: Int, ignoringLimit: Bool = false) throws -> Block {
        let size = Self.bucketSize(bytes)
        let reused: UnsafeMutableRawPointer? = try lock.withLock {
            if let p = cache[size]?.popLast() {
                if cache[size]!.isEmpty { cache[size] = nil }
                cacheBytes -= size
                account(size)
                return p
            }
            if activeBytes + size > memoryLimit {
                freeCached(downTo: 0)
                if activeBytes + size > memoryLimit && !ignoringLimit {
                    throw TesseraError.outOfMemory(
                        requested: bytes, active: activeBytes, limit: memoryLimit, device: provider.name)
                }
            } else if activeBytes + cacheBytes + size > memoryLimit {
                freeCached(downTo: max(0, memoryLimit - activeBytes - size))
            }
            account(size)
            return nil
        }
        if let p = reused { return Block(pointer: p, capacity: size) }
        guard let p = provider.rawAllocate(size) else {
            lock.withLock { activeBytes -= size }
            throw TesseraError.outOfMemory(
                requested: bytes, active: activeBytes, limit: memoryLimit, device: provider.name)
        }
        return Block(pointer: p, capacity: size)
    }

    func free(_ block: Block) {
        let toRelease: UnsafeMutableRawPointer? = lock.withLock {
            activeBytes -= block.capacity
            guard cacheBytes + block.capacity <= cacheLimit else { return block.pointer }
            cache[block.capacity, default: []].append(block.pointer)
            cacheBytes += block.capacity
            return nil
        }
        if let p = toRelease { provider.rawFree(p) }
    }

    private func account(_ size: Int) {
        activeBytes += size
        peakBytes = max(peakBytes, activeBytes)
    }

    /// Frees cached blocks, largest first, until the cache holds at most `target` bytes. Lock held.
    private func freeCached(downTo target: Int) {
        for size in cache.keys.sorted(by: >) where cacheBytes > target {
            while cacheBytes > target, let p = cache[size]?.popLast() {
                if cache[size]!.isEmpty { cache[size] = nil }
                cacheBytes -= size
                provider.rawFree(p)
            }
        }
    }

    func clearCache() { lock.withLock { freeCached(downTo: 0) } }
    func resetPeak() { lock.withLock { peakBytes = activeBytes } }

    func setCacheLimit(_ limit: Int) -> Int {
        lock.withLock {
            let old = cacheLimit
            cacheLimit = max(0, limit)
            freeCached(downTo: cacheLimit)
            return old
        }
    }

    func setMemoryLimit(_ limit: Int) -> Int {
        lock.withLock {
            let old = memoryLimit
            memoryLimit = max(0, limit)
            return old
        }
    }

    var limits: (cache: Int, memory: Int) { lock.withLock { (cacheLimit, memoryLimit) } }
    var stats: (active: Int, peak: Int, cache: Int) { lock.withLock { (activeBytes, peakBytes, cacheBytes) } }
}
