// `tessera lora` and --adapter-path: mlx-lm's flag names parse, and every
// bad value is rejected at parse time, naming its flag, before a model loads.

import ArgumentParser
import Foundation
import XCTest

@testable import TesseraCLI
@testable import TesseraLM

final class LoRAOptionTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-lora-options-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for split in ["train", "valid", "test"] {
            _ = FileManager.default.createFile(
                atPath: "\(folder)/\(split).jsonl", contents: Data("{\"text\": \"a\"}\n".utf8))
        }
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    func message(_ arguments: [String]) -> String? {
        do {
            _ = try LoRACommand.parse(arguments)
            return nil
        } catch {
            return LoRACommand.message(for: error)
        }
    }

    func testMLXLMFlagsParse() throws {
        let command = try LoRACommand.parse([
            "--train", "--data", folder, "--fine-tune-type", "dora", "--num-layers", "-1", "--batch-size", "2",
            "--iters", "50", "--learning-rate", "1e-4", "--optimizer", "adamw", "--steps-per-report", "5",
            "--steps-per-eval", "25", "--val-batches", "-1", "--save-every", "10", "--adapter-path", folder + "/a",
            "--max-seq-length", "256", "--mask-prompt", "--seed", "3"
        ])
        XCTAssertEqual(command.fineTuneType, .dora)
        XCTAssertEqual(command.optimizer, .adamw)
        XCTAssertEqual(command.learningRate, 1e-4)
        XCTAssertTrue(command.maskPrompt)
        let config = command.adapterConfig
        XCTAssertEqual(config.numLayers, -1)
        XCTAssertEqual([Float(config.parameters.rank), config.parameters.scale, config.parameters.dropout], [8, 20, 0])
        XCTAssertEqual(config.extra["batch_size"]?.int, 2)
    }

    func testBadValuesAreRejectedByName() {
        let base = ["--train", "--data", folder]
        for (arguments, flag) in [
            (["--num-layers", "0"], "--num-layers"), (["--num-layers", "-2"], "--num-layers"),
            (["--batch-size", "0"], "--batch-size"), (["--iters", "-1"], "--iters"),
            (["--learning-rate", "0"], "--learning-rate"), (["--learning-rate", "nan"], "--learning-rate"),
            (["--steps-per-report", "0"], "--steps-per-report"), (["--steps-per-eval", "0"], "--steps-per-eval"),
            (["--val-batches", "0"], "--val-batches"), (["--save-every", "0"], "--save-every"),
            (["--max-seq-length", "1"], "--max-seq-length"), (["--test", "--test-batches", "-3"], "--test-batches"),
            (["--optimizer", "lamb"], "--optimizer"), (["--fine-tune-type", "qlora"], "--fine-tune-type"),
            (["--lora-dropout", "1"], "--lora-dropout"), (["--lora-rank", "0"], "--lora-rank"),
            (["--seed", "-1"], "--seed")
        ] {
            let text = message(base + arguments)
            XCTAssertTrue(text?.contains(flag) ?? false, "\(arguments): \(text ?? "parsed")")
        }
        XCTAssertTrue(message(["--data", folder])?.contains("--train") ?? false)
        XCTAssertTrue(message(["--train", "--data", folder + "/missing"])?.contains("--data") ?? false)
        XCTAssertTrue(
            message(["--test", "--data", folder, "--adapter-path", folder + "/none"])?.contains("--adapter-path")
                ?? false)
    }

    func testAdapterPathIsCheckedAtParseTime() {
        do {
            _ = try GenerateCommand.parse(["-p", "hi", "--adapter-path", folder + "/none"])
            XCTFail("parsed")
        } catch {
            XCTAssertTrue(GenerateCommand.message(for: error).contains("--adapter-path"))
        }
        XCTAssertThrowsError(try ChatCommand.parse(["--adapter-path", folder]))
    }
}

/// `tessera fuse`: mlx-lm's flags (both spellings of --dequantize), the GGUF
/// type choices, and bad values rejected at parse time naming their flag.
final class FuseOptionTests: XCTestCase {
    func testFlagsParseAndBadValuesAreRejected() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-fuse-options-\(UUID())")
            .path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = FileManager.default.createFile(atPath: folder + "/adapter_config.json", contents: Data("{}".utf8))
        for spelling in ["--dequantize", "--de-quantize"] {
            let command = try FuseCommand.parse([
                "--adapter-path", folder, "--save-path", folder + "/out", spelling, "--export-gguf", "--gguf-type",
                "q4_1"
            ])
            XCTAssertTrue(command.dequantize)
            XCTAssertTrue(command.exportGGUF)
            XCTAssertEqual(command.ggufType, .q4_1)
            XCTAssertEqual(command.resolvedGGUFPath, folder + "/out/ggml-model-f16.gguf")
        }
        func message(_ arguments: [String]) -> String {
            do {
                _ = try FuseCommand.parse(arguments)
                return ""
            } catch { return FuseCommand.message(for: error) }
        }
        XCTAssertTrue(message(["--adapter-path", folder + "/none"]).contains("--adapter-path"))
        XCTAssertTrue(message(["--adapter-path", folder, "--save-path", folder]).contains("--save-path"))
        XCTAssertTrue(message(["--adapter-path", folder, "--gguf-type", "q4_k"]).contains("gguf-type"))
    }
}
