// Buffer: one logical allocation with up to two homes, host memory and device
// memory, each with a valid bit. Kernels on a device read the device home
// (uploading first if only the host copy is valid); host access reads the
// host home (downloading first if needed). Writing a home invalidates the other.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory of a device that needs explicit copies to and from the host.
protocol DeviceMemory: MemoryProvider {
    func copyToDevice(_ device: UnsafeMutableRawPointer, from host: UnsafeRawPointer, bytes: Int)
    func copyToHost(_ host: UnsafeMutableRawPointer, from device: UnsafeRawPointer, bytes: Int)
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
        if let device, let deviceHome { deviceHome.allocator.free(device) }
    }

    var isHostValid: Bool { lock.withLock { hostValid } }
    var isDeviceValid: Bool { lock.withLock { deviceValid } }

    /// The host home, made current. Writing makes it the only valid home.
    func hostPointer(forWriting: Bool = false) throws -> UnsafeMutableRawPointer {
        try lock.withLock {
            if host == nil { host = try Buffer.hostAllocator.allocate(byteCount) }
            let h = host!.pointer
            if !hostValid && !forWriting, deviceValid, let device, let deviceHome {
                deviceHome.memory.copyToHost(h, from: device.pointer, bytes: byteCount)
            }
            hostValid = true
            if forWriting { deviceValid = false }
            return h
        }
    }

    /// The home on `home`'s device, made current. Writing makes it the only valid home.
    func devicePointer(on home: DeviceHome, forWriting: Bool = false) throws -> UnsafeMutableRawPointer {
        try lock.withLock {
            if device == nil {
                device = try home.allocator.allocate(byteCount)
                deviceHome = home
            }
            precondition(deviceHome!.allocator === home.allocator, "a buffer lives on one device")
            let d = device!.pointer
            if !deviceValid && !forWriting, hostValid, let host {
                home.memory.copyToDevice(d, from: host.pointer, bytes: byteCount)
            }
            deviceValid = true
            if forWriting { hostValid = false }
            return d
        }
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
}
