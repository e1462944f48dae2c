// The NCCL backend without a GPU: where libnccl is looked for, the dtype and
// reduction codes against nccl.h, the id bootstrap (hex, file, errors), and
// the typed error `Group(backend: .nccl)` gives where libnccl is missing.
// The collectives themselves run on a GPU machine (docs/GPU.md, "NCCL checks").

import Foundation
import XCTest

@testable import Tessera

final class NCCLTests: XCTestCase {
    func testLibraryCandidatesPutTheVariableFirstThenTheWheels() {
        let paths = CUDALibrary.nccl.candidates(
            environment: ["TESSERA_NCCL_PATH": "/opt/nccl/libnccl.so.2"], sitePackages: ["/site"])
        XCTAssertEqual(paths.first, "/opt/nccl/libnccl.so.2")
        XCTAssertTrue(paths.contains("/site/nvidia/nccl/lib/libnccl.so.2"), "\(paths)")  // nvidia-nccl-cu12
        XCTAssertEqual(paths.last, "libnccl.so.2")  // the dynamic loader's search
        XCTAssertEqual(CUDALibrary.nccl.environmentVariable, "TESSERA_NCCL_PATH")
    }

    /// ncclDataType_t and ncclRedOp_t as nccl.h numbers them (NCCL 2.x).
    func testTypeAndReductionCodesMatchNCCLHeader() {
        let expected: [DType: Int32] = [
            .int8: 0, .uint8: 1, .int32: 2, .uint32: 3, .int64: 4, .uint64: 5, .float16: 6, .float32: 7, .float64: 8,
            .bfloat16: 9
        ]
        for dtype in DType.allCases { XCTAssertEqual(NCCLTypes.code(dtype), expected[dtype], "\(dtype)") }
        XCTAssertEqual([ReduceKind.sum, .max, .min].map(NCCLTypes.op), [0, 2, 3])
        // Types NCCL lacks: bool max/min as bytes, complex sums as float pairs, the rest refused.
        XCTAssertNil(NCCLTypes.reduction(.bool, count: 4, op: .sum))
        XCTAssertEqual(NCCLTypes.reduction(.bool, count: 4, op: .max)?.type, 1)
        XCTAssertEqual(NCCLTypes.reduction(.complex64, count: 4, op: .sum)?.count, 8)
        XCTAssertNil(NCCLTypes.reduction(.complex64, count: 4, op: .max))
        XCTAssertNil(NCCLTypes.reduction(.int16, count: 4, op: .sum))
    }

    func testIDHexRoundTripsAndBadTextIsATypedError() throws {
        let id = (0..<NCCLBootstrap.idBytes).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
        let text = NCCLBootstrap.hex(id)
        XCTAssertEqual(text.count, 256)
        XCTAssertEqual(try NCCLBootstrap.parseHex(text), id)
        XCTAssertEqual(try NCCLBootstrap.parseHex(text.uppercased()), id)
        for bad in ["", String(text.dropLast()), String(text.dropLast()) + "g"] {
            XCTAssertThrowsError(try NCCLBootstrap.parseHex(bad)) { error in
                guard case DistributedError.badConfiguration = error else { return XCTFail("\(error)") }
            }
        }
    }

    func testTheEnvironmentIDIsUsedWithoutGenerating() throws {
        let id = (0..<NCCLBootstrap.idBytes).map { UInt8($0) }
        let got = try NCCLBootstrap.uniqueID(
            rank: 1, environment: [NCCLBootstrap.idVariable: NCCLBootstrap.hex(id)], timeout: 1, group: nil,
            generate: {
                XCTFail("rank 1 generated an id"); return []
            })
        XCTAssertEqual(got, id)
    }

    /// Rank 0 writes the id file; rank 1, already waiting, reads the same bytes.
    func testTheFileBootstrapGivesRankZerosIDToTheOthers() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-nccl-id-\(UUID().uuidString)")
            .path
        defer { unlink(path) }
        let environment = [NCCLBootstrap.idFileVariable: path]
        let generated = (0..<NCCLBootstrap.idBytes).map { _ in UInt8.random(in: 0...255) }
        let received = LockedBox<Result<[UInt8], Error>?>(nil)
        let waiter = Thread {
            received.value = Result {
                try NCCLBootstrap.uniqueID(rank: 1, environment: environment, timeout: 20, group: nil, generate: { [] })
            }
        }
        waiter.start()
        usleep(50_000)
        let mine = try NCCLBootstrap.uniqueID(
            rank: 0, environment: environment, timeout: 20, group: nil,
            generate: { generated })
        XCTAssertEqual(mine, generated)
        let deadline = Date().addingTimeInterval(20)
        while received.value == nil && Date() < deadline { usleep(5_000) }
        XCTAssertEqual(try XCTUnwrap(received.value).get(), generated)
    }

    func testAMissingIDFileTimesOutAndNoBootstrapIsABadConfiguration() {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-nccl-none-\(UUID().uuidString)"
        ).path
        XCTAssertThrowsError(
            try NCCLBootstrap.uniqueID(
                rank: 1, environment: [NCCLBootstrap.idFileVariable: path], timeout: 0.05, group: nil, generate: { [] })
        ) { error in
            guard case DistributedError.timedOut = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(
            try NCCLBootstrap.uniqueID(rank: 0, environment: [:], timeout: 1, group: nil, generate: { [] })
        ) {
            guard case DistributedError.badConfiguration(let reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("tessera launch --backend nccl"), reason)
        }
    }

    /// Without libnccl, `.nccl` names the library and how to install it (no crash, no hang).
    func testTheNCCLBackendWithoutLibncclIsATypedError() throws {
        if case .success(let library) = CUDALibrary.nccl.open() {
            throw XCTSkip("libnccl is installed here (\(library.path)); the GPU checks in docs/GPU.md cover it")
        }
        setenv(DistributedEnvironment.rank, "0", 1)
        setenv(DistributedEnvironment.worldSize, "2", 1)
        defer {
            unsetenv(DistributedEnvironment.rank)
            unsetenv(DistributedEnvironment.worldSize)
        }
        XCTAssertThrowsError(try Group(backend: .nccl)) { error in
            guard case DistributedError.backendUnavailable(let backend, let reason) = error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(backend, "nccl")
            XCTAssertTrue(reason.contains("libnccl.so.2 not found") && reason.contains("nvidia-nccl-cu12"), reason)
        }
    }
}

/// A value shared between a test and a thread it starts.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
