// KV caches: the quantized cache against mlx-lm, bad settings as typed errors,
// prompt caches saved, loaded, continued and refused when corrupt.

import Foundation
import Tessera
@testable import TesseraLM
import XCTest

/// Quantized KV caches against mlx_lm's QuantizedKVCache (group 32) on the
/// tiny qwen3 model, and prompt caches saved to safetensors and read back.
final class KVCacheTests: XCTestCase {
    typealias Fixtures = ArchitectureTests

    /// Tessera dequantizes on read, mlx_lm multiplies the packed values: float32
    /// rounding differs, so 1e-4 + 1e-4·|x| as for full precision.
    func testQuantizedCacheMatchesMLX() throws {
        let folder = Fixtures.fixture("qwen3")
        let model = try ModelLoader.load(folder).model
        for bits in [4, 8] {
            let reference =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: folder + "/reference_kv\(bits).json")))
                as! [String: Any]
            let tokens = reference["tokens"] as! [Int]
            let expected = (reference["logits"] as! [[Double]]).map { $0.map(Float.init) }
            let cache = model.makeCache(maxSize: nil, quantization: try KVQuantization(bits: bits, groupSize: 32))
            let got = Fixtures.logits(model, tokens, promptLength: reference["prompt_length"] as! Int, cache: cache)
            Fixtures.assertClose(got, expected, "\(bits)-bit KV cache")
            XCTAssertEqual(cache[0].state.count, 6)
            XCTAssertEqual(cache[0].state[0].dtype, .uint32)
        }
    }

    func testBadQuantizationIsATypedError() {
        XCTAssertThrowsError(try KVQuantization(bits: 7)) { XCTAssertTrue($0 is ModelError) }
        XCTAssertThrowsError(try KVQuantization(bits: 4, groupSize: 48)) { XCTAssertTrue($0 is ModelError) }
    }

    /// Prefill, save, load into a fresh process-like state, continue: the same logits as one run.
    func testPromptCacheRoundTrip() throws {
        for (name, quantization) in [("gemma2", nil), ("qwen3", try KVQuantization(bits: 8, groupSize: 32))] {
            let folder = Fixtures.fixture(name)
            let loaded = try ModelLoader.load(folder)
            let reference = try Fixtures.Reference(folder)
            let n = reference.promptLength
            let cache = loaded.model.makeCache(maxSize: nil, quantization: quantization)
            _ = Fixtures.logits(loaded.model, Array(reference.tokens[..<n]), promptLength: n, cache: cache)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "prompt-\(UUID().uuidString).safetensors"
            ).path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try PromptCache.save(cache, to: path, modelIdentity: loaded.identity, metadata: ["note": "test"])

            let (restored, metadata) = try PromptCache.load(path, modelIdentity: loaded.identity)
            XCTAssertEqual(metadata["note"], "test")
            XCTAssertEqual(restored.map(\.offset), cache.map(\.offset))
            XCTAssertEqual(restored.map(\.maxSize), cache.map(\.maxSize))
            XCTAssertEqual(restored.map(\.quantization), cache.map(\.quantization))
            var rows: [[Float]] = []
            for i in n..<reference.tokens.count {
                rows += Fixtures.logits(loaded.model, [reference.tokens[i]], promptLength: 1, cache: restored)
            }
            let expected = Array(reference.logits[n...])
            if quantization == nil {
                Fixtures.assertClose(rows, expected, name)
            } else {
                let kv8 =
                    try JSONSerialization.jsonObject(
                        with: Data(contentsOf: URL(fileURLWithPath: folder + "/reference_kv8.json"))) as! [String: Any]
                Fixtures.assertClose(rows, Array((kv8["logits"] as! [[Double]]).map { $0.map(Float.init) }[n...]), name)
            }

            XCTAssertThrowsError(try PromptCache.load(path, modelIdentity: "another model")) {
                XCTAssertTrue($0 is ModelError, "\($0)")
            }
        }
    }

    func testGeneratorContinuesFromALoadedPromptCache() throws {
        let loaded = try ModelLoader.load(Fixtures.fixture("qwen2"))
        let reference = try Fixtures.Reference(Fixtures.fixture("qwen2"))
        var parameters = GenerateParameters()
        parameters.sampling = .greedy
        parameters.maxTokens = 1
        parameters.kvCacheType = .f32  // against transformers' float32 logits at their tolerance
        let first = try TokenGenerator(
            model: loaded.model, prompt: Array(reference.tokens[..<5]), parameters: parameters)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "prompt-\(UUID().uuidString).safetensors"
        ).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PromptCache.save(first.cache, to: path, modelIdentity: loaded.identity)
        let restored = try PromptCache.load(path, modelIdentity: loaded.identity).caches
        let next = try TokenGenerator(
            model: loaded.model, prompt: Array(reference.tokens[5..<7]), parameters: parameters, cache: restored)
        Fixtures.assertClose([next.nextLogits!.toArray(Float.self)], [reference.logits[6]], "continued")
    }

    func testCorruptPromptCacheIsATypedError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "prompt-\(UUID().uuidString).safetensors"
        ).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.save(
            ["x": Tensor([1, 2] as [Float])], metadata: ["format": "tessera.prompt_cache.v1", "layers": "1"], to: path)
        XCTAssertThrowsError(try PromptCache.load(path)) { XCTAssertTrue($0 is ModelError, "\($0)") }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try PromptCache.load(path))
    }
}
