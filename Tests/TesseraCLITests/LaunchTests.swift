// Multi-process tests of Tessera.Distributed through `tessera launch`: 2 and 3
// ranks of tessera-dist-worker (Tests/DistributedWorker) over the TCP ring
// and Open MPI, each rank checking its results against the single-process
// result. Every run has a deadline; a run past it is stopped and fails.

import Foundation
import XCTest

final class LaunchTests: XCTestCase {
    struct Run {
        var status: Int32
        var output: String
        var seconds: Double
    }

    /// `tessera launch ARGS` with the worker's folder on PATH, stopped after `deadline` seconds.
    func launch(_ arguments: [String], deadline: Double = 60) throws -> Run {
        let binary = try tesseraBinary()
        let folder = binary.deletingLastPathComponent()
        guard FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("tessera-dist-worker").path)
        else {
            throw XCTSkip("no tessera-dist-worker beside \(binary.path) (swift build --product tessera-dist-worker)")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = ["launch"] + arguments
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = folder.path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        process.environment = env
        let run = try Self.runToEnd(process, deadline: deadline)
        XCTAssertLessThan(run.seconds, deadline, "tessera launch \(arguments) passed its deadline:\n\(run.output)")
        return run
    }

    /// Runs `process` with stdout and stderr together, terminated after `deadline` seconds.
    static func runToEnd(_ process: Process, deadline: Double) throws -> Run {
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        let start = Date()
        try process.run()
        let timer = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + deadline, execute: timer)
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        timer.cancel()
        return Run(status: process.terminationStatus, output: output, seconds: Date().timeIntervalSince(start))
    }

    func assertAllRanksOK(_ run: Run, ranks: Int, mode: String, _ what: String) {
        XCTAssertEqual(run.status, 0, "\(what):\n\(run.output)")
        for r in 0..<ranks {
            XCTAssertTrue(
                run.output.contains("rank \(r) ok \(mode)"), "\(what): rank \(r) did not pass:\n\(run.output)")
        }
    }

    static let digits = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/digits.npz").path

    func testRingCollectivesSplitSendRecvAndGradientsOnTwoAndThreeRanks() throws {
        for n in [2, 3] {
            for mode in ["collectives", "split", "sendrecv", "sendrecv-grad", "grad", "sharded", "implicit"] {
                let run = try launch(["-n", "\(n)", "--timeout", "20", "--", "tessera-dist-worker", mode, "ring"])
                assertAllRanksOK(run, ranks: n, mode: mode, "ring \(mode) on \(n) ranks")
                // Each line carries its rank.
                XCTAssertTrue(run.output.contains("[\(n - 1)] rank \(n - 1) ok"), run.output)
            }
        }
    }

    /// Local ranks take shared memory for the world's all-reduces; TESSERA_RING_SHM=0
    /// keeps them on TCP (the multi-host path), and both give the single-process results.
    func testRingAllReducesOverSharedMemoryAndOverTCP() throws {
        let shm = try launch(["-n", "2", "--timeout", "20", "--", "tessera-dist-worker", "collectives", "ring"])
        assertAllRanksOK(shm, ranks: 2, mode: "collectives", "ring collectives over shared memory")
        XCTAssertTrue(shm.output.contains("ok collectives ring size 2 via shared memory"), shm.output)
        for n in [2, 3] {
            let tcp = try launch([
                "-n", "\(n)", "--timeout", "20", "--env", "TESSERA_RING_SHM=0", "--",
                "tessera-dist-worker", "collectives", "ring"
            ])
            assertAllRanksOK(tcp, ranks: n, mode: "collectives", "ring collectives over TCP on \(n) ranks")
            XCTAssertTrue(tcp.output.contains("ok collectives ring size \(n) via tcp"), tcp.output)
        }
    }

    func testRingDataParallelTrainingEqualsSingleProcessTraining() throws {
        let run = try launch(["-n", "2", "--timeout", "20", "--", "tessera-dist-worker", "train", "ring", Self.digits])
        assertAllRanksOK(run, ranks: 2, mode: "train", "ring data-parallel digits MLP")
    }

    func testAHostfileOfLocalEntriesRunsOneRankPerEntry() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-hosts-\(UUID().uuidString).json")
        try Data(
            #"[{"ssh": "localhost", "ips": ["127.0.0.1"]}, {"ssh": "localhost", "ips": ["127.0.0.1"]}, {"ips": ["127.0.0.1"]}]"#
                .utf8
        )
        .write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try launch(["--hostfile", file.path, "--timeout", "20", "--", "tessera-dist-worker", "split", "ring"])
        assertAllRanksOK(run, ranks: 3, mode: "split", "hostfile of 3 local entries")
        // A hostfile that is not MLX's shape is a usage error, not a crash.
        try Data(#"{"hosts": 3}"#.utf8).write(to: file)
        let bad = try launch(["--hostfile", file.path, "--", "true"], deadline: 20)
        XCTAssertNotEqual(bad.status, 0, bad.output)
        XCTAssertTrue(bad.output.contains("hostfile"), bad.output)
    }

    func testAKilledRankEndsTheOthersWithAnErrorWithinTheTimeout() throws {
        // Over shared memory (the survivors wait on flags and watch the sockets) and over TCP.
        for env in [[], ["--env", "TESSERA_RING_SHM=0"]] {
            let run = try launch(
                ["-n", "3", "--timeout", "10"] + env + ["--", "tessera-dist-worker", "die", "ring"], deadline: 40)
            XCTAssertNotEqual(run.status, 0, run.output)
            for r in [0, 2] {
                XCTAssertTrue(
                    run.output.contains("[\(r)] distributed error: rank "), "rank \(r) \(env):\n\(run.output)")
            }
            XCTAssertLessThan(run.seconds, 30, run.output)
        }
    }

    func testAnUnreachablePeerIsATypedErrorNotAHang() throws {
        // Rank 1 never starts: a hostfile-free ring of 2 where only rank 0 runs.
        let process = Process()
        let worker = try tesseraBinary().deletingLastPathComponent().appendingPathComponent("tessera-dist-worker")
        guard FileManager.default.isExecutableFile(atPath: worker.path) else { throw XCTSkip("no tessera-dist-worker") }
        process.executableURL = worker
        process.arguments = ["collectives", "ring"]
        var env = ProcessInfo.processInfo.environment
        env["TESSERA_RANK"] = "1"
        env["TESSERA_WORLD_SIZE"] = "2"
        // Rank 0 at a port nobody listens on; rank 1 (this one) at a free one.
        env["TESSERA_RING_HOSTS"] = "127.0.0.1:1,127.0.0.1:\(Int.random(in: 40000..<60000))"
        env["TESSERA_DIST_TIMEOUT"] = "2"
        process.environment = env
        let out = Pipe()
        process.standardOutput = out
        let start = Date()
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 2, output)
        XCTAssertTrue(output.contains("distributed error: rank 0 at 127.0.0.1:1 unreachable"), output)
        // Collectives without a group: the same world, the same typed error at evaluation.
        let implicit = Process()
        implicit.executableURL = worker
        implicit.arguments = ["implicit", "any"]
        implicit.environment = env
        let implicitOut = Pipe()
        implicit.standardOutput = implicitOut
        try implicit.run()
        let implicitText = String(decoding: implicitOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        implicit.waitUntilExit()
        XCTAssertEqual(implicit.terminationStatus, 2, implicitText)
        XCTAssertTrue(implicitText.contains("unreachable"), implicitText)
        // Not before the timeout (it retries while the peer may still be starting), and not long after.
        let seconds = Date().timeIntervalSince(start)
        XCTAssertGreaterThanOrEqual(seconds, 2)
        XCTAssertLessThan(seconds, 15)
    }

    func testMPICollectivesGradientsAndTraining() throws {
        let hasMPI =
            ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].contains { FileManager.default.isExecutableFile(atPath: $0) }
            && FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libmpi.so.40")
        if !hasMPI {
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_MPI"] == "1" {
                XCTFail("Open MPI is required here (apt-get install openmpi-bin libopenmpi-dev)")
            }
            throw XCTSkip("Open MPI not installed (apt-get install openmpi-bin libopenmpi-dev)")
        }
        for (n, mode) in [
            (2, "collectives"), (3, "collectives"), (3, "split"), (3, "sendrecv"), (2, "grad"), (2, "sharded")
        ] {
            let run = try launch(["-n", "\(n)", "--backend", "mpi", "--", "tessera-dist-worker", mode, "mpi"])
            assertAllRanksOK(run, ranks: n, mode: mode, "mpi \(mode) on \(n) ranks")
        }
        let run = try launch(["-n", "2", "--backend", "mpi", "--", "tessera-dist-worker", "train", "mpi", Self.digits])
        assertAllRanksOK(run, ranks: 2, mode: "train", "mpi data-parallel digits MLP")
    }

    /// Runs Tests/DistributedWorker/netns-ring.sh: 3 ranks in network namespaces joined by a bridge.
    func namespaces(_ mode: String, _ extra: [String] = []) throws -> Run {
        let worker = try tesseraBinary().deletingLastPathComponent().appendingPathComponent("tessera-dist-worker")
        guard FileManager.default.isExecutableFile(atPath: worker.path) else { throw XCTSkip("no tessera-dist-worker") }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("DistributedWorker/netns-ring.sh")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bash", script.path, worker.path, mode] + extra
        let run = try Self.runToEnd(process, deadline: 90)
        if run.status == 77 {
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_NETNS"] == "1" {
                XCTFail("network namespaces are required here (root, iproute2)")
            }
            throw XCTSkip("network namespaces not permitted here (needs root and iproute2)")
        }
        return run
    }

    func testRingAcrossThreeNetworkNamespaces() throws {
        for mode in ["collectives", "sendrecv"] {
            let run = try namespaces(mode)
            assertAllRanksOK(run, ranks: 3, mode: mode, "ring \(mode) across namespaces")
            XCTAssertTrue(run.output.contains("size 3"), run.output)
        }
        // A rank killed mid-collective: the other two report it within the timeout.
        let run = try namespaces("die")
        XCTAssertNotEqual(run.status, 0, run.output)
        for r in [0, 2] { XCTAssertTrue(run.output.contains("[\(r)] distributed error: rank "), run.output) }
        XCTAssertLessThan(run.seconds, 60, run.output)
    }

    /// NCCL's id exchange over the launcher's ring (no GPU needed); then
    /// `--backend nccl` where libnccl or a GPU is missing: every rank ends with
    /// the typed error (exit 2), none hangs.
    func testNCCLBootstrapOverTheRingAndTheTypedErrorWithoutNCCL() throws {
        let run = try launch(["-n", "3", "--timeout", "20", "--", "tessera-dist-worker", "nccl-id", "ring"])
        assertAllRanksOK(run, ranks: 3, mode: "nccl-id", "NCCL id over the ring")
        let ids = run.output.split(separator: "\n").compactMap { line in
            line.range(of: "ncclid=").map { String(line[$0.upperBound...]) }
        }
        XCTAssertEqual(ids.count, 3, run.output)
        XCTAssertEqual(Set(ids).count, 1, "the ranks hold different ids:\n\(run.output)")
        XCTAssertEqual(ids.first?.count, 256)
        XCTAssertNotEqual(ids.first, String(repeating: "0", count: 256))

        let nccl = try launch([
            "-n", "2", "--backend", "nccl", "--timeout", "20", "--",
            "tessera-dist-worker", "collectives", "any"
        ])
        if nccl.output.contains("ok collectives nccl") {
            throw XCTSkip("NCCL and a GPU are here: docs/GPU.md's checks")
        }
        XCTAssertNotEqual(nccl.status, 0, nccl.output)
        let errors = nccl.output.components(separatedBy: "distributed backend nccl unavailable").count - 1
        XCTAssertEqual(errors, 2, nccl.output)
    }

    func testLaunchRejectsBadArguments() throws {
        for args in [
            ["-n", "2"], ["-n", "0", "--", "true"], ["--backend", "carrier-pigeon", "--", "true"],
            ["--env", "NOEQUALS", "--", "true"]
        ] {
            let run = try launch(args, deadline: 20)
            XCTAssertNotEqual(run.status, 0, "\(args) was accepted:\n\(run.output)")
        }
        // A failing rank makes the launcher fail.
        let run = try launch(["-n", "2", "--", "sh", "-c", "exit $TESSERA_RANK"], deadline: 20)
        XCTAssertNotEqual(run.status, 0, run.output)
    }
}
