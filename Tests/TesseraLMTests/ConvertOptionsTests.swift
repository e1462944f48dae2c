import Foundation
import Tessera
@testable import TesseraLM
import XCTest

/// `tessera convert`'s streamed writing, per-layer widths (`--embedding-bits`,
/// mlx-lm's `--quant-predicate` recipes), `--force`, configs older readers
/// understand, and warnings about what the folder lacks.
final class ConvertOptionsTests: XCTestCase {
    typealias Fixtures = ArchitectureTests

    func output() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-convert-\(UUID().uuidString)")
            .path
        addTeardownBlock {
            let parent = (dir as NSString).deletingLastPathComponent, name = (dir as NSString).lastPathComponent
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
            where entry.hasPrefix(name) {
                try? FileManager.default.removeItem(atPath: parent + "/" + entry)
            }
        }
        return dir
    }

    func config(_ folder: String) throws -> JSONValue {
        try JSONValue(parsing: try Data(contentsOf: URL(fileURLWithPath: folder + "/config.json")))
    }

    /// From a GGUF the embedding (and LM head) stay 8-bit while the rest is 4-bit:
    /// each equals the same layer of a uniform 8-bit or 4-bit conversion, config.json
    /// says so per layer, and the folder loads. The progress callback sees every tensor.
    func testGGUFKeepsEmbeddingsAtEightBits() throws {
        let gguf = Fixtures.fixture("llama_gguf") + "/model.gguf"
        let mixed = output(), four = output(), eight = output()
        var seen: [ModelConverter.Progress] = []
        let report = try ModelConverter.convert(
            model: gguf, output: mixed, bits: 4, groupSize: 32, progress: { seen.append($0) })
        try ModelConverter.convert(model: gguf, output: four, bits: 4, groupSize: 32, embeddingBits: 4)
        try ModelConverter.convert(model: gguf, output: eight, bits: 8, groupSize: 32)
        let m = try Safetensors.load(mixed + "/model.safetensors").tensors
        let a = try Safetensors.load(four + "/model.safetensors").tensors
        let b = try Safetensors.load(eight + "/model.safetensors").tensors
        for base in ["model.embed_tokens", "lm_head"] {
            for part in [".weight", ".scales", ".biases"] {
                XCTAssertEqual(m[base + part]?.shape, b[base + part]?.shape, base + part)
                XCTAssertEqual(
                    m[base + part]?.asType(.float32).toArray(Float.self),
                    b[base + part]?.asType(.float32).toArray(Float.self))
            }
        }
        let q = "model.layers.0.self_attn.q_proj.weight"
        XCTAssertEqual(m[q]?.toArray(UInt32.self), a[q]?.toArray(UInt32.self))
        XCTAssertNotEqual(m["model.embed_tokens.weight"]?.shape, a["model.embed_tokens.weight"]?.shape)
        let quantization = try config(mixed)["quantization"]
        XCTAssertEqual(quantization?["bits"]?.int, 4)
        XCTAssertEqual(quantization?["model.embed_tokens"]?["bits"]?.int, 8)
        XCTAssertEqual(quantization?["lm_head"]?["bits"]?.int, 8)
        XCTAssertNil(quantization?["model.layers.0.self_attn.q_proj"])
        // Progress: one call per tensor, bytes rising to the data size, which is the file's data.
        XCTAssertEqual(seen.count, report.tensorCount)
        XCTAssertEqual(seen.count, m.count)
        XCTAssertEqual(seen.last?.bytesWritten, report.byteCount)
        XCTAssertEqual(zip(seen, seen.dropFirst()).filter { $0.bytesWritten >= $1.bytesWritten }.count, 0)
        XCTAssertEqual(report.byteCount, m.values.reduce(0) { $0 + $1.nbytes })
        let loaded = try ModelLoader.load(mixed)
        XCTAssertEqual(loaded.modelType, "llama")
    }

    /// mlx-lm's mixed_3_6 on a 2-layer model: layer 1 is in the last eighth
    /// (index >= 7 * 2 / 8), layer 0 in no rule, so layer 1's v_proj and down_proj
    /// get 6 bits, as does the LM head; the rest 3.
    func testRecipeGivesMLXLMsWidths() throws {
        let out = output()
        try ModelConverter.convert(
            model: Fixtures.fixture("mistral"), output: out, groupSize: 32, recipe: .mixed_3_6)
        let quantization = try config(out)["quantization"]
        XCTAssertEqual(quantization?["bits"]?.int, 3)
        XCTAssertEqual(quantization?["model.layers.1.self_attn.v_proj"]?["bits"]?.int, 6)
        XCTAssertEqual(quantization?["model.layers.1.mlp.down_proj"]?["bits"]?.int, 6)
        for layer in [
            "model.layers.0.self_attn.v_proj", "model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj"
        ] {
            XCTAssertNil(quantization?[layer], layer)
        }
        XCTAssertEqual(quantization?["lm_head"]?["bits"]?.int, 6)
        let tensors = try Safetensors.load(out + "/model.safetensors").tensors
        let q = try XCTUnwrap(tensors["model.layers.1.self_attn.q_proj.weight"]),
            v = try XCTUnwrap(tensors["model.layers.1.self_attn.v_proj.weight"])
        XCTAssertEqual(q.dim(1) * 32 / 3, v.dim(1) * 32 / 6)  // the same input width at 3 and at 6 bits
        XCTAssertEqual(try ModelLoader.load(out).modelType, "mistral")
        // The rule on a 32-layer model, as mlx-lm's mixed_quant_predicate_builder states it.
        let rule = LayerBits(bits: 3, embeddingBits: nil, recipe: .mixed_3_6, layerCount: 32)
        let high = (0..<32).filter { rule.bits(for: "model.layers.\($0).mlp.down_proj") == 6 }
        XCTAssertEqual(high, [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31])
        XCTAssertEqual(rule.bits(for: "model.layers.5.mlp.down_proj"), 3)
        XCTAssertEqual(rule.bits(for: "model.embed_tokens"), 3)
    }

    /// `replace: true` swaps a new folder in for an existing model folder and
    /// leaves nothing beside it; it refuses a file or a folder that holds no model.
    func testReplaceSwapsInTheNewFolder() throws {
        let out = output(), source = Fixtures.fixture("qwen2")
        try ModelConverter.convert(model: source, output: out, bits: 4, groupSize: 32)
        XCTAssertThrowsError(try ModelConverter.convert(model: source, output: out, bits: 8)) {
            XCTAssertTrue("\($0)".contains("--force"), "\($0)")
        }
        let report = try ModelConverter.convert(model: source, output: out, bits: 8, groupSize: 32, replace: true)
        XCTAssertTrue(report.replacedExisting)
        XCTAssertEqual(try config(out)["quantization"]?["bits"]?.int, 8)
        XCTAssertEqual(try ModelLoader.load(out).modelType, "qwen2")
        let parent = (out as NSString).deletingLastPathComponent, name = (out as NSString).lastPathComponent
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(name) }, [name])

        let notAModel = output()
        try FileManager.default.createDirectory(atPath: notAModel, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: notAModel + "/notes.txt"))
        XCTAssertThrowsError(try ModelConverter.convert(model: source, output: notAModel, replace: true)) {
            XCTAssertTrue($0 is ModelError, "\($0)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: notAModel + "/notes.txt"))
        let file = output()
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try ModelConverter.convert(model: source, output: file, replace: true))
    }

    /// A transformers 5 config (rope_parameters only) gains the keys older readers
    /// use; a folder without tokenizer files is converted with a warning saying so.
    func testConfigGainsLegacyRopeKeysAndMissingTokenizerIsNamed() throws {
        let out = output()
        let report = try ModelConverter.convert(model: Fixtures.fixture("llama"), output: out, bits: 8, groupSize: 32)
        let c = try config(out)
        XCTAssertEqual(c["rope_theta"]?.double, 10000)
        XCTAssertEqual(c["rope_scaling"]?["rope_type"]?.string, "llama3")
        XCTAssertEqual(c["rope_scaling"]?["factor"]?.double, 8)
        XCTAssertNil(c["rope_scaling"]?["rope_theta"])
        XCTAssertEqual(report.warnings.count, 1, "\(report.warnings)")
        XCTAssertTrue(report.warnings.first?.contains("no tokenizer") == true, "\(report.warnings)")

        let gemma = output()
        try ModelConverter.convert(model: Fixtures.fixture("gemma3_text"), output: gemma, bits: 8, groupSize: 32)
        XCTAssertEqual(try config(gemma)["rope_theta"]?.double, 10000)
        XCTAssertEqual(try config(gemma)["rope_local_base_freq"]?.double, 10)
        XCTAssertNil(try config(gemma)["rope_scaling"])
        // Its layer_types (sliding, full, sliding) as the period older gemma configs give.
        XCTAssertEqual(try config(gemma)["sliding_window_pattern"]?.int, 2)
    }

    /// The real mlx-lm loads every converted fixture folder (transformers 5 configs,
    /// GGUF files, a mixed_3_6 recipe) and computes the transformers reference's
    /// logits (Tools/check_converted_folders.py states the tolerances).
    func testMLXLMLoadsEveryConvertedFolder() throws {
        let python = ProcessInfo.processInfo.environment["TESSERA_MLX_PYTHON"] ?? "python3"
        if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_PYTHON"] != "1", !Self.imports(python, "mlx_lm, numpy")
        {
            throw XCTSkip("needs python3 with mlx-lm (pip install \"mlx[cpu]\" mlx-lm to run it)")
        }
        let root = output()
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for name in ["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3_text"] {
            try ModelConverter.convert(model: Fixtures.fixture(name), output: root + "/" + name, bits: 8, groupSize: 32)
        }
        for name in ["llama3", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"] {
            try ModelConverter.convert(
                model: Fixtures.fixture("gguf/\(name)") + "/model.gguf", output: root + "/gguf-" + name, bits: 8,
                groupSize: 32)
        }
        try ModelConverter.convert(
            model: Fixtures.fixture("mistral"), output: root + "/mixed", groupSize: 32, recipe: .mixed_3_6)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tools/check_converted_folders.py").path
        let (status, text) = try Self.run(python, [script, "--converted", root])
        print(text)
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(text.split(separator: "\n").filter { $0.contains(": ok") }.count, 15, text)
    }

    static func imports(_ python: String, _ modules: String) -> Bool {
        (try? run(python, ["-c", "import \(modules)"]).status) == 0
    }

    /// Runs `program` (looked up on PATH) with `arguments`; its exit status and stdout + stderr.
    static func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
