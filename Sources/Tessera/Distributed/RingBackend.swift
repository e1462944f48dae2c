// The TCP ring backend, in Swift over the C socket API: every pair of ranks
// joins by `TESSERA_RING_CONNECTIONS` TCP connections (the lower rank listens,
// the higher connects), and a message between two ranks is striped over them.
// Collectives are ring algorithms (reduce-scatter then all-gather, each of
// n - 1 steps that send to the right and receive from the left at once), run
// by a poll loop over non-blocking sockets, so a step never deadlocks on full
// socket buffers. Any failure (a closed connection, a timeout) closes every
// socket of this process, so the other ranks see it at once instead of
// waiting for their own timeouts.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The sockets of this process to every other rank of the world, shared by
/// the world communicator and the groups split from it.
final class RingTransport: @unchecked Sendable {
    let rank: Int
    let size: Int
    let timeout: Double
    /// `connections[peer]`: the sockets to `peer` (empty for this rank).
    private var connections: [[Int32]]
    /// Serializes whole operations: two collectives must not interleave their bytes.
    let operationLock = Lock()
    /// The first failure; every later operation throws it.
    private var failure: DistributedError?
    /// The same-host segment for the world's all-reduces (RingSharedMemory.swift), if every rank is local.
    var sharedMemory: RingSharedMemory?

    init(rank: Int, size: Int, timeout: Double, connections: [[Int32]]) {
        self.rank = rank
        self.size = size
        self.timeout = timeout
        self.connections = connections
    }

    deinit { closeAll() }

    private func closeAll() {
        for fds in connections { for fd in fds { _ = shutdown(fd, Int32(SHUT_RDWR)); _ = close(fd) } }
        connections = connections.map { _ in [] }
    }

    /// Records the failure and closes every socket so the peers notice.
    func fail(_ error: DistributedError) -> DistributedError {
        if failure == nil { failure = error }
        closeAll()
        return error
    }

    /// Throws if a peer has closed a connection (or the transport failed
    /// before); used while waiting on shared memory, when the sockets are idle.
    func checkPeers(operation: String) throws {
        if let failure { throw failure }
        var fds: [pollfd] = []
        var peers: [Int] = []
        for (peer, sockets) in connections.enumerated() {
            for fd in sockets {
                fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
                peers.append(peer)
            }
        }
        guard !fds.isEmpty, poll(&fds, nfds_t(fds.count), 0) > 0 else { return }
        var byte: UInt8 = 0
        for (i, p) in fds.enumerated() where p.revents != 0 {
            if p.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
                throw fail(.peerFailed(peer: peers[i], reason: "closed its connection during \(operation)"))
            }
            // Readable: data of a later operation is fine; end of stream is a closed peer.
            let n = recv(p.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                throw fail(.peerFailed(peer: peers[i], reason: "closed its connection during \(operation)"))
            }
        }
    }

    /// Returns once data from `peer` is waiting on one of its connections; no
    /// timeout, but a closed connection throws (`peerFailed`).
    func awaitReadable(peer: Int) throws {
        if let failure { throw failure }
        let sockets = connections[peer]
        guard !sockets.isEmpty else { throw fail(.peerFailed(peer: peer, reason: "no connection to rank \(peer)")) }
        var byte: UInt8 = 0
        while true {
            var fds = sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), 1000)
            if ready < 0 {
                if errno == EINTR { continue }
                throw fail(.backendError("poll: \(String(cString: strerror(errno)))"))
            }
            for p in fds where p.revents != 0 {
                let n = recv(p.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
                if n > 0 { return }
                if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    throw fail(.peerFailed(peer: peer, reason: "closed its connection while this rank waited for it"))
                }
            }
        }
    }

    /// One part of an exchange: `bytes` bytes to send to or receive from `peer` (a world rank).
    struct Transfer {
        let peer: Int
        let pointer: UnsafeMutableRawPointer
        let bytes: Int
    }

    /// Sends and receives all of `sends` and `recvs` at once (call under
    /// `operationLock`); each message is striped over the peer's connections.
    func exchange(sends: [Transfer], recvs: [Transfer], operation: String) throws {
        if let failure { throw failure }
        struct Stripe {
            var fd: Int32
            var pointer: UnsafeMutableRawPointer
            var remaining: Int
            var peer: Int
        }
        var outgoing: [Stripe] = []
        var incoming: [Stripe] = []
        func stripes(_ t: Transfer) -> [Stripe] {
            let fds = connections[t.peer]
            let k = fds.count
            return (0..<k).compactMap { i in
                let lo = t.bytes * i / k, hi = t.bytes * (i + 1) / k
                return hi > lo ? Stripe(fd: fds[i], pointer: t.pointer + lo, remaining: hi - lo, peer: t.peer) : nil
            }
        }
        for t in sends where t.bytes > 0 {
            guard t.peer != rank, t.peer >= 0, t.peer < size, !connections[t.peer].isEmpty else {
                throw fail(.peerFailed(peer: t.peer, reason: "no connection to rank \(t.peer)"))
            }
            outgoing += stripes(t)
        }
        for t in recvs where t.bytes > 0 {
            guard t.peer != rank, t.peer >= 0, t.peer < size, !connections[t.peer].isEmpty else {
                throw fail(.peerFailed(peer: t.peer, reason: "no connection to rank \(t.peer)"))
            }
            incoming += stripes(t)
        }
        let deadline = monotonicSeconds() + timeout
        var fds: [pollfd] = []
        var peerOf: [Int32: Int] = [:]
        while outgoing.contains(where: { $0.remaining > 0 }) || incoming.contains(where: { $0.remaining > 0 }) {
            fds.removeAll(keepingCapacity: true)
            var index: [Int32: Int] = [:]
            func want(_ fd: Int32, _ events: Int32, _ peer: Int) {
                peerOf[fd] = peer
                if let i = index[fd] {
                    fds[i].events |= Int16(events)
                } else {
                    index[fd] = fds.count
                    fds.append(pollfd(fd: fd, events: Int16(events), revents: 0))
                }
            }
            for s in outgoing where s.remaining > 0 { want(s.fd, Int32(POLLOUT), s.peer) }
            for s in incoming where s.remaining > 0 { want(s.fd, Int32(POLLIN), s.peer) }
            let left = deadline - monotonicSeconds()
            guard left > 0 else { throw fail(.timedOut(operation: operation, seconds: timeout)) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(left * 1000, 1_000_000_000)) + 1)
            if ready < 0 {
                if errno == EINTR { continue }
                throw fail(.backendError("poll: \(String(cString: strerror(errno)))"))
            }
            if ready == 0 { continue }
            var readable = Set<Int32>(), writable = Set<Int32>()
            for p in fds {
                if p.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { readable.insert(p.fd) }
                if p.revents & Int16(POLLOUT | POLLHUP | POLLERR) != 0 { writable.insert(p.fd) }
                if p.revents & Int16(POLLNVAL) != 0 {
                    throw fail(.peerFailed(peer: peerOf[p.fd] ?? -1, reason: "connection closed"))
                }
            }
            for i in incoming.indices where incoming[i].remaining > 0 && readable.contains(incoming[i].fd) {
                let n = recv(incoming[i].fd, incoming[i].pointer, incoming[i].remaining, Int32(MSG_DONTWAIT))
                if n > 0 {
                    incoming[i].pointer += n
                    incoming[i].remaining -= n
                } else if n == 0 {
                    throw fail(.peerFailed(peer: incoming[i].peer, reason: "closed its connection during \(operation)"))
                } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    throw fail(.peerFailed(peer: incoming[i].peer, reason: String(cString: strerror(errno))))
                }
            }
            for i in outgoing.indices where outgoing[i].remaining > 0 && writable.contains(outgoing[i].fd) {
                // MSG_NOSIGNAL: a peer that closed gives EPIPE here, not a SIGPIPE that kills this process.
                let n = send(
                    outgoing[i].fd, outgoing[i].pointer, outgoing[i].remaining, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                if n > 0 {
                    outgoing[i].pointer += n
                    outgoing[i].remaining -= n
                } else if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    throw fail(.peerFailed(peer: outgoing[i].peer, reason: String(cString: strerror(errno))))
                }
            }
        }
    }

    // MARK: connecting

    /// Connects this rank to every other of `hosts` (`host:port` per rank).
    static func connect(rank: Int, hosts: [(host: String, port: Int)], perPeer: Int, timeout: Double) throws
        -> RingTransport
    {
        let size = hosts.count
        let deadline = monotonicSeconds() + timeout
        var connections = [[Int32]](repeating: [], count: size)
        var opened: [Int32] = []
        func closeOpened() { for fd in opened { _ = close(fd) } }
        do {
            // Listen first so lower ranks... higher ranks can reach this one.
            let listener = try listen(port: hosts[rank].port)
            opened.append(listener)
            // Connect to every lower rank (retrying until it listens), then accept every higher one.
            for peer in 0..<rank {
                var fds: [Int32] = []
                for k in 0..<perPeer {
                    let fd = try connectWithRetry(hosts[peer], peer: peer, deadline: deadline)
                    opened.append(fd)
                    var hello: (Int32, Int32) = (Int32(rank), Int32(k))
                    try withUnsafeMutableBytes(of: &hello) {
                        try ioFully(fd, $0.baseAddress!, 8, write: true, deadline: deadline, peer: peer)
                    }
                    fds.append(fd)
                }
                connections[peer] = fds
            }
            var pending = (size - rank - 1) * perPeer
            var accepted = [[Int32?]](repeating: [Int32?](repeating: nil, count: perPeer), count: size)
            while pending > 0 {
                var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                let left = deadline - monotonicSeconds()
                guard left > 0 else {
                    let missing = (rank + 1..<size).filter { accepted[$0].contains(where: { $0 == nil }) }
                    throw DistributedError.unreachable(
                        peer: missing.first ?? -1, address: "\(hosts[missing.first ?? rank].host)",
                        reason: "rank(s) \(missing) did not connect within \(timeout) s")
                }
                let r = poll(&p, 1, Int32(min(left * 1000, 1_000_000_000)) + 1)
                if r <= 0 { continue }
                let fd = accept(listener, nil, nil)
                guard fd >= 0 else { continue }
                opened.append(fd)
                var hello: (Int32, Int32) = (0, 0)
                try withUnsafeMutableBytes(of: &hello) {
                    try ioFully(fd, $0.baseAddress!, 8, write: false, deadline: deadline, peer: -1)
                }
                let peer = Int(hello.0), k = Int(hello.1)
                guard peer > rank, peer < size, k >= 0, k < perPeer, accepted[peer][k] == nil else {
                    throw DistributedError.badConfiguration(
                        "unexpected connection from rank \(peer) (#\(k)) at rank \(rank)")
                }
                accepted[peer][k] = fd
                pending -= 1
            }
            for peer in rank + 1..<size { connections[peer] = accepted[peer].compactMap { $0 } }
            _ = close(listener)
        } catch {
            closeOpened()
            throw error
        }
        for fds in connections {
            for fd in fds {
                var one: Int32 = 1
                // TCP_NODELAY (netinet/tcp.h value 1): small messages go out at once.
                _ = setsockopt(fd, Int32(IPPROTO_TCP), 1, &one, socklen_t(MemoryLayout<Int32>.size))
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
        }
        return RingTransport(rank: rank, size: size, timeout: timeout, connections: connections)
    }

    private static func address(_ host: String, port: Int) throws -> sockaddr_in {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0, let result, let sa = result.pointee.ai_addr else {
            throw DistributedError.badConfiguration("cannot resolve host \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(result) }
        var addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
        addr.sin_port = in_port_t(UInt16(port)).bigEndian
        return addr
    }

    private static func listen(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DistributedError.backendError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port)).bigEndian
        addr.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 128) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = close(fd)
            throw DistributedError.badConfiguration("cannot listen on port \(port): \(reason)")
        }
        return fd
    }

    /// A connected socket to `host`, retrying while the peer is not listening yet.
    private static func connectWithRetry(_ host: (host: String, port: Int), peer: Int, deadline: Double) throws -> Int32
    {
        var addr = try address(host.host, port: host.port)
        var lastError = "timed out"
        while monotonicSeconds() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw DistributedError.backendError("socket: \(String(cString: strerror(errno)))") }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            var ok = rc == 0
            if !ok && errno == EINPROGRESS {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let left = max(deadline - monotonicSeconds(), 0)
                if poll(&p, 1, Int32(min(left * 1000, 1_000_000_000)) + 1) > 0 {
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                    ok = err == 0
                    if !ok { lastError = String(cString: strerror(err)) }
                }
            } else if !ok {
                lastError = String(cString: strerror(errno))
            }
            if ok {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
                return fd
            }
            _ = close(fd)
            usleep(50_000)
        }
        throw DistributedError.unreachable(peer: peer, address: "\(host.host):\(host.port)", reason: lastError)
    }

    /// Reads or writes exactly `count` bytes before `deadline`.
    private static func ioFully(
        _ fd: Int32, _ pointer: UnsafeMutableRawPointer, _ count: Int, write: Bool, deadline: Double, peer: Int
    ) throws {
        var done = 0
        while done < count {
            var p = pollfd(fd: fd, events: Int16(write ? POLLOUT : POLLIN), revents: 0)
            let left = deadline - monotonicSeconds()
            guard left > 0 else { throw DistributedError.timedOut(operation: "ring handshake", seconds: left) }
            guard poll(&p, 1, Int32(min(left * 1000, 1_000_000_000)) + 1) > 0 else { continue }
            let n =
                write
                ? send(fd, pointer + done, count - done, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                : recv(fd, pointer + done, count - done, Int32(MSG_DONTWAIT))
            if n > 0 { done += n; continue }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                throw DistributedError.peerFailed(peer: peer, reason: "handshake failed")
            }
        }
    }
}

/// Seconds on the monotonic ContinuousClock since the first call (for deadlines).
func monotonicSeconds() -> Double {
    let (s, attoseconds) = (ContinuousClock.now - monotonicOrigin).components
    return Double(s) + Double(attoseconds) * 1e-18
}

private let monotonicOrigin = ContinuousClock.now

/// A group over the ring transport: `members[i]` is the world rank of group rank i.
final class RingCommunicator: Communicator, @unchecked Sendable {
    let transport: RingTransport
    let members: [Int]
    let rank: Int
    var size: Int { members.count }
    var backendName: String { "ring" }

    init(transport: RingTransport, members: [Int]) {
        self.transport = transport
        self.members = members
        rank = members.firstIndex(of: transport.rank) ?? 0
    }

    /// The world from `TESSERA_RANK`, `TESSERA_WORLD_SIZE` and `TESSERA_RING_HOSTS`.
    static func world() throws -> RingCommunicator {
        let env = DistributedEnvironment.self
        guard let hostList = env.value(env.ringHosts) else {
            throw DistributedError.backendUnavailable(backend: "ring", reason: "\(env.ringHosts) is not set")
        }
        let hosts = try hostList.split(separator: ",").map { entry -> (host: String, port: Int) in
            guard let colon = entry.lastIndex(of: ":"), let port = Int(entry[entry.index(after: colon)...]),
                port > 0, port < 65536
            else { throw DistributedError.badConfiguration("\(env.ringHosts) entry '\(entry)' is not host:port") }
            return (String(entry[..<colon]), port)
        }
        guard let rankText = env.value(env.rank), let rank = Int(rankText), rank >= 0, rank < hosts.count else {
            throw DistributedError.badConfiguration("\(env.rank) must be a rank below \(hosts.count)")
        }
        if let sizeText = env.value(env.worldSize), Int(sizeText) != hosts.count {
            throw DistributedError.badConfiguration(
                "\(env.worldSize)=\(sizeText) but \(env.ringHosts) lists \(hosts.count) ranks")
        }
        var perPeer = 2
        if let text = env.value(env.ringConnections) {
            guard let k = Int(text), k >= 1, k <= 16 else {
                throw DistributedError.badConfiguration("\(env.ringConnections) must be 1...16")
            }
            perPeer = k
        }
        let transport = try RingTransport.connect(
            rank: rank, hosts: hosts, perPeer: perPeer, timeout: env.timeoutSeconds)
        let world = RingCommunicator(transport: transport, members: Array(0..<hosts.count))
        transport.sharedMemory = try RingSharedMemory.attach(world)
        return world
    }

    /// The transport this communicator's all-reduces take: shared memory for
    /// the whole world on one host, else TCP.
    var transportName: String {
        members.count == transport.size && transport.sharedMemory != nil ? "shared memory" : "tcp"
    }

    private func world(_ groupRank: Int) -> Int { members[groupRank] }

    private func exchange(
        send: (to: Int, pointer: UnsafeRawPointer, bytes: Int)?,
        recv: (from: Int, pointer: UnsafeMutableRawPointer, bytes: Int)?,
        _ operation: String
    ) throws {
        try transport.exchange(
            sends: send.map {
                [.init(peer: world($0.to), pointer: UnsafeMutableRawPointer(mutating: $0.pointer), bytes: $0.bytes)]
            } ?? [],
            recvs: recv.map { [.init(peer: world($0.from), pointer: $0.pointer, bytes: $0.bytes)] } ?? [],
            operation: operation)
    }

    func allReduce(
        from input: UnsafeRawPointer, into output: UnsafeMutableRawPointer, count: Int, dtype: DType, op: ReduceKind
    ) throws {
        if size > 1, count > 0, members.count == transport.size, let shm = transport.sharedMemory {
            let reducer = try HostReducer(dtype: dtype, op: op)
            try transport.operationLock.withLock {
                try shm.allReduce(
                    from: input, into: output, count: count, dtype: dtype, reducer: reducer, transport: transport,
                    operation: "\(op == .sum ? "allSum" : op == .max ? "allMax" : "allMin") (\(dtype))")
            }
            return
        }
        if UnsafeRawPointer(output) != input { output.copyMemory(from: input, byteCount: count * dtype.size) }
        try allReduce(output, count: count, dtype: dtype, op: op)
    }

    func allReduce(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, op: ReduceKind) throws {
        let n = size
        guard n > 1, count > 0 else { return }
        if members.count == transport.size, transport.sharedMemory != nil {
            return try allReduce(from: UnsafeRawPointer(buffer), into: buffer, count: count, dtype: dtype, op: op)
        }
        let reducer = try HostReducer(dtype: dtype, op: op)
        let s = dtype.size
        func segment(_ i: Int) -> (start: Int, count: Int) {
            let lo = count * i / n, hi = count * (i + 1) / n
            return (lo, hi - lo)
        }
        let right = (rank + 1) % n, left = (rank + n - 1) % n
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: (count / n + 1) * s, alignment: 64)
        defer { scratch.deallocate() }
        try transport.operationLock.withLock {
            // Reduce-scatter: after n - 1 steps rank r holds segment (r + 1) mod n summed over all ranks.
            for step in 0..<(n - 1) {
                let out = segment((rank - step + n) % n), into = segment((rank - step - 1 + 2 * n) % n)
                try exchange(
                    send: (right, UnsafeRawPointer(buffer + out.start * s), out.count * s),
                    recv: (left, scratch, into.count * s),
                    "allSum (\(dtype))")
                try reducer.combine(into: buffer + into.start * s, from: scratch, count: into.count)
            }
            // All-gather of the reduced segments.
            for step in 0..<(n - 1) {
                let out = segment((rank + 1 - step + n) % n), into = segment((rank - step + n) % n)
                try exchange(
                    send: (right, UnsafeRawPointer(buffer + out.start * s), out.count * s),
                    recv: (left, buffer + into.start * s, into.count * s),
                    "allSum (\(dtype))")
            }
        }
    }

    func allGather(_ input: UnsafeRawPointer, bytes: Int, into output: UnsafeMutableRawPointer) throws {
        let n = size
        (output + rank * bytes).copyMemory(from: input, byteCount: bytes)
        guard n > 1 else { return }
        let right = (rank + 1) % n, left = (rank + n - 1) % n
        try transport.operationLock.withLock {
            for step in 0..<(n - 1) {
                let out = (rank - step + n) % n, into = (rank - step - 1 + 2 * n) % n
                try exchange(
                    send: (right, UnsafeRawPointer(output + out * bytes), bytes),
                    recv: (left, output + into * bytes, bytes), "allGather")
            }
        }
    }

    func send(_ buffer: UnsafeRawPointer, bytes: Int, to peer: Int) throws {
        try checkPeer(peer)
        try transport.operationLock.withLock { try exchange(send: (peer, buffer, bytes), recv: nil, "send to \(peer)") }
    }

    func recv(_ buffer: UnsafeMutableRawPointer, bytes: Int, from peer: Int) throws {
        try checkPeer(peer)
        try transport.operationLock.withLock {
            try exchange(send: nil, recv: (peer, buffer, bytes), "recv from \(peer)")
        }
    }

    func awaitMessage(from peer: Int) throws {
        try checkPeer(peer)
        try transport.awaitReadable(peer: world(peer))
    }

    private func checkPeer(_ peer: Int) throws {
        guard peer >= 0, peer < size, peer != rank else {
            throw DistributedError.badConfiguration("peer \(peer) is not another rank of a group of \(size)")
        }
    }

    func split(color: Int, key: Int) throws -> Communicator {
        let members = try splitMembers(self, color: color, key: key)
        return RingCommunicator(transport: transport, members: members.map { self.members[$0] })
    }
}

/// The ranks (in `communicator`) of those that passed `color`, ordered by key then rank.
func splitMembers(_ communicator: Communicator, color: Int, key: Int) throws -> [Int] {
    var mine: (Int64, Int64) = (Int64(color), Int64(key))
    var all = [Int64](repeating: 0, count: 2 * communicator.size)
    try withUnsafeBytes(of: &mine) { m in
        try all.withUnsafeMutableBytes { try communicator.allGather(m.baseAddress!, bytes: 16, into: $0.baseAddress!) }
    }
    return (0..<communicator.size)
        .filter { all[2 * $0] == Int64(color) }
        .sorted { (all[2 * $0 + 1], $0) < (all[2 * $1 + 1], $1) }
}
