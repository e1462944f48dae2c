// The LLM commands under `tessera launch`: `generate` tensor-parallel over 2
// and 3 ranks gives the same greedy tokens as one process (tiny random
// llamas, dense and 4-bit, whose heads and MLP columns split unevenly; and
// SmolLM2 when cached), and `lora` data-parallel over 2 ranks gives the same
// adapter as one process on the whole batches. Every run has a deadline.

import Foundation
import Tessera
import TesseraLM
import TesseraLMSelfTest
import XCTest

final class DistributedLMTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-dist-lm-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// `tessera ARGS`, stopped (and failed) after `deadline` seconds.
    func tessera(_ arguments: [String], input: String? = nil, deadline: Double = 120) throws -> Run {
        let process = Process()
        process.executableURL = try tesseraBinary()
        process.arguments = arguments
        let stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        let timer = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + deadline, execute: timer)
        let errorText = LockedText("")
        let reader = Thread {
            errorText.set(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
        reader.start()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        timer.cancel()
        while !reader.isFinished { usleep(1000) }
        let run = Run(status: process.terminationStatus, stdout: stdout, stderr: errorText.value)
        XCTAssertNotEqual(
            process.terminationReason, .uncaughtSignal, "tessera \(arguments) was stopped:\n\(run.stderr)")
        return run
    }

    /// `tessera launch -n N` of `arguments`, with the launcher's rank-0 lines (prefix removed) as stdout.
    func launched(_ n: Int, _ arguments: [String], input: String? = nil, deadline: Double = 120) throws -> Run {
        let binary = try tesseraBinary().path
        var run = try tessera(
            ["launch", "-n", "\(n)", "--timeout", "30", "--", binary] + arguments, input: input, deadline: deadline)
        run.stdout = run.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            .compactMap { $0.hasPrefix("[0] ") ? String($0.dropFirst(4)) + "\n" : nil }.joined()
        return run
    }

    /// A 2-layer llama with random weights and the gpt2-bpe fixture's tokenizer:
    /// 6 query heads over 3 key/value heads, 96 MLP columns (over 2 ranks,
    /// blocks of 2 and 1 key/value heads, 64 and 32 columns); dense float32 or 4-bit.
    func makeModel(bits: Int?) throws -> String {
        let quantization = bits.map { #", "quantization": {"group_size": 32, "bits": \#($0)}"# } ?? ""
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 6, "num_key_value_heads": 3, "head_dim": 16, "vocab_size": 480,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 256,
             "tie_word_embeddings": false\(quantization)}
            """
        let path = folder + "/model-\(bits.map(String.init) ?? "dense")"
        let model = try SyntheticModel.llama(
            config: config, bits: bits, groupSize: 32, dtype: bits == nil ? .float32 : .float16, scale: 0.1, seed: 3)
        try writeModelFolder(model, config: config, to: path)
        return path
    }

    func generateArguments(_ model: String, tokens: Int) -> [String] {
        [
            "generate", "-m", model, "--temp", "0", "-n", "\(tokens)", "--no-chat-template",
            "-p", "the number 12 comes after"
        ]
    }

    func testTensorParallelGenerateGivesOneProcessTokensOnATinyModel() throws {
        for bits in [nil, 4] as [Int?] {
            let model = try makeModel(bits: bits)
            let arguments = generateArguments(model, tokens: 24)
            let single = try tessera(arguments)
            XCTAssertEqual(single.status, 0, single.stderr)
            XCTAssertFalse(single.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
            for n in bits == nil ? [2, 3] : [2] {
                let split = try launched(n, arguments + ["--verbose"])
                XCTAssertEqual(split.status, 0, "\(n) ranks, bits \(String(describing: bits)):\n\(split.stderr)")
                XCTAssertEqual(
                    split.stdout, single.stdout, "\(n) ranks, bits \(String(describing: bits)):\n\(split.stderr)")
                // Every rank held its own block, and only rank 0 printed.
                for r in 0..<n { XCTAssertTrue(split.stderr.contains("rank \(r) of \(n)"), split.stderr) }
            }
        }
    }

    func testTensorParallelChatGivesOneProcessReplies() throws {
        let model = try makeModel(bits: 4)
        // A plain chat template for the fixture tokenizer.
        let template = #"{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:"#
        let config = try JSONSerialization.data(withJSONObject: [
            "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "chat_template": template
        ])
        try config.write(to: URL(fileURLWithPath: model + "/tokenizer_config.json"))
        let arguments = ["chat", "-m", model, "--temp", "0", "-n", "12"]
        let input = "the number 12 comes after\nand the number 40?\n/exit\n"
        let single = try tessera(arguments, input: input)
        XCTAssertEqual(single.status, 0, single.stderr)
        XCTAssertEqual(single.stdout.components(separatedBy: "> ").count, 4, single.stdout)
        let split = try launched(2, arguments, input: input)
        XCTAssertEqual(split.status, 0, split.stderr)
        // The last prompt ("> ") ends without a newline, which the launcher's rank prefixing adds.
        func trimmed(_ s: String) -> String { String(s.reversed().drop(while: { $0 == "\n" || $0 == " " }).reversed()) }
        XCTAssertEqual(trimmed(split.stdout), trimmed(single.stdout), split.stderr)
    }

    func testTensorParallelRefusesWhatCannotSplit() throws {
        let model = try makeModel(bits: nil)
        // 3 key/value heads do not split over 4 ranks: one line from each rank, no hang.
        let run = try launched(4, generateArguments(model, tokens: 2), deadline: 60)
        XCTAssertNotEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("3 key/value heads do not split over 4 ranks"), run.stderr)
        let cache = try launched(
            2, generateArguments(model, tokens: 2) + ["--prompt-cache", folder + "/c"], deadline: 60)
        XCTAssertNotEqual(cache.status, 0, cache.stderr)
        XCTAssertTrue(cache.stderr.contains("--prompt-cache is not supported"), cache.stderr)
    }

    func testTensorParallelGenerateGivesOneProcessTokensOnSmolLM2() throws {
        guard let model = DefaultModel.cachedPath() else {
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_MODEL"] != nil {
                XCTFail("TESSERA_REQUIRE_MODEL is set but the default model is not cached")
            }
            throw XCTSkip("the default model is not cached")
        }
        let arguments = ["generate", "-m", model, "--temp", "0", "-n", "12", "-p", "What is the capital of France?"]
        let single = try tessera(arguments, deadline: 300)
        XCTAssertEqual(single.status, 0, single.stderr)
        // 9 query heads over 3 key/value heads: blocks of 6 and 3 query heads on 2 ranks.
        let split = try launched(2, arguments, deadline: 300)
        XCTAssertEqual(split.status, 0, split.stderr)
        XCTAssertEqual(split.stdout, single.stdout, split.stderr)
    }

    func testDataParallelLoRAEqualsOneProcessOnTheWholeBatches() throws {
        // SGD, whose update is linear in the gradient: Adam's first steps are
        // nearly sign(g), so a gradient element within rounding of zero could
        // flip a whole learning-rate step between two summation orders.
        let model = try makeModel(bits: nil)
        let lines = (0..<24).map { "{\"text\": \"the number \($0) comes after \($0 - 1) and before \($0 + 1)\"}" }
        for split in ["train", "valid"] {
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(
                to: URL(fileURLWithPath: folder + "/data/\(split).jsonl"))
        }
        func arguments(_ adapters: String) -> [String] {
            [
                "lora", "--model", model, "--train", "--data", folder + "/data", "--batch-size", "5", "--num-layers",
                "2",
                "--iters", "4", "--steps-per-report", "2", "--steps-per-eval", "100000", "--val-batches", "1",
                "--optimizer", "sgd", "--learning-rate", "0.05", "--adapter-path", folder + "/" + adapters
            ]
        }
        let single = try tessera(arguments("one"))
        XCTAssertEqual(single.status, 0, single.stderr)
        let split = try launched(2, arguments("two"))
        XCTAssertEqual(split.status, 0, split.stderr)
        XCTAssertTrue(split.stdout.contains("Data parallel over 2 ranks"), split.stdout)
        XCTAssertTrue(split.stdout.contains("Gradient averaging"), split.stdout)
        let one = try Safetensors.load(folder + "/one/adapters.safetensors").tensors
        let two = try Safetensors.load(folder + "/two/adapters.safetensors").tensors
        XCTAssertEqual(Set(one.keys), Set(two.keys))
        XCTAssertFalse(one.isEmpty)
        var trained = false
        for (key, a) in one {
            guard let b = two[key] else { continue }
            let difference = abs(a.asType(.float32) - b.asType(.float32)).max().item(Float.self)
            XCTAssertLessThanOrEqual(difference, 1e-5, key)
            if key.hasSuffix("lora_b"), abs(a.asType(.float32)).max().item(Float.self) > 1e-4 { trained = true }
        }
        XCTAssertTrue(trained, "no lora_b moved from zero: the runs did not train")
        // The reported losses agree too (the 2-rank loss is the whole batch's).
        func losses(_ text: String) -> [String] {
            text.split(separator: "\n").compactMap { line in
                line.range(of: "Train loss ").map { String(line[$0.upperBound...].prefix(5)) }
            }
        }
        XCTAssertEqual(losses(split.stdout), losses(single.stdout), split.stdout)
        XCTAssertEqual(losses(single.stdout).count, 2, single.stdout)
    }
}

/// A value shared between threads.
private final class LockedText<T>: @unchecked Sendable {
    private var stored: T
    private let lock = NSLock()
    init(_ value: T) { stored = value }
    var value: T { lock.withLock { stored } }
    func set(_ value: T) { lock.withLock { stored = value } }
}
