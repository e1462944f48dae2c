// The MPI backend: Open MPI's libmpi opened at run time (no MPI headers or
// library at build time). In Open MPI's ABI the handles (MPI_Comm,
// MPI_Datatype, MPI_Op) are pointers to global objects, so the predefined
// ones are the addresses dlsym gives for `ompi_mpi_comm_world`,
// `ompi_mpi_float`, `ompi_mpi_op_sum`, ...; MPI_IN_PLACE is (void *)1 and
// MPI_STATUS_IGNORE is NULL (Open MPI 4.1's mpi.h). float16 and bfloat16
// have no MPI type: they are reduced in float32 and rounded back once.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The entry points and predefined handles of libmpi.
final class MPILibrary: @unchecked Sendable {
    typealias Handle = UnsafeMutableRawPointer
    typealias InitializedFn = @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    typealias InitThreadFn =
        @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int32, UnsafeMutablePointer<Int32>) -> Int32
    typealias CommIntFn = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    typealias AllreduceFn =
        @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    typealias AllgatherFn =
        @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, Int32, Handle, Handle) -> Int32
    typealias SendFn = @convention(c) (UnsafeRawPointer?, Int32, Handle, Int32, Int32, Handle) -> Int32
    typealias RecvFn =
        @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Int32, Handle, UnsafeMutableRawPointer?) ->
        Int32
    typealias SplitFn = @convention(c) (Handle, Int32, Int32, UnsafeMutablePointer<Handle?>) -> Int32
    typealias FinalizeFn = @convention(c) () -> Int32

    let initialized: InitializedFn
    let initThread: InitThreadFn
    let commRank: CommIntFn
    let commSize: CommIntFn
    let allreduce: AllreduceFn
    let allgather: AllgatherFn
    let sendFn: SendFn
    let recvFn: RecvFn
    let split: SplitFn
    let finalize: FinalizeFn
    let finalized: InitializedFn
    let commWorld: Handle
    let types: [DType: Handle]
    let byte: Handle
    let sum, max, min, lor, land: Handle

    private init(_ h: UnsafeMutableRawPointer) throws {
        func sym(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let p = dlsym(h, name) else {
                throw DistributedError.backendUnavailable(
                    backend: "mpi", reason: "libmpi lacks \(name) (Open MPI 4 or 5 expected)")
            }
            return p
        }
        func fn<F>(_ name: String, _: F.Type) throws -> F { unsafeBitCast(try sym(name), to: F.self) }
        initialized = try fn("MPI_Initialized", InitializedFn.self)
        initThread = try fn("MPI_Init_thread", InitThreadFn.self)
        commRank = try fn("MPI_Comm_rank", CommIntFn.self)
        commSize = try fn("MPI_Comm_size", CommIntFn.self)
        allreduce = try fn("MPI_Allreduce", AllreduceFn.self)
        allgather = try fn("MPI_Allgather", AllgatherFn.self)
        sendFn = try fn("MPI_Send", SendFn.self)
        recvFn = try fn("MPI_Recv", RecvFn.self)
        split = try fn("MPI_Comm_split", SplitFn.self)
        finalize = try fn("MPI_Finalize", FinalizeFn.self)
        finalized = try fn("MPI_Finalized", InitializedFn.self)
        commWorld = try sym("ompi_mpi_comm_world")
        byte = try sym("ompi_mpi_byte")
        var types: [DType: Handle] = [:]
        let names: [(DType, String)] = [
            (.bool, "ompi_mpi_c_bool"), (.uint8, "ompi_mpi_uint8_t"), (.uint16, "ompi_mpi_uint16_t"),
            (.uint32, "ompi_mpi_uint32_t"), (.uint64, "ompi_mpi_uint64_t"), (.int8, "ompi_mpi_int8_t"),
            (.int16, "ompi_mpi_int16_t"), (.int32, "ompi_mpi_int32_t"), (.int64, "ompi_mpi_int64_t"),
            (.float32, "ompi_mpi_float"), (.float64, "ompi_mpi_double"), (.complex64, "ompi_mpi_c_float_complex")
        ]
        for (dtype, name) in names { types[dtype] = try sym(name) }
        self.types = types
        sum = try sym("ompi_mpi_op_sum")
        max = try sym("ompi_mpi_op_max")
        min = try sym("ompi_mpi_op_min")
        lor = try sym("ompi_mpi_op_lor")
        land = try sym("ompi_mpi_op_land")
    }

    private static let lock = Lock()
    nonisolated(unsafe) private static var cached: Result<MPILibrary, DistributedError>?

    /// libmpi, opened once (`TESSERA_MPI_LIBRARY` names another file).
    static func shared() throws -> MPILibrary {
        try lock.withLock {
            if let cached { return try cached.get() }
            let result: Result<MPILibrary, DistributedError>
            let names = [DistributedEnvironment.value("TESSERA_MPI_LIBRARY"), "libmpi.so.40", "libmpi.so"].compactMap {
                $0
            }
            // RTLD_GLOBAL: Open MPI's plugins resolve symbols of libmpi itself.
            if let h = names.lazy.compactMap({ dlopen($0, RTLD_NOW | RTLD_GLOBAL) }).first {
                do { result = .success(try MPILibrary(h)) } catch let e as DistributedError {
                    result = .failure(e)
                } catch {
                    result = .failure(.backendUnavailable(backend: "mpi", reason: "\(error)"))
                }
            } else {
                result = .failure(
                    .backendUnavailable(
                        backend: "mpi", reason: "libmpi.so.40 not found (apt-get install openmpi-bin libopenmpi-dev)"))
            }
            cached = result
            return try result.get()
        }
    }
}

/// Finalizes MPI when the process exits normally, as mpirun expects.
private func finalizeMPIAtExit() {
    guard let mpi = try? MPILibrary.shared() else { return }
    var done: Int32 = 0
    _ = mpi.finalized(&done)
    if done == 0 { _ = mpi.finalize() }
}

/// A communicator of MPI (the world, or one split from it).
final class MPICommunicator: Communicator, @unchecked Sendable {
    let mpi: MPILibrary
    let comm: MPILibrary.Handle
    let rank: Int
    let size: Int
    var backendName: String { "mpi" }
    /// MPI is initialized as MPI_THREAD_SERIALIZED: one call at a time, from any thread.
    private static let callLock = Lock()

    private init(mpi: MPILibrary, comm: MPILibrary.Handle) throws {
        self.mpi = mpi
        self.comm = comm
        var r: Int32 = 0, s: Int32 = 0
        try MPICommunicator.check(mpi.commRank(comm, &r), "MPI_Comm_rank")
        try MPICommunicator.check(mpi.commSize(comm, &s), "MPI_Comm_size")
        rank = Int(r)
        size = Int(s)
    }

    static func world() throws -> MPICommunicator {
        let mpi = try MPILibrary.shared()
        try callLock.withLock {
            var flag: Int32 = 0
            _ = mpi.initialized(&flag)
            guard flag == 0 else { return }
            var provided: Int32 = 0
            try check(mpi.initThread(nil, nil, 2, &provided), "MPI_Init_thread")  // 2: MPI_THREAD_SERIALIZED
            atexit { finalizeMPIAtExit() }
        }
        return try MPICommunicator(mpi: mpi, comm: mpi.commWorld)
    }

    static func check(_ code: Int32, _ call: String) throws {
        if code != 0 { throw DistributedError.backendError("\(call) returned \(code)") }
    }

    /// MPI counts are Int32: larger messages go in pieces.
    private static let maxCount = Int(Int32.max / 8)

    func allReduce(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, op: ReduceKind) throws {
        if dtype == .float16 || dtype == .bfloat16 {
            // No MPI type: reduce in float32.
            let wide = UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer { wide.deallocate() }
            widen(buffer, dtype, into: wide, count)
            try allReduce(UnsafeMutableRawPointer(wide), count: count, dtype: .float32, op: op)
            narrow(wide, into: buffer, dtype, count)
            return
        }
        guard let type = mpi.types[dtype] else { throw DistributedError.unsupported("allReduce of \(dtype)") }
        let mpiOp: MPILibrary.Handle
        switch (op, dtype) {
        case (_, .complex64) where op != .sum:
            throw DistributedError.unsupported("\(op.rawValue) reduction of complex64 (no order)")
        case (.sum, .bool), (.max, .bool): mpiOp = mpi.lor
        case (.min, .bool): mpiOp = mpi.land
        case (.sum, _): mpiOp = mpi.sum
        case (.max, _): mpiOp = mpi.max
        case (.min, _): mpiOp = mpi.min
        }
        var done = 0
        while done < count {
            let n = Swift.min(count - done, MPICommunicator.maxCount)
            try MPICommunicator.callLock.withLock {
                // MPI_IN_PLACE is (void *)1 in Open MPI.
                try MPICommunicator.check(
                    mpi.allreduce(
                        UnsafeRawPointer(bitPattern: 1), buffer + done * dtype.size, Int32(n), type, mpiOp, comm),
                    "MPI_Allreduce")
            }
            done += n
        }
    }

    func allGather(_ input: UnsafeRawPointer, bytes: Int, into output: UnsafeMutableRawPointer) throws {
        guard bytes <= Int(Int32.max) else {
            throw DistributedError.unsupported("allGather of \(bytes) bytes per rank")
        }
        try MPICommunicator.callLock.withLock {
            try MPICommunicator.check(
                mpi.allgather(input, Int32(bytes), mpi.byte, output, Int32(bytes), mpi.byte, comm), "MPI_Allgather")
        }
    }

    func send(_ buffer: UnsafeRawPointer, bytes: Int, to peer: Int) throws {
        var done = 0
        while done < bytes {
            let n = Swift.min(bytes - done, MPICommunicator.maxCount)
            try MPICommunicator.callLock.withLock {
                try MPICommunicator.check(
                    mpi.sendFn(buffer + done, Int32(n), mpi.byte, Int32(peer), 0, comm), "MPI_Send")
            }
            done += n
        }
    }

    func recv(_ buffer: UnsafeMutableRawPointer, bytes: Int, from peer: Int) throws {
        var done = 0
        while done < bytes {
            let n = Swift.min(bytes - done, MPICommunicator.maxCount)
            try MPICommunicator.callLock.withLock {
                try MPICommunicator.check(
                    mpi.recvFn(buffer + done, Int32(n), mpi.byte, Int32(peer), 0, comm, nil), "MPI_Recv")
            }
            done += n
        }
    }

    func split(color: Int, key: Int) throws -> Communicator {
        var newComm: MPILibrary.Handle?
        try MPICommunicator.callLock.withLock {
            try MPICommunicator.check(
                mpi.split(comm, Int32(truncatingIfNeeded: color), Int32(truncatingIfNeeded: key), &newComm),
                "MPI_Comm_split")
        }
        guard let newComm else { throw DistributedError.backendError("MPI_Comm_split gave no communicator") }
        return try MPICommunicator(mpi: mpi, comm: newComm)
    }
}

/// float16/bfloat16 → float32.
private func widen(_ source: UnsafeRawPointer, _ dtype: DType, into wide: UnsafeMutablePointer<Float>, _ count: Int) {
    let bits = source.assumingMemoryBound(to: UInt16.self)
    for i in 0..<count {
        wide[i] = dtype == .float16 ? Float(Float16(bitPattern: bits[i])) : Float(bitPattern: UInt32(bits[i]) << 16)
    }
}

/// float32 → float16/bfloat16, rounding to nearest even.
private func narrow(
    _ wide: UnsafePointer<Float>, into destination: UnsafeMutableRawPointer, _ dtype: DType, _ count: Int
) {
    let bits = destination.assumingMemoryBound(to: UInt16.self)
    for i in 0..<count {
        if dtype == .float16 {
            bits[i] = Float16(wide[i]).bitPattern
        } else {
            let x = wide[i].bitPattern
            bits[i] = wide[i].isNaN ? UInt16(x >> 16) | 0x40 : UInt16((x &+ 0x7FFF &+ ((x >> 16) & 1)) >> 16)
        }
    }
}
