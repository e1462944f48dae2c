// The built `tessera` binary as a user runs it: help, usage errors, bad model
// files (one line on stderr, a non-zero status, never a crash), piped prompts.

import Foundation
import TesseraLM
import XCTest

final class BinaryTests: XCTestCase {
    struct Run {
        var status: Int32
        var reason: Process.TerminationReason
        var stdout: String
        var stderr: String
    }

    func run(_ arguments: [String], input: String? = nil, environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = try tesseraBinary()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe(), stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Run(status: process.terminationStatus, reason: process.terminationReason, stdout: stdout, stderr: stderr)
    }

    func testHelpListsTheCommandsAndTheEnvironment() throws {
        let help = try run(["--help"])
        XCTAssertEqual(help.status, 0)
        for name in [
            "generate", "chat", "serve", "tokenize", "convert", "devices", "selftest", "demo", "TESSERA_MODEL",
            "TESSERA_CACHE"
        ] {
            XCTAssertTrue(help.stdout.contains(name), name)
        }
        let generate = try run(["generate", "--help"])
        XCTAssertEqual(generate.status, 0)
        XCTAssertTrue(generate.stdout.contains("-p, --prompt"), generate.stdout)
        XCTAssertTrue(generate.stdout.contains("-m, --model"), generate.stdout)
        let version = try run(["--version"])
        XCTAssertEqual(version.stdout, "tessera 0.1.0\n")
    }

    func testAnOutOfRangeOptionIsAUsageError() throws {
        let r = try run(["generate", "-p", "hi", "--top-p", "2"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.hasPrefix("Error: --top-p must be in (0, 1], got 2.0\n"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    func testBadModelFilesAreOneLineErrors() throws {
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-cli-\(UUID().uuidString).gguf")
        try Data("this is not a GGUF file, not at all".utf8).write(to: garbage)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(at: garbage)
            try? FileManager.default.removeItem(at: folder)
        }
        for model in [garbage.path, folder.path] {
            for command in [["generate", "-p", "hi"], ["tokenize", "--text", "hi"]] {
                let r = try run(command + ["-m", model])
                XCTAssertEqual(r.reason, .exit, "\(command) \(model) crashed: \(r.stderr)")
                XCTAssertEqual(r.status, 1, r.stderr)
                XCTAssertTrue(r.stderr.hasPrefix("Error: "), r.stderr)
                XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            }
        }
        let missing = try run(["generate", "-p", "hi"], environment: ["TESSERA_MODEL": "/no/such/model.gguf"])
        XCTAssertEqual(missing.status, 64)
        XCTAssertTrue(
            missing.stderr.contains("$TESSERA_MODEL: no model file or folder at /no/such/model.gguf"), missing.stderr)
    }

    /// Each kind of hostile model folder (a configuration field out of range,
    /// NaN or of the wrong type, an unknown rope type, mismatched quantized
    /// parts, an unfinished `.partial-PID` output) ends with status 1 and one line.
    func testHostileModelFoldersAreOneLineErrors() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/lm").standardizedFileURL.path
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-hostile-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        /// A copy of `fixture` whose config.json has `edit` applied to its text.
        func folder(_ name: String, _ fixture: String, _ edit: (String) -> String) throws -> String {
            let path = root + "/" + name
            try FileManager.default.copyItem(atPath: fixtures + "/" + fixture, toPath: path)
            let config = try String(contentsOfFile: path + "/config.json", encoding: .utf8)
            let edited = edit(config)
            XCTAssertNotEqual(edited, config, name)
            try edited.write(toFile: path + "/config.json", atomically: true, encoding: .utf8)
            return path
        }
        let cases: [(String, String)] = [
            (
                try folder("layers", "qwen2") {
                    $0.replacingOccurrences(of: #""num_hidden_layers": 2"#, with: #""num_hidden_layers": -1"#)
                },
                "num_hidden_layers is -1"
            ),
            (
                try folder("heads", "qwen2") {
                    $0.replacingOccurrences(
                        of: #""num_attention_heads": 4"#, with: #""num_attention_heads": 4294967295"#)
                },
                "num_attention_heads is 4294967295"
            ),
            (
                try folder("eps", "qwen2") {
                    $0.replacingOccurrences(of: #""rms_norm_eps": 1e-06"#, with: #""rms_norm_eps": NaN"#)
                },
                "rms_norm_eps is nan"
            ),
            (
                try folder("rope", "llama") {
                    $0.replacingOccurrences(of: #""rope_type": "llama3""#, with: #""rope_type": 5"#)
                },
                "rope_parameters.rope_type is 5"
            ),
            (
                try folder("group", "qwen3_mlx_q4") {
                    $0.replacingOccurrences(of: #""group_size": 64"#, with: #""group_size": 32"#)
                },
                ".scales has shape"
            ),
            (try folder("x.partial-4242", "qwen2") { $0 + " " }, "unfinished output")
        ]
        for (model, expected) in cases {
            let r = try run(["generate", "-p", "hi", "--max-tokens", "1", "-m", model])
            XCTAssertEqual(r.reason, .exit, "\(model) crashed: \(r.stderr)")
            XCTAssertEqual(r.status, 1, "\(model): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("Error: "), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(expected), "\(model): \(r.stderr)")
        }
    }

    /// With the default model cached: a piped prompt, greedy, with the statistics line.
    func testAPipedPromptGenerates() throws {
        guard let model = DefaultModel.cachedPath() else { throw XCTSkip("the default model is not cached") }
        let r = try run(["generate", "-m", model, "-n", "4", "--temp", "0"], input: "What is the capital of France?\n")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        XCTAssertTrue(r.stderr.contains("generation: 4 tokens"), r.stderr)
        XCTAssertTrue(r.stderr.contains("time to first token"), r.stderr)
    }
}

/// The `tessera` executable built beside this test bundle.
func tesseraBinary() throws -> URL {
    // The test bundle is (Linux) or sits in (macOS) the products folder.
    let bundle = Bundle(for: BinaryTests.self).bundleURL
    let candidates = [bundle, bundle.deletingLastPathComponent()].map { $0.appendingPathComponent("tessera") }
    guard let url = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw XCTSkip("no tessera binary beside \(bundle.path) (build it first: swift build --product tessera)")
    }
    return url
}
