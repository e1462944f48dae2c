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

extension DistributedLMTests {
    /// One-process and 2-rank servers of `model`; the SDK check between them; both stopped cleanly.
    func checkSplitServe(model: String, tokens: Int, prompts: Int) throws {
        try requirePythonModules(["openai"], "the openai SDK")
        let binary = try tesseraBinary().path
        let serve = ["serve", "--port", "0", "-m", model, "--model-name", "m", "--max-concurrency", "4"]
        let single = try ServerProcess(serve)
        let split = try ServerProcess(["launch", "-n", "2", "--timeout", "60", "--", binary] + serve)
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
