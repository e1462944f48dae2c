// Sampling defaults: generation_config.json over the built-in values, options over both.

import Tessera
import TesseraLM
import XCTest

@testable import TesseraCLI

final class SamplingDefaultsTests: XCTestCase {
    func parameters(_ arguments: [String], _ defaults: SamplingDefaults = .builtIn) throws -> SamplingParameters {
        try GenerateCommand.parse(["-p", "hi"] + arguments).sampling.parameters(defaults: defaults).sampling
    }

    func testBuiltInDefaultsSampleWithAPenalty() throws {
        let p = try parameters([])
        XCTAssertEqual(p.temperature, 0.7)
        XCTAssertEqual(p.topP, 0.9)
        XCTAssertEqual(p.topK, 0)
        XCTAssertEqual(p.repetitionPenalty, 1.1)
        XCTAssertNil(p.seed)
    }

    func testKVQuantizationStartsAfterAThreshold() throws {
        let options = try GenerateCommand.parse(["-p", "hi", "--kv-bits", "4", "--kv-group-size", "32"]).sampling
        let p = try options.parameters(defaults: .builtIn)
        XCTAssertEqual(p.kvQuantization, try KVQuantization(bits: 4, groupSize: 32))
        XCTAssertEqual(p.quantizedKVStart, 5000)
        XCTAssertNil(p.initialKVQuantization)
        let now = try GenerateCommand.parse(["-p", "hi", "--kv-bits", "8", "--quantized-kv-start", "0"]).sampling
        XCTAssertEqual(try now.parameters(defaults: .builtIn).initialKVQuantization, try KVQuantization(bits: 8))
    }

    func testTempZeroIsPlainGreedy() throws {
        let p = try parameters(["--temp", "0"])
        XCTAssertEqual(p.temperature, 0)
        XCTAssertEqual(p.repetitionPenalty, 1)
        XCTAssertEqual(try parameters(["--temp", "0", "--repetition-penalty", "1.3"]).repetitionPenalty, 1.3)
    }

    func testGenerationConfigValuesAreTaken() throws {
        let json = try JSONValue(
            parsing: #"{"do_sample": true, "temperature": 0.2, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}"#)
        let (defaults, warnings) = SamplingDefaults.parse(json, source: "generation_config.json")
        XCTAssertEqual(warnings, [])
        let p = try parameters([], defaults)
        XCTAssertEqual(p.temperature, 0.2)
        XCTAssertEqual(p.topP, 0.8)
        XCTAssertEqual(p.topK, 20)
        XCTAssertEqual(p.repetitionPenalty, 1.05)
        // Options win over the file.
        let q = try parameters(["--temp", "0.9", "--top-k", "0", "--top-p", "1"], defaults)
        XCTAssertEqual(q.temperature, 0.9)
        XCTAssertEqual(q.topK, 0)
        XCTAssertEqual(q.topP, 1)
    }

    func testOutOfRangeValuesInTheFileAreSkippedWithAWarning() throws {
        let json = try JSONValue(parsing: #"{"temperature": -1, "top_p": 1.5, "top_k": "ten", "min_p": 0.05}"#)
        let (defaults, warnings) = SamplingDefaults.parse(json, source: "g.json")
        XCTAssertEqual(defaults.temperature, SamplingDefaults.builtIn.temperature)
        XCTAssertEqual(defaults.topP, SamplingDefaults.builtIn.topP)
        XCTAssertEqual(defaults.topK, 0)
        XCTAssertEqual(defaults.minP, 0.05)
        XCTAssertEqual(warnings.count, 3)
        XCTAssertTrue(warnings[0].contains("temperature"), warnings[0])
    }

    func testAModelFolderIsRead() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        XCTAssertEqual(SamplingDefaults.forModel(at: folder.path).defaults, .builtIn)
        let file = folder.appendingPathComponent("generation_config.json")
        try Data(#"{"temperature": 0.3, "top_p": 0.95}"#.utf8).write(to: file)
        let (defaults, warnings) = SamplingDefaults.forModel(at: folder.path)
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(defaults.temperature, 0.3)
        XCTAssertEqual(defaults.topP, 0.95)
        XCTAssertEqual(defaults.source, file.path)
        try Data("{not json".utf8).write(to: file)
        let broken = SamplingDefaults.forModel(at: folder.path)
        XCTAssertEqual(broken.defaults, .builtIn)
        XCTAssertEqual(broken.warnings.count, 1)
        // A GGUF file (not a folder) has no generation_config.json.
        XCTAssertEqual(SamplingDefaults.forModel(at: file.path).defaults, .builtIn)
    }
}
