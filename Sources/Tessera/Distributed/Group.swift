// Distributed groups: which processes take part in collectives, and through
// which backend. A process started by `tessera launch` finds its rank, the
// world size and the backend's settings in environment variables; with none
// set, the group is this process alone and every collective is the identity.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Errors of distributed communication: a backend that cannot start, a peer
/// that cannot be reached or died, an operation that passed its timeout.
public enum DistributedError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The requested backend is not available here (no library, no configuration).
    case backendUnavailable(backend: String, reason: String)
    /// The environment describes the world inconsistently (a bad rank, size or address).
    case badConfiguration(String)
    /// A peer could not be reached before the timeout.
    case unreachable(peer: Int, address: String, reason: String)
    /// A peer closed its connection or failed in the middle of an operation.
    case peerFailed(peer: Int, reason: String)
    /// An operation did not complete within the timeout.
    case timedOut(operation: String, seconds: Double)
    /// A library call failed (MPI), with the call and code.
    case backendError(String)
    /// The collective is not supported for this dtype or device.
    case unsupported(String)

    public var description: String {
        switch self {
        case let .backendUnavailable(backend, reason): return "distributed backend \(backend) unavailable: \(reason)"
        case let .badConfiguration(reason): return "distributed configuration: \(reason)"
        case let .unreachable(peer, address, reason): return "rank \(peer) at \(address) unreachable: \(reason)"
        case let .peerFailed(peer, reason): return "rank \(peer) failed: \(reason)"
        case let .timedOut(operation, seconds): return "\(operation) timed out after \(seconds) s"
        case let .backendError(message): return "distributed backend error: \(message)"
        case let .unsupported(message): return "distributed: \(message)"
        }
    }
}

/// One backend's view of a set of processes. Buffers are host memory, row
/// contiguous; every call blocks until done or throws.
protocol Communicator: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    var backendName: String { get }
    /// Reduces `count` elements of `dtype` in place across every rank.
    func allReduce(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, op: ReduceKind) throws
    /// `output` = the reduction of every rank's `input` (`count` elements; `output` may be `input`).
    func allReduce(
        from input: UnsafeRawPointer, into output: UnsafeMutableRawPointer, count: Int, dtype: DType, op: ReduceKind
    ) throws
    /// Rank r's `bytes` bytes land at `output + r * bytes` on every rank.
    func allGather(_ input: UnsafeRawPointer, bytes: Int, into output: UnsafeMutableRawPointer) throws
    func send(_ buffer: UnsafeRawPointer, bytes: Int, to peer: Int) throws
    func recv(_ buffer: UnsafeMutableRawPointer, bytes: Int, from peer: Int) throws
    /// The ranks of the same color, ordered by key then by rank.
    func split(color: Int, key: Int) throws -> Communicator
    /// Returns once a message from `peer` has begun to arrive, waiting with no
    /// timeout; throws if `peer` closes its connection first.
    func awaitMessage(from peer: Int) throws
}

extension Communicator {
    /// Backends that cannot watch for a message return at once (the receive then has its timeout).
    func awaitMessage(from peer: Int) throws {}

    /// A copy, then the in-place reduction (backends that can read one buffer and write another override it).
    func allReduce(
        from input: UnsafeRawPointer, into output: UnsafeMutableRawPointer, count: Int, dtype: DType, op: ReduceKind
    ) throws {
        if UnsafeRawPointer(output) != input { output.copyMemory(from: input, byteCount: count * dtype.size) }
        try allReduce(output, count: count, dtype: dtype, op: op)
    }
}

/// How a collective combines the ranks' values.
enum ReduceKind: String, Sendable {
    case sum, max, min
}

/// A set of processes that run collectives together (MLX's `Group`).
///
/// ```swift
/// let group = try Distributed(backend: .any)   // size 1 when nothing is configured
/// let total = allSum(x, group: group)           // lazy, like any op
/// ```
public final class Group: Sendable, CustomStringConvertible {
    /// The backends a group can run over.
    public enum Backend: String, Sendable, CaseIterable {
        /// The launcher's backend (`TESSERA_DISTRIBUTED_BACKEND`: mpi, nccl or ring),
        /// else MPI under mpirun, else the ring if configured, else a group of one.
        case any
        /// Open MPI, opened at run time (`libmpi.so.40`).
        case mpi
        /// Tessera's TCP ring (`TESSERA_RING_HOSTS`).
        case ring
        /// NVIDIA NCCL between GPUs, opened at run time (`libnccl.so.2`; NCCLBackend.swift).
        case nccl
    }

    let communicator: Communicator?
    /// This process's rank in the group, from 0.
    public let rank: Int
    /// The number of processes.
    public let size: Int

    init(communicator: Communicator?) {
        self.communicator = communicator
        rank = communicator?.rank ?? 0
        size = communicator?.size ?? 1
    }

    /// The group of every process this one was launched with.
    ///
    /// - Parameters:
    ///   - backend: which backend to use; `.any` takes the one the launcher configured.
    ///   - strict: throw when no multi-process world is configured, instead of
    ///     returning a group of one.
    public convenience init(backend: Backend = .any, strict: Bool = false) throws {
        self.init(communicator: try World.communicator(backend: backend, strict: strict))
    }

    /// The world as the launcher configured it, for collectives called without
    /// a group: a group of one when nothing is configured. When the configured
    /// backend cannot start, the group keeps the configured size and every
    /// collective on it throws that error at evaluation (never a silent group of one).
    public static var world: Group {
        do { return try Group(backend: .any) } catch {
            let size = DistributedEnvironment.value(DistributedEnvironment.worldSize).flatMap { Int($0) } ?? 2
            let failure = error as? DistributedError ?? .backendError("\(error)")
            return Group(communicator: FailedCommunicator(failure: failure, size: max(size, 2)))
        }
    }

    /// The group of this process alone (every collective the identity).
    public static let single = Group(communicator: nil)

    /// The backend's name ("single" for a group of one).
    public var backendName: String { communicator?.backendName ?? "single" }

    /// How the all-reduces travel: "shared memory" for a ring whose ranks
    /// share one host (RingSharedMemory.swift), "tcp" for the ring otherwise,
    /// else the backend's name.
    public var transportName: String { (communicator as? RingCommunicator)?.transportName ?? backendName }

    /// The processes of this group that passed the same `color`, ranked by
    /// `key` (then by rank in this group). Every rank must call it.
    public func split(color: Int, key: Int? = nil) throws -> Group {
        guard let communicator else { return self }
        return Group(communicator: try communicator.split(color: color, key: key ?? rank))
    }

    /// Waits, with no timeout, until a message from `peer` starts to arrive
    /// (then `recv` it); throws if `peer` exits or fails first. For a rank that
    /// idles until another has work for it (a tensor-parallel server's ranks).
    /// On the ring it watches the connections to `peer`; other backends return
    /// at once, and the receive that follows has the usual timeout.
    public func awaitMessage(from peer: Int) throws {
        guard let communicator else { throw DistributedError.badConfiguration("awaitMessage in a group of one") }
        guard peer >= 0, peer < size, peer != rank else {
            throw DistributedError.badConfiguration("peer \(peer) is not another rank of \(self)")
        }
        try communicator.awaitMessage(from: peer)
    }

    public var description: String { "Group(rank: \(rank), size: \(size), backend: \(backendName))" }
}

/// `Distributed(backend:strict:)` is the world group: `Distributed.init(backend: .ring)`.
public typealias Distributed = Group

/// The environment variables the launcher sets and the backends read.
public enum DistributedEnvironment {
    /// This process's rank.
    public static let rank = "TESSERA_RANK"
    /// The number of processes.
    public static let worldSize = "TESSERA_WORLD_SIZE"
    /// Which backend the launcher set up (`ring`, `mpi` or `nccl`).
    public static let backend = "TESSERA_DISTRIBUTED_BACKEND"
    /// The ring's `host:port` of every rank, comma-separated, in rank order.
    public static let ringHosts = "TESSERA_RING_HOSTS"
    /// TCP connections per pair of ranks in the ring (default 2).
    public static let ringConnections = "TESSERA_RING_CONNECTIONS"
    /// `0` keeps a same-host ring's all-reduces on TCP instead of shared memory (RingSharedMemory.swift).
    public static let ringSharedMemory = "TESSERA_RING_SHM"
    /// Seconds before connecting or any one operation fails (default 60).
    public static let timeout = "TESSERA_DIST_TIMEOUT"

    static func value(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }

    static var timeoutSeconds: Double {
        if let s = value(timeout), let t = Double(s), t > 0 { return t }
        return 60
    }
}

/// The world communicator, made once per backend and shared.
enum World {
    private static let lock = Lock()
    nonisolated(unsafe) private static var made: [Group.Backend: Communicator] = [:]

    static func communicator(backend: Group.Backend, strict: Bool) throws -> Communicator? {
        try lock.withLock {
            let configured = DistributedEnvironment.value(DistributedEnvironment.backend)
            var chosen = backend
            if backend == .any {
                if configured == "nccl" {
                    chosen = .nccl
                } else if configured == "mpi" || mpiLaunched {
                    chosen = .mpi
                } else if DistributedEnvironment.value(DistributedEnvironment.ringHosts) != nil {
                    chosen = .ring
                } else {
                    if strict {
                        throw DistributedError.backendUnavailable(
                            backend: "any", reason: "no distributed world configured (run under `tessera launch`)")
                    }
                    return nil
                }
            }
            if let existing = made[chosen] { return existing }
            let made1: Communicator?
            switch chosen {
            case .any: made1 = nil
            case .ring: made1 = try RingCommunicator.world()
            case .mpi:
                do { made1 = try MPICommunicator.world() } catch {
                    // `.any` under mpirun without a usable libmpi: fall back to the ring or to one process.
                    guard backend == .any, !strict else { throw error }
                    if DistributedEnvironment.value(DistributedEnvironment.ringHosts) != nil {
                        made1 = try RingCommunicator.world()
                    } else {
                        made1 = nil
                    }
                }
            case .nccl:
                // The id travels over the launcher's ring (kept: a later `.ring` group reuses it).
                var ring = made[.ring]
                if ring == nil, DistributedEnvironment.value(DistributedEnvironment.ringHosts) != nil,
                    (try? NCCLLibrary.shared()) != nil, CUDABackend.context != nil
                {
                    ring = try RingCommunicator.world()
                    made[.ring] = ring
                }
                made1 = try NCCLCommunicator.world(bootstrap: ring.map { Group(communicator: $0) })
            }
            if let made1 { made[chosen] = made1 }
            return made1
        }
    }

    /// Whether Open MPI's launcher started this process.
    static var mpiLaunched: Bool {
        DistributedEnvironment.value("OMPI_COMM_WORLD_SIZE") != nil
    }
}

/// The world of a backend that failed to start: every operation throws why.
final class FailedCommunicator: Communicator, @unchecked Sendable {
    let failure: DistributedError
    let rank: Int
    let size: Int
    var backendName: String { "unavailable" }

    init(failure: DistributedError, size: Int) {
        self.failure = failure
        self.size = size
        rank =
            DistributedEnvironment.value(DistributedEnvironment.rank).flatMap { Int($0) }.map {
                min(max($0, 0), size - 1)
            } ?? 0
    }

    func allReduce(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, op: ReduceKind) throws { throw failure }
    func allGather(_ input: UnsafeRawPointer, bytes: Int, into output: UnsafeMutableRawPointer) throws { throw failure }
    func send(_ buffer: UnsafeRawPointer, bytes: Int, to peer: Int) throws { throw failure }
    func recv(_ buffer: UnsafeMutableRawPointer, bytes: Int, from peer: Int) throws { throw failure }
    func split(color: Int, key: Int) throws -> Communicator { throw failure }
}
