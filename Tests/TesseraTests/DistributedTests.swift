// Tessera.Distributed in one process: with no world configured the group is
// this process alone and collectives are identities; backends that are not
// configured fail with a typed error. The multi-process tests are in
// TesseraCLITests/LaunchTests.swift.

import Tessera
import XCTest

final class DistributedTests: XCTestCase {
    func testAGroupOfOneMakesEveryCollectiveTheIdentity() throws {
        let group = try Distributed(backend: .any)
        XCTAssertEqual(group.size, 1)
        XCTAssertEqual(group.rank, 0)
        let x = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        for y in [allSum(x, group: group), allMax(x, group: group), allMin(x, group: group), allGather(x, group: group),
                  sumScatter(x, group: group)] {
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
}
