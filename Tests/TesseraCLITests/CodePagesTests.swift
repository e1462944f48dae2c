// Dropping the start-up code pages after a model loads: which mappings are
// dropped, and that the process keeps running the dropped code afterwards.

import Tessera
import XCTest

@testable import TesseraCLI

final class CodePagesTests: XCTestCase {
    func testOnlyCleanReadOnlyMappingsOfCodeFilesAreReleasable() {
        typealias M = CodePages.Mapping
        let all = [
            M(start: 0x1000, end: 0x2000, permissions: "r--p", path: "/bin/tool", residentKB: 4),
            M(start: 0x2000, end: 0x9000, permissions: "r-xp", path: "/bin/tool", residentKB: 28),
            // relocated RELRO: its private copies would be lost
            M(start: 0x9000, end: 0xA000, permissions: "r--p", path: "/bin/tool", residentKB: 4, anonymousKB: 4),
            M(start: 0xA000, end: 0xB000, permissions: "rw-p", path: "/bin/tool", residentKB: 4),
            M(start: 0xB000, end: 0xC000, permissions: "r-xp", path: "/lib/libc.so.6", residentKB: 4),
            M(start: 0xC000, end: 0xD000, permissions: "r--p", path: "/lib/libc.so.6", residentKB: 0),
            // a data file (a model) has no executable mapping
            M(start: 0xD000, end: 0xF000, permissions: "r--p", path: "/models/m.gguf", residentKB: 8),
            M(start: 0xF000, end: 0x10000, permissions: "r-xs", path: "/dev/shm/x", residentKB: 4),
            M(start: 0x10000, end: 0x11000, permissions: "r-xp", path: "[vdso]", residentKB: 4),
            M(start: 0x11000, end: 0x12000, permissions: "rw-p", path: "", residentKB: 4, anonymousKB: 4)
        ]
        XCTAssertEqual(CodePages.releasable(all).map(\.start), [0x1000, 0x2000, 0xB000])
    }

    func testReleaseDropsResidentCodePagesAndTheCodeStillRuns() throws {
        let before = CodePages.releasable(CodePages.mappings())
        try XCTSkipIf(before.isEmpty, "no /proc/self/smaps here")
        let residentBefore = before.reduce(0) { $0 + $1.residentKB }
        let released = CodePages.release()
        XCTAssertGreaterThan(released, 0)
        XCTAssertLessThanOrEqual(released, residentBefore * 1024 + (1 << 20))
        let residentAfter = CodePages.releasable(CodePages.mappings()).reduce(0) { $0 + $1.residentKB }
        XCTAssertLessThan(residentAfter, residentBefore)
        // Code that ran before runs again (its pages fault back in): a product checked by hand.
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        let b = Tensor([7, 8, 9, 10, 11, 12] as [Float], shape: [3, 2])
        XCTAssertEqual(matmul(a, b).toArray(Float.self), [58, 64, 139, 154])
    }
}
