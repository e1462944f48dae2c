// Shared helpers of TesseraTests: running Python peers (skipped with a one-line
// reason where python3 or a module is missing, unless TESSERA_REQUIRE_PYTHON=1).

import Foundation
import XCTest

/// Runs a Python snippet that imports `modules`; its stdout. Where python3 or
/// one of the modules is missing the test is skipped with a one-line reason,
/// unless TESSERA_REQUIRE_PYTHON=1 (CI installs them, so there it fails).
func runPython(
    needs modules: [String], _ code: String, file: StaticString = #filePath, line: UInt = #line
) throws -> String {
    if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_PYTHON"] != "1" {
        let probe = try python(["-c", "import " + modules.joined(separator: ", ")])
        if probe.status != 0 {
            throw XCTSkip("needs python3 with \(modules.joined(separator: ", ")) (pip install them to run it)")
        }
    }
    let result = try python(["-c", code])
    guard result.status == 0 else {
        XCTFail("python failed: \(result.stderr)", file: file, line: line)
        return ""
    }
    return result.stdout
}

/// Runs python3 from PATH with `arguments`: exit status, stdout and stderr.
private func python(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read stderr on another thread so neither pipe can fill and block the child.
    let errData = LockedData()
    let reader = Thread { errData.value = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errData.done { usleep(1000) }
    return (
        process.terminationStatus, String(decoding: data, as: UTF8.self), String(decoding: errData.value, as: UTF8.self)
    )
}

/// Data handed from a reader thread, with a flag once it is complete.
private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = Data()
    private var finished = false
    var value: Data {
        get { lock.withLock { stored } }
        set {
            lock.withLock {
                stored = newValue; finished = true
            }
        }
    }
    var done: Bool { lock.withLock { finished } }
}

/// A fresh temporary directory for one test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
