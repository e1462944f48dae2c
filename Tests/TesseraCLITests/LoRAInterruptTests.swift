// `tessera lora` as a user runs it: Ctrl-C (SIGINT) during training saves the
// training state and exits cleanly; `--resume` then continues that run to the
// end; `fuse` merges the result. A tiny random llama with the gpt2-bpe
// fixture's tokenizer and plain-text data keep it fast.

import Foundation
import Tessera
import TesseraLM
import TesseraLMSelfTest
import XCTest

final class LoRAInterruptTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-lora-interrupt-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    func makeModel() throws -> String {
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 480,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 256, "tie_word_embeddings": true}
            """
        let path = folder + "/model"
        let model = try SyntheticModel.llama(config: config, bits: nil, dtype: .float32, scale: 0.1, seed: 2)
        try writeModelFolder(model, config: config, to: path)
        let lines = (0..<40).map { "{\"text\": \"the number \($0) comes after \($0 - 1) and before \($0 + 1)\"}" }
        for split in ["train", "valid"] {
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(
                to: URL(fileURLWithPath: folder + "/data/\(split).jsonl"))
        }
        return path
    }

    /// Starts `tessera arguments`; its stdout lines go to `lines` as they come.
    func start(_ arguments: [String], lines: LineCollector) throws -> Process {
        let process = Process()
        process.executableURL = try tesseraBinary()
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { handle in lines.append(handle.availableData) }
        try process.run()
        return process
    }

    func testCtrlCSavesTheStateAndResumeFinishesTheRun() throws {
        let model = try makeModel()
        let adapters = folder + "/adapters"
        let common = [
            "lora", "--model", model, "--train", "--data", folder + "/data", "--batch-size", "2", "--num-layers", "2",
            "--steps-per-report", "1", "--steps-per-eval", "100000", "--save-every", "100000", "--adapter-path",
            adapters,
            "--learning-rate", "1e-3", "--val-batches", "1"
        ]
        let lines = LineCollector()
        let first = try start(common + ["--iters", "100000"], lines: lines)
        // Wait for two reported steps, then Ctrl-C.
        let deadline = Date().addingTimeInterval(120)
        while lines.text.components(separatedBy: "Train loss").count < 3 && Date() < deadline && first.isRunning {
            usleep(20_000)
        }
        XCTAssertTrue(first.isRunning, lines.text)
        kill(first.processIdentifier, SIGINT)
        first.waitUntilExit()
        XCTAssertEqual(first.terminationReason, .exit, lines.text)
        XCTAssertEqual(first.terminationStatus, 0, lines.text)
        XCTAssertTrue(lines.text.contains("Stopped after iter"), lines.text)
        let state = adapters + "/" + TrainingCheckpoint.fileName
        XCTAssertTrue(TrainingCheckpoint.isTrainingState(state))
        XCTAssertTrue(FileManager.default.fileExists(atPath: adapters + "/adapters.safetensors"))
        let saved = try Safetensors.load(state)
        let stoppedAt = try XCTUnwrap(
            JSONValue(parsing: Array((saved.metadata["tessera_training"] ?? "").utf8))["step"]?.int)
        XCTAssertGreaterThanOrEqual(stoppedAt, 2)

        // --resume continues to --iters from the saved step.
        let second = LineCollector()
        let resumed = try start(common + ["--iters", "\(stoppedAt + 2)", "--resume"], lines: second)
        resumed.waitUntilExit()
        XCTAssertEqual(resumed.terminationStatus, 0, second.text)
        XCTAssertTrue(second.text.contains("Resuming the run saved in"), second.text)
        XCTAssertTrue(second.text.contains("Iter \(stoppedAt + 1): Train loss"), second.text)
        XCTAssertFalse(second.text.contains("Iter \(stoppedAt): Train loss"), second.text)
        XCTAssertTrue(second.text.contains("Iter \(stoppedAt + 2): Train loss"), second.text)

        // And fuse merges the adapters into a model that generates.
        let fuse = Process()
        fuse.executableURL = try tesseraBinary()
        fuse.arguments = [
            "fuse", "--model", model, "--adapter-path", adapters, "--save-path", folder + "/fused", "--export-gguf"
        ]
        fuse.standardOutput = FileHandle.nullDevice
        try fuse.run()
        fuse.waitUntilExit()
        XCTAssertEqual(fuse.terminationStatus, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/fused/ggml-model-f16.gguf"))
        XCTAssertNotNil(try ModelLoader.load(folder + "/fused/ggml-model-f16.gguf").model as? TransformerModel)
    }
}

/// Text read from a pipe on another thread.
final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ d: Data) { lock.withLock { data.append(d) } }
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
