// `tessera serve`'s options: ranges checked at parse time, each error naming
// its option; loopback by default; the served model name.

import ArgumentParser
import XCTest

@testable import TesseraCLI

final class ServeOptionTests: XCTestCase {
    private func failure(_ arguments: [String]) -> String? {
        do {
            _ = try ServeCommand.parse(arguments)
            return nil
        } catch {
            return ServeCommand.message(for: error)
        }
    }

    func testOutOfRangeOptionsAreRejectedByName() {
        for (arguments, option) in [
            (["--port", "70000"], "--port"), (["--port", "-1"], "--port"), (["--max-queue", "-1"], "--max-queue"),
            (["--max-concurrency", "0"], "--max-concurrency"), (["--max-context", "1"], "--max-context"),
            (["--max-body-bytes", "10"], "--max-body-bytes"), (["--api-key", ""], "--api-key"),
            (["--prompt-cache-bytes", "-1"], "--prompt-cache-bytes"), (["--cors-origin", ""], "--cors-origin"),
            (["--kv-cache-bytes", "1000"], "--kv-cache-bytes"), (["--engine", "fast"], "--engine"),
            (["--kv-cache-type", "f8"], "--kv-cache-type")
        ] {
            let message = failure(arguments)
            XCTAssertTrue(message?.contains(option) == true, "\(arguments): \(message ?? "parsed")")
        }
    }

    func testDefaultsListenOnLoopback() throws {
        let command = try ServeCommand.parse([])
        XCTAssertEqual(command.host, "127.0.0.1")
        XCTAssertEqual(command.port, 8080)
        XCTAssertNil(command.apiKey)
        XCTAssertEqual(command.engine, .batched)
        XCTAssertEqual(command.maxConcurrency, 8)
        XCTAssertEqual(try ServeCommand.parse(["--engine", "serial"]).engine, .serial)
        XCTAssertEqual(command.kvCacheType, .f16)
        XCTAssertEqual(try ServeCommand.parse(["--kv-cache-type", "f32"]).kvCacheType, .f32)
        XCTAssertTrue(ServeCommand.helpMessage().contains("--kv-cache-type"))
        XCTAssertNil(failure(["--port", "0", "--max-queue", "0", "--api-key", "k", "--cors-origin", "*"]))
    }

    func testTheServedNameIsTheFileOrFolderName() {
        XCTAssertEqual(ServeCommand.servedName("/m/SmolLM2-135M-Instruct.Q4_1.gguf"), "SmolLM2-135M-Instruct.Q4_1")
        XCTAssertEqual(ServeCommand.servedName("/models/Qwen3-0.6B-4bit/"), "Qwen3-0.6B-4bit")
        XCTAssertEqual(ServeCommand.servedName("model.gguf"), "model")
    }
}
