// Tessera.Distributed in one process: with no world configured the group is
// this process alone and collectives are identities; backends that are not
// configured fail with a typed error; which GPU a rank takes and NCCL's
// timeout loop (RankDevice.swift), which need no GPU. The multi-process tests
// are in TesseraCLITests/LaunchTests.swift.

import Tessera
import XCTest

final class DistributedTests: XCTestCase {
    func testAGroupOfOneMakesEveryCollectiveTheIdentity() throws {
        let group = try Distributed(backend: .any)
        XCTAssertEqual(group.size, 1)
        XCTAssertEqual(group.rank, 0)
        let x = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        for y in [
            allSum(x, group: group), allMax(x, group: group), allMin(x, group: group), allGather(x, group: group),
            sumScatter(x, group: group)
        ] {
            XCTAssertEqual(y.toArray(Float.self), [1, 2, 3, 4])
            XCTAssertEqual(y.shape, [2, 2])
        }
        XCTAssertEqual(try group.split(color: 0).size, 1)
        // Gradients through a group of one are those of the identity.
        let g = grad { (x: Tensor) in (allSum(x, group: group) * allSum(x, group: group)).sum() }(x)
        XCTAssertEqual(g.toArray(Float.self), [2, 4, 6, 8])
    }

    func testStrictOrUnconfiguredBackendsThrowTypedErrors() {
        XCTAssertThrowsError(try Distributed(backend: .any, strict: true)) { error in
            guard case DistributedError.backendUnavailable = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Distributed(backend: .ring)) { error in
            guard case DistributedError.backendUnavailable = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Distributed(backend: .nccl)) { error in
            guard case DistributedError.backendUnavailable = error else { return XCTFail("\(error)") }
        }
    }

    func testEachLocalRankTakesItsOwnDevice() throws {
        XCTAssertEqual(try RankDevice.ordinal(environment: [:], deviceCount: 4), 0)
        let launched = { (rank: Int, size: Int) in
            [RankDevice.localRankVariable: "\(rank)", RankDevice.localSizeVariable: "\(size)"]
        }
        XCTAssertEqual(
            try (0..<4).map { try RankDevice.ordinal(environment: launched($0, 4), deviceCount: 4) }, [0, 1, 2, 3])
        // More ranks than devices wrap round (fine for the ring; NCCL refuses it below).
        XCTAssertEqual(try RankDevice.ordinal(environment: launched(5, 6), deviceCount: 4), 1)
        // Open MPI's mpirun says the same with its own names.
        XCTAssertEqual(
            try RankDevice.ordinal(
                environment: ["OMPI_COMM_WORLD_LOCAL_RANK": "2", "OMPI_COMM_WORLD_LOCAL_SIZE": "3"], deviceCount: 8), 2)
        // One visible device per rank (CUDA_VISIBLE_DEVICES set per rank): device 0 each.
        XCTAssertEqual(try RankDevice.ordinal(environment: launched(3, 4), deviceCount: 1), 0)
        // An explicit device wins.
        XCTAssertEqual(
            try RankDevice.ordinal(
                environment: launched(1, 2).merging([RankDevice.deviceVariable: "3"]) { $1 }, deviceCount: 4), 3)
        func assertBad(
            _ environment: [String: String], devices: Int = 4, file: StaticString = #filePath, line: UInt = #line
        ) {
            XCTAssertThrowsError(
                try RankDevice.ordinal(environment: environment, deviceCount: devices), file: file, line: line
            ) {
                guard case DistributedError.badConfiguration = $0 else {
                    return XCTFail("\($0)", file: file, line: line)
                }
            }
        }
        assertBad([RankDevice.deviceVariable: "4"])
        assertBad([RankDevice.deviceVariable: "gpu1"])
        assertBad([RankDevice.deviceVariable: "-1"])
        assertBad([RankDevice.localRankVariable: "one"])
        assertBad([RankDevice.localRankVariable: "-2"])
        assertBad(launched(2, 2))
        assertBad([RankDevice.localRankVariable: "0", RankDevice.localSizeVariable: "x"])
        XCTAssertThrowsError(try RankDevice.ordinal(environment: [:], deviceCount: 0)) {
            guard case DistributedError.backendUnavailable = $0 else { return XCTFail("\($0)") }
        }
        // NCCL: one GPU per rank of a host.
        XCTAssertNoThrow(try RankDevice.checkOneDevicePerRank(environment: launched(1, 2), deviceCount: 2))
        XCTAssertNoThrow(try RankDevice.checkOneDevicePerRank(environment: [:], deviceCount: 1))
        XCTAssertThrowsError(try RankDevice.checkOneDevicePerRank(environment: launched(0, 3), deviceCount: 2)) {
            guard case DistributedError.badConfiguration(let why) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("3 ranks on this host but 2 visible CUDA device(s)"), why)
        }
    }

    func testNCCLWaitsEndInATimeoutOrTheErrorNeverAHang() throws {
        // A peer that never comes: the wait aborts once and throws timedOut after its timeout.
        var aborts = 0
        let start = ContinuousClock.now
        XCTAssertThrowsError(
            try NCCLProgress.wait(
                operation: "ncclCommInitRank(rank 0 of 2)", timeout: 0.2, state: { .pending }, abort: { aborts += 1 })
        ) { error in
            XCTAssertEqual(
                error as? DistributedError, .timedOut(operation: "ncclCommInitRank(rank 0 of 2)", seconds: 0.2))
        }
        let waited = ContinuousClock.now - start
        XCTAssertEqual(aborts, 1)
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(200))
        XCTAssertLessThan(waited, .seconds(5))
        // In progress a while, then done: no abort.
        var polls = 0
        try NCCLProgress.wait(
            operation: "ncclAllReduce", timeout: 5,
            state: {
                polls += 1
                return polls < 150 ? .pending : .done
            }, abort: { aborts += 1 })
        XCTAssertEqual(polls, 150)
        XCTAssertEqual(aborts, 1)
        // An asynchronous error: aborted, and the error names the call.
        XCTAssertThrowsError(
            try NCCLProgress.wait(
                operation: "ncclAllGather", timeout: 5, state: { .failed("remote process exited (ncclResult_t 6)") },
                abort: { aborts += 1 })
        ) { error in
            XCTAssertEqual(
                error as? DistributedError, .backendError("ncclAllGather: remote process exited (ncclResult_t 6)"))
        }
        XCTAssertEqual(aborts, 2)
    }
}
