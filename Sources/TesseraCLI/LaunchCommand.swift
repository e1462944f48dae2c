// `tessera launch`: starts the ranks of a distributed program. Ring: N local
// processes (or one per hostfile entry, over ssh where the entry names a
// remote host) with TESSERA_RANK, TESSERA_WORLD_SIZE and TESSERA_RING_HOSTS
// set; MPI: one `mpirun`. Each output line is prefixed with its rank,
// SIGINT/SIGTERM are passed on, and the launcher exits non-zero if any rank
// fails (stopping the others after a grace period).

import ArgumentParser
import Dispatch
import Foundation
import Tessera

struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Run a command as the ranks of a distributed group.",
        discussion: """
            Examples:
              tessera launch -n 2 -- my-training-program --epochs 3
              tessera launch --hostfile hosts.json -- ./program     (one rank per host entry)
              tessera launch -n 4 --backend mpi -- ./program        (through Open MPI's mpirun)

            A hostfile is JSON as MLX's: [{"ssh": "host1", "ips": ["10.0.0.1"]}, ...]; rank i
            runs on entry i (locally when its ssh host is localhost), and the ring
            listens on ips[0] at --port + i.
            """)

    @Option(name: .shortAndLong, help: "The number of ranks (default: one per hostfile entry, else 1).")
    var n: Int?

    @Option(help: "A JSON hostfile: [{\"ssh\": \"host\", \"ips\": [\"10.0.0.1\"]}, ...].")
    var hostfile: String?

    @Option(
        help: "The backend: ring (TCP, no install), mpi (Open MPI's mpirun) or nccl (GPUs; the ring carries its id).")
    var backend: String = "ring"

    @Option(name: .customLong("env"), help: "K=V set for every rank (repeatable).")
    var environment: [String] = []

    @Option(help: "The ring's first TCP port (rank i listens on port + i; default: free local ports).")
    var port: Int?

    @Option(help: "Seconds a rank waits for a peer before failing (TESSERA_DIST_TIMEOUT).")
    var timeout: Double?

    @Option(help: "Seconds the other ranks get to finish after one fails, before they are stopped.")
    var grace: Double = 10

    @Argument(parsing: .captureForPassthrough, help: "The command each rank runs (after --).")
    var command: [String] = []

    struct HostEntry: Decodable {
        var ssh: String?
        var ips: [String]?
    }

    var program: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        // `launch --help` asks for this help (the passthrough argument would take it as the command).
        if let first = command.first, ["--help", "-h", "-help"].contains(first) {
            throw CleanExit.helpRequest(Self.self)
        }
        guard !program.isEmpty else { throw ValidationError("give the command to run after --") }
        guard ["ring", "mpi", "nccl"].contains(backend) else {
            throw ValidationError("--backend must be ring, mpi or nccl")
        }
        if let n, n < 1 || n > 1024 { throw ValidationError("-n must be 1...1024") }
        for pair in environment where !pair.contains("=") || pair.hasPrefix("=") {
            throw ValidationError("--env takes K=V, got '\(pair)'")
        }
        if let port, port < 1 || port > 65000 { throw ValidationError("--port must be 1...65000") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        let hosts = try hostfile.map(Self.readHostfile) ?? []
        if let n, !hosts.isEmpty, n != hosts.count {
            throw ValidationError("-n \(n) but the hostfile lists \(hosts.count) hosts")
        }
        let count = n ?? (hosts.isEmpty ? 1 : hosts.count)
        var shared: [String: String] = [:]
        for pair in environment {
            let i = pair.firstIndex(of: "=")!
            shared[String(pair[..<i])] = String(pair[pair.index(after: i)...])
        }
        shared[DistributedEnvironment.worldSize] = String(count)
        if let timeout { shared[DistributedEnvironment.timeout] = String(timeout) }
        let launcher = RankLauncher(grace: grace)
        if backend == "mpi" {
            shared[DistributedEnvironment.backend] = "mpi"
            try launcher.start(
                rankLabel: nil, arguments: mpirunArguments(count: count, hosts: hosts, environment: shared),
                environment: [:])
        } else {
            // nccl: the ring carries rank 0's NCCL id (NCCLBootstrap), then NCCL runs the collectives.
            shared[DistributedEnvironment.backend] = backend
            let ports = try port.map { p in (0..<count).map { p + $0 } } ?? Self.freePorts(count)
            let addresses = (0..<count).map { i -> String in
                let ip = hosts.isEmpty ? "127.0.0.1" : hosts[i].ips?.first ?? hosts[i].ssh ?? "127.0.0.1"
                return "\(ip):\(ports[i])"
            }
            shared[DistributedEnvironment.ringHosts] = addresses.joined(separator: ",")
            // Each rank's place among the ranks of its host (which GPU it takes: RankDevice).
            let hostOf = (0..<count).map { hosts.isEmpty ? "local" : hosts[$0].ssh ?? hosts[$0].ips?.first ?? "local" }
            for rank in 0..<count {
                var env = shared
                env[DistributedEnvironment.rank] = String(rank)
                env[RankDevice.localRankVariable] = String((0..<rank).filter { hostOf[$0] == hostOf[rank] }.count)
                env[RankDevice.localSizeVariable] = String(hostOf.filter { $0 == hostOf[rank] }.count)
                let remote = hosts.isEmpty ? nil : hosts[rank].ssh.flatMap { Self.isLocal($0) ? nil : $0 }
                if let remote {
                    // The same working directory and variables on the remote host.
                    let assignments = env.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quoted($0.value))" }
                    let line =
                        "cd \(Self.quoted(FileManager.default.currentDirectoryPath)) && env "
                        + (assignments + program.map(Self.quoted)).joined(separator: " ")
                    try launcher.start(
                        rankLabel: rank, arguments: ["ssh", "-o", "BatchMode=yes", remote, line], environment: [:])
                } else {
                    try launcher.start(rankLabel: rank, arguments: program, environment: env)
                }
            }
        }
        let status = launcher.wait()
        if status != 0 { throw ExitCode(status) }
    }

    private func mpirunArguments(count: Int, hosts: [HostEntry], environment: [String: String]) throws -> [String] {
        var args = ["mpirun", "-np", String(count), "--oversubscribe", "--tag-output"]
        if getuid() == 0 { args.append("--allow-run-as-root") }
        if !hosts.isEmpty {
            let names = hosts.map { $0.ssh ?? "localhost" }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-mpi-hosts-\(getpid())")
            try names.map { "\($0) slots=1" }.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
            args += ["--hostfile", file.path]
        }
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) { args += ["-x", "\(k)=\(v)"] }
        return args + program
    }

    static func readHostfile(_ path: String) throws -> [HostEntry] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count < 1 << 20 else { throw ValidationError("hostfile \(path) is over 1 MiB") }
        do {
            let entries = try JSONDecoder().decode([HostEntry].self, from: data)
            guard !entries.isEmpty else { throw ValidationError("hostfile \(path) lists no hosts") }
            for (i, e) in entries.enumerated() where e.ssh == nil && (e.ips ?? []).isEmpty {
                throw ValidationError("hostfile entry \(i) has neither ssh nor ips")
            }
            return entries
        } catch let error as DecodingError {
            throw ValidationError("hostfile \(path) is not [{\"ssh\": ..., \"ips\": [...]}]: \(error)")
        }
    }

    static func isLocal(_ host: String) -> Bool {
        ["localhost", "127.0.0.1", "::1", ProcessInfo.processInfo.hostName].contains(host)
    }

    static func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// Ports the kernel hands out as free now (bound to port 0, then released).
    static func freePorts(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        var sockets: [Int32] = []
        defer { for s in sockets { close(s) } }
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
            sockets.append(fd)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = 0
            addr.sin_addr.s_addr = INADDR_ANY
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
                }
            }
            guard ok else { throw ValidationError("no free port: \(String(cString: strerror(errno)))") }
            ports.append(Int(UInt16(bigEndian: addr.sin_port)))
        }
        return ports
    }
}

/// The pipe the signal handler writes to (set once, before the handler is installed).
enum LaunchSignals {
    nonisolated(unsafe) static var writeEnd: Int32 = -1
}

/// The rank processes: output prefixed by rank, signals passed on, the first failure remembered.
final class RankLauncher: @unchecked Sendable {
    private let lock = NSLock()
    private var processes: [Process] = []
    private var readers: [Thread] = []
    private var firstFailure: Int32?
    private let grace: Double
    private let finished = DispatchGroup()

    init(grace: Double) {
        self.grace = grace
        // A handler (not SIG_IGN, which children would inherit through exec)
        // that writes the signal's number to a pipe; a thread passes it on.
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            LaunchSignals.writeEnd = fds[1]
            let readEnd = fds[0]
            Thread { [weak self] in
                var sig: Int32 = 0
                while read(readEnd, &sig, 4) == 4 { self?.forward(sig) }
            }.start()
            for sig in [SIGINT, SIGTERM] {
                signal(sig) { s in
                    var number = s
                    _ = write(LaunchSignals.writeEnd, &number, 4)
                }
            }
        }
    }

    private func forward(_ sig: Int32) {
        lock.lock()
        let running = processes.filter(\.isRunning)
        lock.unlock()
        for p in running { kill(p.processIdentifier, sig) }
    }

    /// Starts `arguments` (looked up on PATH); its lines get the prefix "[rank] " when `rankLabel` is set.
    func start(rankLabel: Int?, arguments: [String], environment: [String: String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let prefix = rankLabel.map { "[\($0)] " } ?? ""
        // The rank counts as finished once it exited and both its streams reached end of file.
        let streams = DispatchGroup()
        streams.enter()
        streams.enter()
        finished.enter()
        let done = finished
        process.terminationHandler = { [weak self] p in
            let failed = p.terminationStatus != 0 || p.terminationReason == .uncaughtSignal
            if failed {
                self?.rankFailed(
                    status: p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus)
            }
            streams.notify(queue: .global()) { done.leave() }
        }
        // The child inherits this thread's signal mask (a pool thread blocks most
        // signals): spawn with none blocked, so ranks see SIGINT, SIGTERM and SIGCHLD.
        var none = sigset_t(), saved = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        do { try process.run() } catch {
            finished.leave()
            throw ValidationError("cannot start \(arguments.first ?? ""): \(error)")
        }
        lock.lock()
        processes.append(process)
        lock.unlock()
        for (pipe, sink) in [(out, FileHandle.standardOutput), (err, FileHandle.standardError)] {
            let thread = Thread { [lock] in
                var pending = Data()
                while true {
                    let chunk = pipe.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    pending.append(chunk)
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = pending[pending.startIndex...newline]
                        lock.lock()
                        sink.write(Data(prefix.utf8) + line)
                        lock.unlock()
                        pending.removeSubrange(pending.startIndex...newline)
                    }
                }
                if !pending.isEmpty {
                    lock.lock()
                    sink.write(Data(prefix.utf8) + pending + Data("\n".utf8))
                    lock.unlock()
                }
                streams.leave()
            }
            thread.start()
        }
    }

    private func rankFailed(status: Int32) {
        lock.lock()
        let first = firstFailure == nil
        if first { firstFailure = status }
        lock.unlock()
        guard first else { return }
        // Give the others time to report the failure themselves, then stop them.
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [weak self] in self?.forward(SIGTERM) }
    }

    /// Waits for every rank; 0 if all succeeded, else the first failure's status.
    func wait() -> Int32 {
        finished.wait()
        lock.lock()
        defer { lock.unlock() }
        return firstFailure.map { $0 == 0 ? 1 : $0 } ?? 0
    }
}
