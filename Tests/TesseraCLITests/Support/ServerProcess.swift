// Shared by the tests that start `tessera serve` as a real process
// (ServeBinaryTests, DistributedServeTests): the running server with its
// address read from its output, and the check that python3 has the SDKs the
// test drives it with.

import Foundation
import XCTest

/// A running `tessera` process that serves: `arguments` is its subcommand line
/// (`serve --port 0 ...`, or `launch -n 2 -- tessera serve ...`); its address
/// is read from its output (stderr and stdout together).
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var log = ""
    private(set) var address = ""

    /// Starts the process and waits up to `seconds` for the address it prints;
    /// a process that exits or prints none by then is killed and an error thrown.
    init(_ arguments: [String], deadline seconds: Double = 240) throws {
        process.executableURL = try tesseraBinary()
        process.arguments = arguments
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        try process.run()
        let handle = pipe.fileHandleForReading
        Thread { [self] in
            while case let data = handle.availableData, !data.isEmpty {
                lock.withLock { log += String(decoding: data, as: UTF8.self) }
            }
        }.start()
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && process.isRunning {
            let text = output
            if let range = text.range(of: #"http://[0-9.]+:[0-9]+"#, options: .regularExpression) {
                address = String(text[range])
                return
            }
            usleep(50_000)
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        throw NSError(
            domain: "serve", code: 1, userInfo: [NSLocalizedDescriptionKey: "the server did not start: \(output)"])
    }

    /// Its output so far.
    var output: String { lock.withLock { log } }

    /// SIGTERM, then the exit status (nil: still running after `seconds`, then killed).
    func stop(within seconds: Double = 60) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

/// python3 that imports `modules`, or a skip saying `pip install <modules>` (a
/// failure under TESSERA_REQUIRE_PYTHON=1, as in CI).
func requirePythonModules(_ modules: [String], _ what: String) throws {
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    probe.arguments = ["python3", "-c", "import " + modules.joined(separator: ", ")]
    probe.standardOutput = FileHandle.nullDevice
    probe.standardError = FileHandle.nullDevice
    try probe.run()
    probe.waitUntilExit()
    guard probe.terminationStatus != 0 else { return }
    let reason = "needs python3 with \(what) (pip install \(modules.joined(separator: " ")))"
    if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_PYTHON"] == "1" { XCTFail(reason) }
    throw XCTSkip(reason)
}
