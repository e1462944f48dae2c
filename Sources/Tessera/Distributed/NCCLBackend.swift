// The NCCL backend of Tessera.Distributed: NVIDIA's collectives between
// GPUs. libnccl.so.2 is opened at run time like the other CUDA libraries
// (TESSERA_NCCL_PATH, the nvidia-nccl-cu12 wheel under site-packages, the
// toolkit folders, then the dynamic loader; Runtime/CUDALibraries.swift), so
// nothing about NCCL is needed to build. Setting up a communicator:
//   1. rank 0 makes an ncclUniqueId (ncclGetUniqueId);
//   2. every rank gets those 128 bytes through the launcher's bootstrap
//      (NCCLBootstrap: TESSERA_NCCL_ID as hex, or a file named by
//      TESSERA_NCCL_ID_FILE, or else the TCP ring `tessera launch --backend
//      nccl` sets up, over which rank 0's bytes are all-gathered);
//   3. ncclCommInitRankConfig, non-blocking, on this rank's GPU (the CUDA
//      backend opens device RankDevice.ordinal: the local rank's, so ranks of
//      one host take different GPUs), polled with TESSERA_DIST_TIMEOUT: a
//      rank that never joins, or a collective that never completes, aborts the
//      communicator and ends the rank with `timedOut` (RankDevice.swift).
// The collectives take device pointers and a CUDA stream (`allReduce`,
// `allGather`, `reduceScatter`, `send`, `recv` below); the host-buffer
// `Communicator` calls that the lazy collectives use stage through device
// memory. Without libnccl or without a GPU, `Group(backend: .nccl)` throws
// `DistributedError.backendUnavailable` saying which and how to fix it.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import CTesseraKernels

/// NCCL's functions, looked up with dlsym (signatures as nccl.h declares them).
final class NCCLLibrary: @unchecked Sendable {
    typealias Status = Int32  // ncclResult_t
    typealias Comm = OpaquePointer  // ncclComm_t
    typealias Reduce =
        @convention(c) (
            UnsafeRawPointer?, UnsafeMutableRawPointer?, Int, Int32, Int32, Comm?, CUhandle?
        ) -> Status

    let library: DynamicLibrary
    /// ncclCommInitRank, called through tk_nccl_comm_init_rank (its id is passed by value).
    let commInitRank: UnsafeRawPointer
    let getVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Status
    let getUniqueId: @convention(c) (UnsafeMutableRawPointer) -> Status
    let getErrorString: @convention(c) (Status) -> UnsafePointer<CChar>?
    let commDestroy: @convention(c) (Comm?) -> Status
    let allReduce: Reduce
    let reduceScatter: Reduce
    let allGather: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int, Int32, Comm?, CUhandle?) -> Status
    let send: @convention(c) (UnsafeRawPointer?, Int, Int32, Int32, Comm?, CUhandle?) -> Status
    let recv: @convention(c) (UnsafeMutableRawPointer?, Int, Int32, Int32, Comm?, CUhandle?) -> Status
    let groupStart: @convention(c) () -> Status
    let groupEnd: @convention(c) () -> Status
    /// ncclCommInitRankConfig (NCCL 2.14 and later; nil before: then init blocks, with no timeout).
    let commInitRankConfig: UnsafeRawPointer?
    /// ncclCommGetAsyncError and ncclCommAbort (NCCL 2.4 and later), for non-blocking communicators.
    let commGetAsyncError: (@convention(c) (Comm?, UnsafeMutablePointer<Status>) -> Status)?
    let commAbort: (@convention(c) (Comm?) -> Status)?
    /// ncclCommSplit (NCCL 2.18 and later; nil before).
    let commSplit:
        (@convention(c) (Comm?, Int32, Int32, UnsafeMutablePointer<Comm?>, UnsafeMutableRawPointer?) -> Status)?

    init(_ library: DynamicLibrary) throws {
        self.library = library
        guard let initRank = dlsym(library.handle, "ncclCommInitRank") else {
            throw TesseraError.libraryUnavailable("\(library.path) has no symbol ncclCommInitRank")
        }
        commInitRank = UnsafeRawPointer(initRank)
        getVersion = try library.function("ncclGetVersion")
        getUniqueId = try library.function("ncclGetUniqueId")
        getErrorString = try library.function("ncclGetErrorString")
        commDestroy = try library.function("ncclCommDestroy")
        allReduce = try library.function("ncclAllReduce")
        reduceScatter = try library.function("ncclReduceScatter")
        allGather = try library.function("ncclAllGather")
        send = try library.function("ncclSend")
        recv = try library.function("ncclRecv")
        groupStart = try library.function("ncclGroupStart")
        groupEnd = try library.function("ncclGroupEnd")
        commSplit = try? library.function("ncclCommSplit")
        commInitRankConfig = dlsym(library.handle, "ncclCommInitRankConfig").map { UnsafeRawPointer($0) }
        commGetAsyncError = try? library.function("ncclCommGetAsyncError")
        commAbort = try? library.function("ncclCommAbort")
    }

    /// The library, opened once; `backendUnavailable` naming what was tried when it is missing.
    static func shared() throws -> NCCLLibrary { try loaded.get() }

    private static let loaded: Result<NCCLLibrary, DistributedError> = {
        switch CUDALibrary.nccl.open() {
        case .success(let library):
            do { return .success(try NCCLLibrary(library)) } catch {
                return .failure(.backendUnavailable(backend: "nccl", reason: "\(error)"))
            }
        case .failure(let failure):
            return .failure(.backendUnavailable(backend: "nccl", reason: failure.description))
        }
    }()

    /// "2.21.5" from ncclGetVersion's 22105.
    var version: String {
        var v: Int32 = 0
        guard getVersion(&v) == 0 else { return "unknown" }
        let code = Int(v)
        return code >= 10000
            ? "\(code / 10000).\(code / 100 % 100).\(code % 100)" : "\(code / 1000).\(code / 100 % 10).\(code % 100)"
    }

    func check(_ status: Status, _ call: String) throws {
        guard status != 0 else { return }
        throw DistributedError.backendError("\(call): \(message(status))")
    }

    func message(_ status: Status) -> String {
        (getErrorString(status).map { String(cString: $0) } ?? "error \(status)") + " (ncclResult_t \(status))"
    }

    /// A non-blocking communicator's state: done, still in progress, or failed.
    func state(_ comm: Comm?) -> NCCLProgress.State {
        guard let commGetAsyncError else { return .done }
        var status: Status = 0
        let rc = commGetAsyncError(comm, &status)
        if rc != 0 { return .failed("ncclCommGetAsyncError: \(message(rc))") }
        if status == NCCLProgress.inProgress { return .pending }
        return status == 0 ? .done : .failed(message(status))
    }

    /// A fresh ncclUniqueId's bytes.
    func uniqueID() throws -> [UInt8] {
        var id = [UInt8](repeating: 0, count: NCCLBootstrap.idBytes)
        try check(id.withUnsafeMutableBytes { getUniqueId($0.baseAddress!) }, "ncclGetUniqueId")
        return id
    }
}

/// NCCL's element types and reductions (ncclDataType_t, ncclRedOp_t).
enum NCCLTypes {
    /// ncclDataType_t for a dtype; nil where NCCL has none (bool, int16,
    /// uint16, complex64: see `reduction(_:op:)` for how those reduce).
    static func code(_ dtype: DType) -> Int32? {
        switch dtype {
        case .int8: return 0
        case .uint8: return 1
        case .int32: return 2
        case .uint32: return 3
        case .int64: return 4
        case .uint64: return 5
        case .float16: return 6
        case .float32: return 7
        case .float64: return 8
        case .bfloat16: return 9
        case .bool, .int16, .uint16, .complex64: return nil
        }
    }

    static func op(_ kind: ReduceKind) -> Int32 {
        switch kind {
        case .sum: return 0  // ncclSum (ncclProd is 1)
        case .max: return 2
        case .min: return 3
        }
    }

    /// How `count` elements of `dtype` reduce with `op` in NCCL: (count, type),
    /// or nil when NCCL cannot (a sum of bools, 16-bit integers, a max of complex).
    static func reduction(_ dtype: DType, count: Int, op: ReduceKind) -> (count: Int, type: Int32)? {
        switch dtype {
        case .bool: return op == .sum ? nil : (count, 1)  // 0/1 bytes: max is any, min is all
        case .complex64: return op == .sum ? (2 * count, 7) : nil  // a sum of (re, im) float32 pairs
        default: return code(dtype).map { (count, $0) }
        }
    }
}

/// Gets rank 0's ncclUniqueId to every rank before ncclCommInitRank.
package enum NCCLBootstrap {
    package static let idBytes = 128  // NCCL_UNIQUE_ID_BYTES
    /// The id as 256 hex digits (set by whoever starts the ranks; every rank reads it).
    package static let idVariable = "TESSERA_NCCL_ID"
    /// A file rank 0 writes the id to (atomically) and the others wait for.
    package static let idFileVariable = "TESSERA_NCCL_ID_FILE"

    package static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out += [digits[Int(b >> 4)], digits[Int(b & 15)]] }
        return String(decoding: out, as: UTF8.self)
    }

    package static func parseHex(_ text: String) throws -> [UInt8] {
        let chars = Array(text.utf8)
        guard chars.count == 2 * idBytes else {
            throw DistributedError.badConfiguration(
                "\(idVariable) must be \(2 * idBytes) hex digits (an ncclUniqueId), got \(chars.count) characters")
        }
        func nibble(_ c: UInt8) throws -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: throw DistributedError.badConfiguration("\(idVariable) has a character that is not a hex digit")
            }
        }
        return try (0..<idBytes).map { try nibble(chars[2 * $0]) << 4 | nibble(chars[2 * $0 + 1]) }
    }

    /// Rank 0's id on every rank, from (in order) `TESSERA_NCCL_ID`,
    /// `TESSERA_NCCL_ID_FILE`, or an all-gather over `group` (the launcher's
    /// ring). `generate` runs on rank 0 only (ncclGetUniqueId).
    package static func uniqueID(
        rank: Int, environment: [String: String], timeout: Double, group: Group?, generate: () throws -> [UInt8]
    ) throws -> [UInt8] {
        if let text = environment[idVariable] { return try parseHex(text) }
        if let path = environment[idFileVariable], !path.isEmpty {
            return try throughFile(path, rank: rank, timeout: timeout, generate: generate)
        }
        guard let group, let communicator = group.communicator, group.size > 1 else {
            throw DistributedError.badConfiguration(
                "no way to share the NCCL id: set \(idVariable) or \(idFileVariable), or start the ranks with "
                    + "`tessera launch --backend nccl` (its TCP ring carries the id)")
        }
        return try over(communicator, generate: generate)
    }

    /// Every rank all-gathers `idBytes` bytes (rank 0's id, zeros elsewhere) and keeps rank 0's.
    static func over(_ communicator: Communicator, generate: () throws -> [UInt8]) throws -> [UInt8] {
        var mine = [UInt8](repeating: 0, count: idBytes)
        if communicator.rank == 0 {
            let id = try generate()
            guard id.count == idBytes else { throw DistributedError.backendError("an NCCL id of \(id.count) bytes") }
            mine = id
        }
        var all = [UInt8](repeating: 0, count: idBytes * communicator.size)
        try mine.withUnsafeBytes { input in
            try all.withUnsafeMutableBytes { output in
                try communicator.allGather(input.baseAddress!, bytes: idBytes, into: output.baseAddress!)
            }
        }
        return Array(all.prefix(idBytes))
    }

    /// Rank 0 writes the id to `path` (atomically: readers never see part of
    /// it); the others poll for it until `timeout` seconds pass.
    static func throughFile(_ path: String, rank: Int, timeout: Double, generate: () throws -> [UInt8]) throws
        -> [UInt8]
    {
        if rank == 0 {
            let id = try generate()
            try writeAtomically(path) { append in try id.withUnsafeBytes { try append($0) } }
            return id
        }
        var waited = 0.0
        while true {
            if let bytes = readWholeFile(path), bytes.count == idBytes { return bytes }
            guard waited < timeout else {
                throw DistributedError.timedOut(operation: "waiting for rank 0's NCCL id in \(path)", seconds: timeout)
            }
            usleep(10_000)
            waited += 0.01
        }
    }
}

/// A communicator over NCCL on this process's GPU (the CUDA backend's device 0).
final class NCCLCommunicator: Communicator, @unchecked Sendable {
    let rank: Int
    let size: Int
    var backendName: String { "nccl" }
    let nccl: NCCLLibrary
    let comm: OpaquePointer
    let context: CUDAContext
    /// Host-buffer calls stage through device memory one at a time.
    private let lock = Lock()
    /// Made by ncclCommInitRankConfig with blocking = 0: calls may return
    /// ncclInProgress, and every wait has the timeout (NCCLProgress).
    let nonBlocking: Bool
    /// Seconds a call, or a stream of NCCL work, may take (TESSERA_DIST_TIMEOUT).
    let timeout: Double
    /// Set once the communicator was aborted (a timeout or an asynchronous error); later calls throw it.
    private var failure: DistributedError?
    /// cuStreamQuery, to wait for a stream with a deadline (nil: cuStreamSynchronize, no timeout).
    private let streamQuery: (@convention(c) (CUhandle?) -> CUresult)?

    private init(
        rank: Int, size: Int, nccl: NCCLLibrary, comm: OpaquePointer, context: CUDAContext, nonBlocking: Bool,
        timeout: Double
    ) {
        self.rank = rank
        self.size = size
        self.nccl = nccl
        self.comm = comm
        self.context = context
        self.nonBlocking = nonBlocking
        self.timeout = timeout
        streamQuery = try? context.driver.library.function("cuStreamQuery")
    }

    deinit { if failure == nil { _ = nccl.commDestroy(comm) } }

    /// Aborts the communicator (NCCL's kernels stop, peers see the failure) and remembers why.
    private func abort(_ error: DistributedError) -> DistributedError {
        if failure == nil {
            failure = error
            _ = nccl.commAbort?(comm)
        }
        return error
    }

    /// Checks an NCCL call's status; on a non-blocking communicator
    /// ncclInProgress means queued, and the call is waited for with the timeout.
    private func call(_ status: NCCLLibrary.Status, _ name: String) throws {
        if let failure { throw failure }
        if status == NCCLProgress.inProgress, nonBlocking {
            do {
                try NCCLProgress.wait(operation: name, timeout: timeout, state: { nccl.state(comm) }, abort: {})
            } catch let error as DistributedError {
                throw abort(error)
            }
            return
        }
        try nccl.check(status, name)
    }

    /// Waits for `stream` with the timeout, watching the communicator for asynchronous errors.
    private func synchronize(_ stream: CUhandle?, _ name: String) throws {
        if let failure { throw failure }
        let driver = context.device.driver
        guard let streamQuery else {
            try driver.check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize (\(name))")
            return
        }
        do {
            try NCCLProgress.wait(
                operation: name, timeout: timeout,
                state: {
                    let rc = streamQuery(stream)
                    if rc == 0 { return .done }
                    if rc != 600 { return .failed("cuStreamQuery: CUresult \(rc)") }  // 600: CUDA_ERROR_NOT_READY
                    let state = nccl.state(comm)
                    return state == .done || state == .pending ? .pending : state
                }, abort: {})
        } catch let error as DistributedError {
            throw abort(error)
        }
    }

    /// The world the launcher configured (TESSERA_RANK, TESSERA_WORLD_SIZE),
    /// its id shared through `bootstrap` (the launcher's ring) unless the
    /// environment gives it. Checks libnccl, then the GPU, before any exchange.
    static func world(bootstrap: Group?) throws -> NCCLCommunicator {
        let environment = processEnvironment()
        // Not started as ranks at all: NCCL is unavailable here (as the ring is
        // without its hosts); variables that are set but wrong are a bad configuration.
        guard environment[DistributedEnvironment.rank] != nil || environment[DistributedEnvironment.worldSize] != nil
        else {
            throw DistributedError.backendUnavailable(
                backend: "nccl",
                reason: "\(DistributedEnvironment.rank) and \(DistributedEnvironment.worldSize) are not set "
                    + "(start the ranks with `tessera launch --backend nccl`)")
        }
        guard let rank = environment[DistributedEnvironment.rank].flatMap({ Int($0) }),
            let size = environment[DistributedEnvironment.worldSize].flatMap({ Int($0) }),
            size >= 1, rank >= 0, rank < size
        else {
            throw DistributedError.badConfiguration(
                "NCCL needs \(DistributedEnvironment.rank) and \(DistributedEnvironment.worldSize) "
                    + "(start the ranks with `tessera launch --backend nccl`)")
        }
        let nccl = try NCCLLibrary.shared()
        guard let context = CUDABackend.context else {
            throw DistributedError.backendUnavailable(
                backend: "nccl", reason: "no CUDA GPU (\(CUDABackend.unavailableReason))")
        }
        let id = try NCCLBootstrap.uniqueID(
            rank: rank, environment: environment, timeout: DistributedEnvironment.timeoutSeconds, group: bootstrap,
            generate: { try nccl.uniqueID() })
        var deviceCount: Int32 = 0
        _ = context.driver.cuDeviceGetCount(&deviceCount)
        try RankDevice.checkOneDevicePerRank(environment: environment, deviceCount: Int(deviceCount))
        // This rank's GPU (RankDevice.ordinal, chosen when the CUDA backend opened it) is current first.
        try context.device.makeCurrent()
        let timeout = DistributedEnvironment.timeoutSeconds
        let name = "ncclCommInitRank(rank \(rank) of \(size))"
        var comm: UnsafeMutableRawPointer?
        if let initConfig = nccl.commInitRankConfig, nccl.commGetAsyncError != nil, let commAbort = nccl.commAbort {
            // Non-blocking: returns at once; a rank that never joins is a timeout, not a hang.
            let status = id.withUnsafeBytes {
                tk_nccl_comm_init_rank_config(initConfig, &comm, Int32(size), $0.baseAddress, Int32(rank), 0)
            }
            if status != NCCLProgress.inProgress { try nccl.check(status, name) }
            guard let comm else { throw DistributedError.backendError("\(name) returned no communicator") }
            try NCCLProgress.wait(
                operation: name, timeout: timeout, state: { nccl.state(OpaquePointer(comm)) },
                abort: { _ = commAbort(OpaquePointer(comm)) })
            return NCCLCommunicator(
                rank: rank, size: size, nccl: nccl, comm: OpaquePointer(comm), context: context, nonBlocking: true,
                timeout: timeout)
        }
        let status = id.withUnsafeBytes {
            tk_nccl_comm_init_rank(nccl.commInitRank, &comm, Int32(size), $0.baseAddress, Int32(rank))
        }
        try nccl.check(status, name)
        guard let comm else { throw DistributedError.backendError("ncclCommInitRank returned no communicator") }
        return NCCLCommunicator(
            rank: rank, size: size, nccl: nccl, comm: OpaquePointer(comm), context: context, nonBlocking: false,
            timeout: timeout)
    }

    // MARK: device buffers on a CUDA stream (queued; the stream orders them)

    private static func pointer(_ p: CUdeviceptr) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: UInt(p))
    }

    private func reduction(_ dtype: DType, _ count: Int, _ op: ReduceKind) throws -> (count: Int, type: Int32) {
        guard let r = NCCLTypes.reduction(dtype, count: count, op: op) else {
            throw DistributedError.unsupported("NCCL has no \(op.rawValue) reduction of \(dtype)")
        }
        return r
    }

    /// `count` elements at `send` reduced across the ranks into `recv` (the same pointer: in place).
    func allReduce(
        send: CUdeviceptr, recv: CUdeviceptr, count: Int, dtype: DType, op: ReduceKind, stream: CUhandle?
    ) throws {
        let (n, type) = try reduction(dtype, count, op)
        try call(
            nccl.allReduce(Self.pointer(send), Self.pointer(recv), n, type, NCCLTypes.op(op), comm, stream),
            "ncclAllReduce")
    }

    /// Each rank's `count` elements at `send` land at `recv + rank * count` on every rank.
    func allGather(send: CUdeviceptr, recv: CUdeviceptr, count: Int, dtype: DType, stream: CUhandle?) throws {
        try call(
            nccl.allGather(Self.pointer(send), Self.pointer(recv), count * dtype.size, 1, comm, stream),
            "ncclAllGather")
    }

    /// The reduction of `size * recvCount` elements, rank r keeping block r (`recvCount` elements) in `recv`.
    func reduceScatter(
        send: CUdeviceptr, recv: CUdeviceptr, recvCount: Int, dtype: DType, op: ReduceKind, stream: CUhandle?
    ) throws {
        let (n, type) = try reduction(dtype, recvCount, op)
        try call(
            nccl.reduceScatter(Self.pointer(send), Self.pointer(recv), n, type, NCCLTypes.op(op), comm, stream),
            "ncclReduceScatter")
    }

    func send(_ buffer: CUdeviceptr, bytes: Int, to peer: Int, stream: CUhandle?) throws {
        try checkPeer(peer)
        try call(nccl.send(Self.pointer(buffer), bytes, 1, Int32(peer), comm, stream), "ncclSend(to \(peer))")
    }

    func recv(_ buffer: CUdeviceptr, bytes: Int, from peer: Int, stream: CUhandle?) throws {
        try checkPeer(peer)
        try call(nccl.recv(Self.pointer(buffer), bytes, 1, Int32(peer), comm, stream), "ncclRecv(from \(peer))")
    }

    private func checkPeer(_ peer: Int) throws {
        guard peer >= 0, peer < size, peer != rank else {
            throw DistributedError.badConfiguration("peer \(peer) is not another rank of \(size)")
        }
    }

    // MARK: host buffers (Communicator): staged through device memory

    /// Runs `body` with `bytes` of device memory on the device's stream, then waits for the stream.
    private func staged(bytes: Int, _ name: String, _ body: (CUdeviceptr, CUhandle?) throws -> Void) throws {
        let driver = context.device.driver, stream = context.device.stream
        try lock.withLock {
            if let failure { throw failure }
            try context.device.makeCurrent()
            var device: CUdeviceptr = 0
            try driver.check(driver.cuMemAlloc(&device, max(bytes, 1)), "cuMemAlloc(\(bytes) bytes for NCCL)")
            // After an abort NCCL's kernels have stopped, so the stream drains before the memory goes.
            defer { _ = driver.cuStreamSynchronize(stream); _ = driver.cuMemFree(device) }
            try body(device, stream)
            try synchronize(stream, name)
        }
    }

    private func upload(_ host: UnsafeRawPointer, _ device: CUdeviceptr, _ bytes: Int, _ stream: CUhandle?) throws {
        let driver = context.device.driver
        try driver.check(driver.cuMemcpyHtoDAsync(device, host, bytes, stream), "cuMemcpyHtoDAsync (NCCL)")
    }

    private func download(_ device: CUdeviceptr, _ host: UnsafeMutableRawPointer, _ bytes: Int, _ stream: CUhandle?)
        throws
    {
        let driver = context.device.driver
        try driver.check(driver.cuMemcpyDtoHAsync(host, device, bytes, stream), "cuMemcpyDtoHAsync (NCCL)")
    }

    func allReduce(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, op: ReduceKind) throws {
        let bytes = count * dtype.size
        guard bytes > 0 else { return }
        _ = try reduction(dtype, count, op)
        try staged(bytes: bytes, "ncclAllReduce") { device, stream in
            try upload(buffer, device, bytes, stream)
            try allReduce(send: device, recv: device, count: count, dtype: dtype, op: op, stream: stream)
            try download(device, buffer, bytes, stream)
        }
    }

    func allGather(_ input: UnsafeRawPointer, bytes: Int, into output: UnsafeMutableRawPointer) throws {
        guard bytes > 0 else { return }
        try staged(bytes: bytes * size, "ncclAllGather") { device, stream in
            let mine = device + CUdeviceptr(rank * bytes)
            try upload(input, mine, bytes, stream)
            try allGather(send: mine, recv: device, count: bytes, dtype: .uint8, stream: stream)
            try download(device, output, bytes * size, stream)
        }
    }

    func send(_ buffer: UnsafeRawPointer, bytes: Int, to peer: Int) throws {
        guard bytes > 0 else { return }
        try staged(bytes: bytes, "ncclSend(to \(peer))") { device, stream in
            try upload(buffer, device, bytes, stream)
            try send(device, bytes: bytes, to: peer, stream: stream)
        }
    }

    func recv(_ buffer: UnsafeMutableRawPointer, bytes: Int, from peer: Int) throws {
        guard bytes > 0 else { return }
        try staged(bytes: bytes, "ncclRecv(from \(peer))") { device, stream in
            try recv(device, bytes: bytes, from: peer, stream: stream)
            try download(device, buffer, bytes, stream)
        }
    }

    func split(color: Int, key: Int) throws -> Communicator {
        guard let commSplit = nccl.commSplit else {
            throw DistributedError.unsupported("split needs NCCL 2.18 or later (this is \(nccl.version))")
        }
        var child: OpaquePointer?
        // A nil config: the child inherits the parent's (non-blocking) config.
        try call(commSplit(comm, Int32(color), Int32(key), &child, nil), "ncclCommSplit")
        guard let child else { throw DistributedError.backendError("ncclCommSplit returned no communicator") }
        // The new rank and size: every rank's (color, key, rank) over the host path.
        var mine = [Int64(color), Int64(key), Int64(rank)]
        var all = [Int64](repeating: 0, count: 3 * size)
        try mine.withUnsafeMutableBytes { input in
            try all.withUnsafeMutableBytes { output in
                try allGather(input.baseAddress!, bytes: 24, into: output.baseAddress!)
            }
        }
        let members = (0..<size).filter { all[3 * $0] == Int64(color) }
            .sorted { (all[3 * $0 + 1], $0) < (all[3 * $1 + 1], $1) }
        guard let newRank = members.firstIndex(of: rank) else {
            throw DistributedError.backendError("ncclCommSplit: rank \(rank) is not in its own color")
        }
        return NCCLCommunicator(
            rank: newRank, size: members.count, nccl: nccl, comm: child, context: context, nonBlocking: nonBlocking,
            timeout: timeout)
    }
}
