// `convert`: GGUF and HF folders to MLX folders, checked against transformers and
// mlx-lm; requantizing; bad input leaves no partial output.

import Foundation
import Tessera
@testable import TesseraLM
import XCTest

/// `tessera convert`: HF folders and llama GGUF files to MLX-format quantized folders.
final class ConvertTests: XCTestCase {
    typealias Fixtures = ArchitectureTests

    func output() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-convert-\(UUID().uuidString)")
            .path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func testGGUFLlamaMatchesTransformers() throws {
        let folder = Fixtures.fixture("llama_gguf")
        let loaded = try ModelLoader.load(folder + "/model.gguf")
        let reference = try Fixtures.Reference(folder)
        let got = Fixtures.logits(
            loaded.model, reference.tokens, promptLength: reference.promptLength, cache: loaded.model.makeCache())
        Fixtures.assertClose(got, reference.logits, "llama GGUF")
    }

    /// A GGUF (q/k rows permuted for llama.cpp) and the HF folder of the same
    /// weights convert to the same quantized model; 8-bit stays near float32.
    func testGGUFAndFolderConvertToTheSameModel() throws {
        let folder = Fixtures.fixture("llama_gguf")
        let fromGGUF = output(), fromFolder = output()
        try ModelConverter.convert(model: folder + "/model.gguf", output: fromGGUF, bits: 8, groupSize: 32)
        try ModelConverter.convert(model: folder + "/hf", output: fromFolder, bits: 8, groupSize: 32)
        let a = try Safetensors.load(fromGGUF + "/model.safetensors").tensors
        let b = try Safetensors.load(fromFolder + "/model.safetensors").tensors
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for name in [
            "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.scales", "lm_head.weight"
        ] {
            XCTAssertEqual(a[name]!.dtype, b[name]!.dtype, name)
            XCTAssertEqual(
                a[name]!.asType(.float32).toArray(Float.self), b[name]!.asType(.float32).toArray(Float.self), name)
        }
        let reference = try Fixtures.Reference(folder)
        for path in [fromGGUF, fromFolder] {
            let loaded = try ModelLoader.load(path)
            XCTAssertEqual(loaded.modelType, "llama")
            let got = Fixtures.logits(
                loaded.model, reference.tokens, promptLength: reference.promptLength, cache: loaded.model.makeCache())
            // 8-bit weights on this deliberately large random model: mlx_lm with the same
            // quantization is 0.19 off the float32 logits (std 1.2), as is this.
            Fixtures.assertClose(got, reference.logits, rtol: 0, atol: 0.25, "8-bit conversion")
        }
    }

    /// Tessera's quantization is MLX's: a 4-bit group-32 conversion reproduces
    /// mlx_lm's packed weights, scales and biases; tokenizer files come along;
    /// the folder generates.
    func testFolderConversionMatchesMLXAndGenerates() throws {
        let source = output()
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(
                atPath: Fixtures.fixture("qwen3") + "/" + name, toPath: source + "/" + name)
        }
        try #"{"model_max_length": 256}"#.write(
            toFile: source + "/tokenizer_config.json", atomically: true, encoding: .utf8)
        let out = output()
        try ModelConverter.convert(model: source, output: out, bits: 4, groupSize: 32)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/tokenizer_config.json"))
        let ours = try Safetensors.load(out + "/model.safetensors").tensors
        let mlx = try Safetensors.load(Fixtures.fixture("qwen3_mlx_q4") + "/model.safetensors").tensors
        for base in ["model.layers.1.self_attn.q_proj", "model.layers.0.mlp.gate_proj", "model.embed_tokens"] {
            XCTAssertEqual(
                ours[base + ".weight"]!.toArray(UInt32.self), mlx[base + ".weight"]!.toArray(UInt32.self), base)
            for part in [".scales", ".biases"] {
                Fixtures.assertClose(
                    [ours[base + part]!.toArray(Float.self)], [mlx[base + part]!.toArray(Float.self)], rtol: 1e-6,
                    atol: 1e-7,
                    base + part)
            }
        }
        let loaded = try ModelLoader.load(out)
        var parameters = GenerateParameters()
        parameters.sampling = .greedy
        parameters.maxTokens = 4
        var generator = try TokenGenerator(model: loaded.model, prompt: [5, 17, 99], parameters: parameters)
        var tokens: [Int] = []
        while let t = try generator.next() { tokens.append(t) }
        XCTAssertEqual(tokens.count, 4)
    }

    func testConvertingAQuantizedFolderRequantizes() throws {
        let out = output()
        try ModelConverter.convert(model: Fixtures.fixture("qwen3_mlx_q4"), output: out, bits: 8, groupSize: 32)
        let loaded = try ModelLoader.load(out)
        XCTAssertEqual(loaded.modelType, "qwen3")
    }

    func testBadInputLeavesNothingBehind() throws {
        let out = output()
        XCTAssertThrowsError(try ModelConverter.convert(model: "/nonexistent", output: out)) {
            XCTAssertTrue($0 is ModelError)
        }
        XCTAssertThrowsError(try ModelConverter.convert(model: Fixtures.fixture("qwen3"), output: out, bits: 7)) {
            XCTAssertTrue($0 is ModelError)
        }
        XCTAssertThrowsError(
            try ModelConverter.convert(model: Fixtures.fixture("io/../../io/sample.gguf"), output: out)
        ) {
            XCTAssertTrue($0 is ModelError, "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let parent = (out as NSString).deletingLastPathComponent
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: parent).filter {
            $0.hasPrefix((out as NSString).lastPathComponent)
        }
        XCTAssertEqual(leftovers, [])
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        XCTAssertThrowsError(try ModelConverter.convert(model: Fixtures.fixture("qwen3"), output: out)) {
            XCTAssertTrue($0 is ModelError)
        }
    }
}
