// The ring backend's same-host transport: when every rank of the world runs
// on one machine (same boot id and host name), the all-reduces of the world
// go through one shared-memory segment instead of loopback TCP, as Open MPI's
// shared-memory transport does for local ranks (MLX's ring is TCP only).
// Loopback TCP copies every byte through the kernel twice and wakes the
// receiver per segment; here, with two ranks, each rank copies its chunk into
// its slot once and, after one barrier, reduces the whole chunk itself (its
// own part read in place, the peer's from its slot) straight into the output:
// one copy and one barrier a chunk, no copy-out. With more ranks each
// publishes the parts the others reduce, reduces its own 1/n into the output
// and publishes it, and copies the others' reduced parts out after a second
// barrier. Chunks alternate between two banks of slots (flags in the
// segment's first page).
//
// Failures keep the ring's contract: a barrier that waits checks the TCP
// connections to the peers (still open, idle during the all-reduce), so a
// rank that dies ends the others with `peerFailed` at once, and a rank that
// stalls ends them with `timedOut` after TESSERA_DIST_TIMEOUT. The segment is
// unlinked as soon as every rank has mapped it, so nothing is left behind.
// TESSERA_RING_SHM=0 keeps everything on TCP; groups split from the world use TCP.

import CTesseraKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

final class RingSharedMemory: @unchecked Sendable {
    /// Bytes of one rank's slot in one bank: the chunk an all-reduce step moves.
    static let slotBytes = 1 << 21
    /// The flags page: rank q's barrier counter at offset 128 q (own cache lines).
    static let headerBytes = 1 << 12

    let base: UnsafeMutableRawPointer
    let length: Int
    let rank: Int
    let size: Int
    /// This rank's barrier count (every rank runs the same sequence of barriers).
    private var sequence: UInt64 = 0
    /// Chunks moved so far (which bank the next uses).
    private var chunks = 0

    private init(base: UnsafeMutableRawPointer, length: Int, rank: Int, size: Int) {
        self.base = base
        self.length = length
        self.rank = rank
        self.size = size
    }

    deinit { _ = munmap(base, length) }

    static func length(ranks: Int) -> Int { headerBytes + 2 * ranks * slotBytes }

    private func flag(_ q: Int) -> UnsafeMutableRawPointer { base + 128 * q }

    private func slot(_ bank: Int, _ q: Int) -> UnsafeMutableRawPointer {
        base + Self.headerBytes + (bank * size + q) * Self.slotBytes
    }

    /// This machine as the ranks compare it: the kernel's boot id and the host name.
    static func hostIdentity() -> String {
        var host = [CChar](repeating: 0, count: 256)
        _ = gethostname(&host, host.count - 1)
        var boot = ""
        if let file = fopen("/proc/sys/kernel/random/boot_id", "r") {
            var line = [CChar](repeating: 0, count: 64)
            if fgets(&line, Int32(line.count), file) != nil {
                boot = String(
                    decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            fclose(file)
        }
        let name = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return boot + "/" + name
    }

    /// Every rank's `bytes` bytes, gathered over the TCP world.
    private static func gather(_ world: RingCommunicator, _ mine: [UInt8]) throws -> [[UInt8]] {
        var all = [UInt8](repeating: 0, count: mine.count * world.size)
        try mine.withUnsafeBytes { m in
            try all.withUnsafeMutableBytes {
                try world.allGather(m.baseAddress!, bytes: mine.count, into: $0.baseAddress!)
            }
        }
        return (0..<world.size).map { Array(all[($0 * mine.count)..<(($0 + 1) * mine.count)]) }
    }

    /// The segment of a world whose ranks share this host, or nil (TCP then).
    /// Every rank of the world must call it at the same point.
    static func attach(_ world: RingCommunicator) throws -> RingSharedMemory? {
        let size = world.size, rank = world.rank
        guard size > 1, DistributedEnvironment.value(DistributedEnvironment.ringSharedMemory) != "0" else { return nil }
        func padded(_ text: String, _ count: Int) -> [UInt8] {
            let bytes = Array(text.utf8.prefix(count))
            return bytes + [UInt8](repeating: 0, count: count - bytes.count)
        }
        let identities = try gather(world, padded(hostIdentity(), 128))
        guard identities.allSatisfy({ $0 == identities[0] }) else { return nil }
        let length = Self.length(ranks: size)
        // Rank 0 makes the segment (space reserved now: no SIGBUS later) and passes its name round.
        var fd: Int32 = -1
        var path = ""
        if rank == 0 {
            let candidate = "/dev/shm/tessera-ring-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            fd = open(candidate, O_RDWR | O_CREAT | O_EXCL, 0o600)
            if fd >= 0 {
                if posix_fallocate(fd, 0, off_t(length)) == 0 {
                    path = candidate
                } else {
                    _ = close(fd)
                    _ = unlink(candidate)
                    fd = -1
                }
            }
        }
        let names = try gather(world, padded(path, 96))
        let chosen = String(decoding: names[0].prefix { $0 != 0 }, as: UTF8.self)
        var mapped: UnsafeMutableRawPointer?
        if !chosen.isEmpty {
            if rank != 0 { fd = open(chosen, O_RDWR) }
            if fd >= 0 {
                var info = stat()
                if fstat(fd, &info) == 0, Int(info.st_size) == length {
                    let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                    if let p, p != MAP_FAILED { mapped = p }
                }
                _ = close(fd)
            }
        }
        // Everyone says whether it mapped the segment; then its name goes (the mappings stay).
        let mappedEverywhere = try gather(world, [mapped == nil ? 0 : 1]).allSatisfy { $0 == [1] }
        if rank == 0, !chosen.isEmpty { _ = unlink(chosen) }
        guard mappedEverywhere, let mapped else {
            if let mapped { _ = munmap(mapped, length) }
            return nil
        }
        return RingSharedMemory(base: mapped, length: length, rank: rank, size: size)
    }

    /// Returns once every rank has reached the same barrier.
    private func barrier(_ transport: RingTransport, _ operation: String) throws {
        sequence += 1
        tk_shm_store_release(flag(rank), sequence)
        var spins = 0
        var waitingSince = 0.0
        for q in 0..<size where q != rank {
            while tk_shm_load_acquire(flag(q)) < sequence {
                spins += 1
                if spins < 4000 {
                    tk_shm_pause()
                    continue
                }
                // Past a short spin: check the peers and the deadline now and then,
                // yield the core, and sleep between looks on long waits.
                let now = monotonicSeconds()
                if waitingSince == 0 { waitingSince = now }
                if spins % 32 == 0 { try transport.checkPeers(operation: operation) }
                if now - waitingSince > transport.timeout {
                    throw transport.fail(.timedOut(operation: operation, seconds: transport.timeout))
                }
                if now - waitingSince > 0.002 { usleep(50) } else { sched_yield() }
            }
        }
    }

    /// `output` = the reduction over the ranks of each one's `input` (which may
    /// be `output`). Call under the transport's operation lock.
    ///
    /// Two ranks: each copies its chunk into its slot once, and after one
    /// barrier each reduces the whole chunk itself (slot 0's values op slot 1's,
    /// its own read in place from `input`), writing `output` directly: one copy,
    /// one barrier, and no copy-out a chunk. Banks alternate, so a slot is
    /// rewritten only after the barrier that follows the peer's reads of it.
    /// More ranks: each publishes only the parts the others reduce, reduces its
    /// own 1/n straight into `output` and publishes it, and after a second barrier
    /// copies the others' reduced parts out.
    func allReduce(
        from input: UnsafeRawPointer, into output: UnsafeMutableRawPointer, count: Int, dtype: DType,
        reducer: HostReducer, transport: RingTransport, operation: String
    ) throws {
        let s = dtype.size
        let perChunk = Self.slotBytes / s
        var start = 0
        while start < count {
            let m = min(perChunk, count - start)
            let bank = chunks & 1
            chunks += 1
            let mine = slot(bank, rank)
            let source = input + start * s, destination = output + start * s
            if size == 2 {
                mine.copyMemory(from: source, byteCount: m * s)
                try barrier(transport, operation)
                // The same operand order on both ranks (rank 0's values first): identical results.
                let other = UnsafeRawPointer(slot(bank, 1 - rank))
                if rank == 0 {
                    try reducer.combine(source, other, into: destination, count: m)
                } else {
                    try reducer.combine(other, source, into: destination, count: m)
                }
                start += m
                continue
            }
            func part(_ q: Int) -> (lo: Int, hi: Int) { (m * q / size, m * (q + 1) / size) }
            for q in 0..<size where q != rank {
                let (lo, hi) = part(q)
                if hi > lo { (mine + lo * s).copyMemory(from: source + lo * s, byteCount: (hi - lo) * s) }
            }
            try barrier(transport, operation)
            // This rank's 1/n of the chunk, reduced straight into `output`.
            let (lo, hi) = part(rank)
            if hi > lo {
                let at = lo * s, n = hi - lo
                // Its own values first, then the others' in rank order (as before).
                var first = true
                for q in 0..<size where q != rank {
                    let sum = first ? source + at : UnsafeRawPointer(destination + at)
                    try reducer.combine(sum, UnsafeRawPointer(slot(bank, q) + at), into: destination + at, count: n)
                    first = false
                }
                (mine + at).copyMemory(from: UnsafeRawPointer(destination + at), byteCount: n * s)
            }
            try barrier(transport, operation)
            for q in 0..<size where q != rank {
                let (qlo, qhi) = part(q)
                if qhi > qlo {
                    (destination + qlo * s).copyMemory(from: slot(bank, q) + qlo * s, byteCount: (qhi - qlo) * s)
                }
            }
            start += m
        }
    }
}
