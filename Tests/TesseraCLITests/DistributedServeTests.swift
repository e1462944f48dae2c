// `tessera serve` split over 2 ranks (`tessera launch -n 2`): rank 0 serves
// and sends each forward pass of its batched engine to rank 1, which runs
// its block of the model (TensorParallelServing). The official `openai` SDK
// (Tools/tp_serve_check.py) asks the split server and a one-process server
// the same greedy completions, several at once and streamed, and they must
// agree token for token; SIGTERM then ends every rank with status 0. On the
// tiny 4-bit llama of DistributedLMTests (uneven head and column blocks), and
// on SmolLM2 when it is cached (fewer tokens: a debug build is slow).

import Foundation
import TesseraLM
import XCTest

/// A server's output so far, appended by its reader thread.
private final class ServerLog: @unchecked Sendable {
    private var text = ""
    private let lock = NSLock()
    var value: String { lock.withLock { text } }
    func append(_ more: String) { lock.withLock { text += more } }
}

extension DistributedLMTests {
    /// A server process started with `arguments` (a `tessera` subcommand line), its address read from its stderr.
    final class ServingProcess: @unchecked Sendable {
        let process = Process()
        private let log = ServerLog()
        private(set) var address = ""

        init(_ arguments: [String], deadline seconds: Double = 240) throws {
            process.executableURL = try tesseraBinary()
            process.arguments = arguments
            let err = Pipe()
            process.standardError = err
            process.standardOutput = err
            try process.run()
            let handle = err.fileHandleForReading
            let log = self.log
            Thread {
                while case let data = handle.availableData, !data.isEmpty {
                    log.append(String(decoding: data, as: UTF8.self))
                }
            }.start()
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline && process.isRunning {
                if let range = log.value.range(of: #"http://[0-9.]+:[0-9]+"#, options: .regularExpression) {
                    address = String(log.value[range])
                    return
                }
                usleep(50_000)
            }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            throw NSError(
                domain: "serve", code: 1,
                userInfo: [NSLocalizedDescriptionKey: "the server did not start: \(log.value)"])
        }

        var output: String { log.value }

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

    /// python3 with the openai SDK, or a skip (a failure under TESSERA_REQUIRE_PYTHON=1, as in CI).
    func requireOpenAISDK() throws {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import openai"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        try probe.run()
        probe.waitUntilExit()
        guard probe.terminationStatus != 0 else { return }
        let reason = "needs python3 with the openai SDK (pip install openai)"
        if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_PYTHON"] == "1" { XCTFail(reason) }
        throw XCTSkip(reason)
    }

    /// One-process and 2-rank servers of `model`; the SDK check between them; both stopped cleanly.
    func checkSplitServe(model: String, tokens: Int, prompts: Int) throws {
        try requireOpenAISDK()
        let binary = try tesseraBinary().path
        let serve = ["serve", "--port", "0", "-m", model, "--model-name", "m", "--max-concurrency", "4"]
        let single = try ServingProcess(serve)
        let split = try ServingProcess(["launch", "-n", "2", "--timeout", "60", "--", binary] + serve)
        XCTAssertTrue(split.output.contains("[0] serving m on"), split.output)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Tools/tp_serve_check.py").standardizedFileURL.path
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = [
            "python3", script, "--reference", single.address, "--split", split.address, "--model", "m",
            "--tokens", "\(tokens)", "--prompts", "\(prompts)"
        ]
        let out = Pipe()
        python.standardOutput = out
        python.standardError = out
        try python.run()
        let timer = DispatchWorkItem { python.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 300, execute: timer)
        let report = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        timer.cancel()
        XCTAssertEqual(python.terminationStatus, 0, "\(report)\nsplit server:\n\(split.output)")
        XCTAssertTrue(report.contains(#""ok": true"#), report)
        // SIGTERM to the launcher: rank 0 stops serving and tells rank 1, and both exit 0.
        XCTAssertEqual(split.stop(), 0, split.output)
        XCTAssertEqual(single.stop(), 0, single.output)
    }

    func testTensorParallelServeGivesOneProcessCompletionsOnATinyModel() throws {
        try checkSplitServe(model: try makeModel(bits: 4), tokens: 16, prompts: 6)
    }

    func testTensorParallelServeGivesOneProcessCompletionsOnSmolLM2() throws {
        #if DEBUG
            // ~40 s unoptimised; CI runs it in the release step.
            if ProcessInfo.processInfo.environment["TESSERA_SLOW_TESTS"] == nil {
                throw XCTSkip("runs in release builds (or set TESSERA_SLOW_TESTS=1)")
            }
        #endif
        guard let model = DefaultModel.cachedPath() else {
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_MODEL"] != nil {
                XCTFail("TESSERA_REQUIRE_MODEL is set but the default model is not cached")
            }
            throw XCTSkip("the default model is not cached")
        }
        try checkSplitServe(model: model, tokens: 8, prompts: 3)
    }
}
