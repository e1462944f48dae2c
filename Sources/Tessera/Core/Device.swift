// Devices and streams. The default device and stream are task-local, so
// `withDevice(.cpu) { ... }` scopes them to a task tree. Each stream owns a
// serial worker that runs its kernels in order.

import Dispatch
#if canImport(Glibc)
    import Glibc
#endif

/// Where a tensor is computed.
public enum Device: Hashable, Sendable, CustomStringConvertible {
    case cpu
    case gpu(Int)

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .gpu(let i): return "gpu(\(i))"
        }
    }

    @TaskLocal static var scoped: Device?

    /// The device new tensors go to: the innermost `withDevice`, else the GPU
    /// when one is usable, else the CPU.
    ///
    /// Until the CUDA kernels have passed `tessera selftest` on a real GPU
    /// (docs/GPU.md), a usable GPU becomes the default only when asked for with
    /// `TESSERA_DEFAULT_DEVICE=gpu`; `withDevice(.gpu(0))` works either way.
    public static var `default`: Device {
        if let d = scoped { return d }
        return gpuByDefault && CUDABackend.isAvailable ? .gpu(0) : .cpu
    }

    private static let gpuByDefault: Bool = {
        guard let value = getenv("TESSERA_DEFAULT_DEVICE") else { return false }
        return String(cString: value).lowercased().hasPrefix("gpu")
    }()
}

/// An ordered queue of work on one device. Tensors created on a stream are
/// computed by its worker, in order.
public struct Stream: Hashable, Sendable, CustomStringConvertible {
    public let device: Device
    public let index: Int

    /// The first stream of a device, used unless another is chosen.
    public static func defaultStream(_ device: Device) -> Stream { Stream(device: device, index: 0) }

    /// A new stream on `device`, with its own worker.
    public static func new(on device: Device) -> Stream {
        StreamWorkers.shared.makeStream(on: device)
    }

    @TaskLocal static var scoped: Stream?

    /// The stream new tensors go to in the current task.
    public static var current: Stream {
        if let s = scoped { return s }
        return defaultStream(Device.default)
    }

    public var description: String { "Stream(\(device), \(index))" }
}

/// Runs `body` with `device` as the default device of the current task tree.
public func withDevice<R>(_ device: Device, _ body: () throws -> R) rethrows -> R {
    try Stream.$scoped.withValue(Stream.defaultStream(device)) {
        try Device.$scoped.withValue(device, operation: body)
    }
}

/// Runs `body` with `device` as the default device of the current task tree.
public func withDevice<R>(_ device: Device, _ body: () async throws -> R) async rethrows -> R {
    try await Stream.$scoped.withValue(Stream.defaultStream(device)) {
        try await Device.$scoped.withValue(device, operation: body)
    }
}

/// Runs `body` with `stream` (and its device) as the defaults of the current task tree.
public func withStream<R>(_ stream: Stream, _ body: () throws -> R) rethrows -> R {
    try Stream.$scoped.withValue(stream) {
        try Device.$scoped.withValue(stream.device, operation: body)
    }
}

/// The serial worker of each stream.
final class StreamWorkers: @unchecked Sendable {
    static let shared = StreamWorkers()

    private let lock = Lock()
    private var queues: [Stream: DispatchQueue] = [:]
    private var nextIndex: [Device: Int] = [:]

    func queue(for stream: Stream) -> DispatchQueue {
        lock.withLock {
            if let q = queues[stream] { return q }
            let q = DispatchQueue(label: "tessera.\(stream.device).\(stream.index)")
            queues[stream] = q
            return q
        }
    }

    func makeStream(on device: Device) -> Stream {
        lock.withLock {
            let index = nextIndex[device, default: 1]
            nextIndex[device] = index + 1
            return Stream(device: device, index: index)
        }
    }
}
