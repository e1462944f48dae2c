// The GGUF architectures (llama, mistral, qwen2/3, phi3 Q8_0, gemma2/3) against
// llama.cpp/transformers references from committed GGUF fixtures.

import Foundation
import Tessera
@testable import TesseraLM
import XCTest

/// GGUF files of every architecture, written as llama.cpp's converter writes
/// them (Tools/gen_gguf_fixtures.py: permuted llama q/k, rope_freqs, fused
/// phi3 projections, gemma's 1 + w norms, tied embeddings, float16 and Q8_0
/// weights), against transformers' float32 logits of the weights they hold.
/// Tolerance as ArchitectureTests: |got - expected| <= 1e-4 + 1e-4·|expected|.
final class GGUFArchitectureTests: XCTestCase {
    typealias Fixtures = ArchitectureTests

    func check(_ name: String, modelType: String) throws {
        let folder = Fixtures.fixture("gguf/\(name)")
        let loaded = try ModelLoader.load(folder + "/model.gguf")
        XCTAssertEqual(loaded.modelType, modelType, name)
        let reference = try Fixtures.Reference(folder)
        let got = Fixtures.logits(
            loaded.model, reference.tokens, promptLength: reference.promptLength, cache: loaded.model.makeCache())
        Fixtures.assertClose(got, reference.logits, "\(name) GGUF")
    }

    func testLlamaWithLlama3RopeFreqs() throws { try check("llama3", modelType: "llama") }
    func testMistralWrittenAsLlama() throws { try check("mistral", modelType: "llama") }
    func testQwen2TiedWithBiases() throws { try check("qwen2", modelType: "qwen2") }
    func testQwen3() throws { try check("qwen3", modelType: "qwen3") }
    func testPhi3FusedQ8_0() throws { try check("phi3", modelType: "phi3") }
    func testGemma2() throws { try check("gemma2", modelType: "gemma2") }
    func testGemma3() throws { try check("gemma3", modelType: "gemma3_text") }

    /// What the metadata turns into: the keys llama.cpp leaves out come from its fixed choices.
    func testGemmaConventions() throws {
        let gemma3 = try GGUFModelDescription(GGUFFile.load(Fixtures.fixture("gguf/gemma3") + "/model.gguf"))
        let c = try gemma3.configuration()
        XCTAssertEqual(c.slidingLayers, [true, true, true, true, true, false])
        XCTAssertEqual(c.localRope?.base, 10000)
        XCTAssertEqual(c.localRope?.scale, 1)
        XCTAssertEqual(c.rope.scale, 0.25)
        XCTAssertEqual(c.normWeightOffset, 1, "GGUF gemma norms (1 + w) are loaded back as w, applied as 1 + w")
        XCTAssertFalse(c.ropeTraditional)
        let gemma2 = try GGUFModelDescription(GGUFFile.load(Fixtures.fixture("gguf/gemma2") + "/model.gguf"))
            .configuration()
        XCTAssertEqual(gemma2.slidingLayers, [true, false, true])
        XCTAssertEqual(gemma2.attentionSoftcap, 2)
        XCTAssertEqual(gemma2.finalSoftcap, 3)
        XCTAssertEqual(
            try GGUFModelDescription.gemmaQueryScalar(
                scale: nil, arch: "gemma2", layers: 46, hidden: 4608, heads: 32, headDim: 128),
            144)
        XCTAssertEqual(
            try GGUFModelDescription.gemmaQueryScalar(
                scale: nil, arch: "gemma2", layers: 26, hidden: 2304, heads: 8, headDim: 256),
            256)
    }

    /// A copy of a fixture with every occurrence of `old` replaced by `new`
    /// (same length), for each pair in turn.
    func patched(_ name: String, _ replacements: (String, String)...) throws -> String {
        var bytes = [UInt8](
            try Data(contentsOf: URL(fileURLWithPath: Fixtures.fixture("gguf/\(name)") + "/model.gguf")))
        for (old, new) in replacements {
            let (a, b) = (Array(old.utf8), Array(new.utf8))
            precondition(a.count == b.count)
            var i = 0
            while i + a.count <= bytes.count {
                if bytes[i] == a[0], Array(bytes[i..<i + a.count]) == a {
                    bytes.replaceSubrange(i..<i + a.count, with: b)
                    i += a.count
                } else {
                    i += 1
                }
            }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-gguf-\(UUID().uuidString).gguf"
        ).path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testUnknownArchitectureIsATypedErrorNamingIt() throws {
        let path = try patched("qwen2", ("qwen2", "mamba"))
        XCTAssertThrowsError(try ModelLoader.load(path)) {
            XCTAssertEqual($0 as? ModelError, .unknownModelType("mamba"))
            XCTAssertTrue("\($0)".contains("\"mamba\""), "\($0)")
        }
        XCTAssertThrowsError(try ModelConverter.convert(model: path, output: path + ".out")) {
            XCTAssertEqual($0 as? ModelError, .unknownModelType("mamba"))
        }
    }

    func testMissingGGUFTensorIsATypedError() throws {
        // Renaming one tensor leaves the model without it.
        let path = try patched("qwen3", ("blk.1.attn_k_norm", "blk.1.attn_k_nxrm"))
        XCTAssertThrowsError(try ModelLoader.load(path)) {
            XCTAssertEqual($0 as? ModelError, .missingTensor("blk.1.attn_k_norm.weight"))
        }
    }

    func testMisshapedGGUFTensorIsATypedError() throws {
        // Layer 0's q and k swapped: q is [kv_heads·head_dim, hidden] = [64, 64] instead of [128, 64].
        let path = try patched(
            "qwen3", ("blk.0.attn_q.", "blk.0.attn_X."), ("blk.0.attn_k.", "blk.0.attn_q."),
            ("blk.0.attn_X.", "blk.0.attn_k."))
        XCTAssertThrowsError(try ModelLoader.load(path)) {
            XCTAssertEqual(
                $0 as? ModelError, .tensorShape(name: "blk.0.attn_q.weight", expected: [128, 64], got: [64, 64]))
        }
        // A head count the sizes do not divide.
        let heads = try patched("qwen3", ("qwen3.attention.head_count_kv", "qwen3.attention.head_count_kX"))
        XCTAssertThrowsError(try ModelLoader.load(heads)) { XCTAssertTrue($0 is ModelError, "\($0)") }
    }

    func testNotAGGUFIsATypedError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-gguf-\(UUID().uuidString).gguf"
        ).path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try Data("GGUF but not really, just text".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ModelLoader.load(path)) { XCTAssertTrue($0 is IOError, "\($0)") }
        try Data().write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ModelLoader.load(path)) { XCTAssertTrue($0 is IOError, "\($0)") }
    }

    func testTruncatedGGUFIsATypedError() throws {
        let source = Fixtures.fixture("gguf/gemma2") + "/model.gguf"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: source))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-gguf-\(UUID().uuidString).gguf"
        ).path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ModelLoader.load(path)) { XCTAssertTrue($0 is IOError, "\($0)") }
    }

    /// Converting each GGUF writes a folder (Hugging Face conventions) that
    /// loads as the same model: at 8 bits the logits stay near the reference.
    func testEveryArchitectureConverts() throws {
        for (name, modelType) in [
            ("mistral", "llama"), ("qwen2", "qwen2"), ("qwen3", "qwen3"), ("phi3", "phi3"), ("gemma2", "gemma2"),
            ("gemma3", "gemma3_text")
        ] {
            let folder = Fixtures.fixture("gguf/\(name)")
            let out = FileManager.default.temporaryDirectory.appendingPathComponent(
                "tessera-convert-\(UUID().uuidString)"
            ).path
            addTeardownBlock { try? FileManager.default.removeItem(atPath: out) }
            try ModelConverter.convert(model: folder + "/model.gguf", output: out, bits: 8, groupSize: 32)
            let loaded = try ModelLoader.load(out)
            XCTAssertEqual(loaded.modelType, modelType, name)
            let reference = try Fixtures.Reference(folder)
            let got = Fixtures.logits(
                loaded.model, reference.tokens, promptLength: reference.promptLength, cache: loaded.model.makeCache())
            // 8-bit weights on these deliberately large random models (see ConvertTests).
            Fixtures.assertClose(got, reference.logits, rtol: 0, atol: 0.25, "\(name) converted at 8 bits")
        }
    }

    /// A GGUF whose rope_freqs came from llama3 scaling converts to a folder with
    /// the llama3 `rope_scaling` that gives the same factors.
    func testRopeFreqsConvertToLlama3RopeScaling() throws {
        let folder = Fixtures.fixture("gguf/llama3")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-convert-\(UUID().uuidString)")
            .path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: out) }
        try ModelConverter.convert(model: folder + "/model.gguf", output: out, bits: 8, groupSize: 32)
        let config = try ModelLoader.readConfig(out)
        XCTAssertEqual(config["rope_scaling"]?["rope_type"]?.string, "llama3")
        XCTAssertEqual(config["rope_scaling"]?["factor"]?.double, 8)
        // The fixture's scaling: low 1, high 4, original 64.
        XCTAssertEqual(config["rope_scaling"]?["low_freq_factor"]?.double, 1)
        XCTAssertEqual(config["rope_scaling"]?["high_freq_factor"]?.double, 4)
        XCTAssertEqual(config["rope_scaling"]?["original_max_position_embeddings"]?.int, 64)
        let loaded = try ModelLoader.load(out)
        let reference = try Fixtures.Reference(folder)
        let got = Fixtures.logits(
            loaded.model, reference.tokens, promptLength: reference.promptLength, cache: loaded.model.makeCache())
        Fixtures.assertClose(got, reference.logits, rtol: 0, atol: 0.25, "llama3 converted at 8 bits")
    }

    /// GGUF quant blocks are 32 wide: converting one defaults to group 32.
    func testGGUFConvertsWithGroup32ByDefault() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-convert-\(UUID().uuidString)")
            .path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: out) }
        try ModelConverter.convert(model: Fixtures.fixture("gguf/phi3") + "/model.gguf", output: out)
        let config = try ModelLoader.readConfig(out)
        XCTAssertEqual(config["quantization"]?["group_size"]?.int, 32)
        XCTAssertEqual(config["quantization"]?["bits"]?.int, 4)
    }

    func testRopeFreqsThatAreNotLlama3AreRefused() throws {
        let file = try GGUFFile.load(Fixtures.fixture("gguf/llama3") + "/model.gguf")
        let description = try GGUFModelDescription(file)
        var odd = description
        odd.ropeFactors = [1, 3, 1.5, 8, 8, 8, 8, 8]
        XCTAssertThrowsError(try ModelConverter.configWithRopeScaling(odd, path: "x.gguf")) {
            guard case .invalidConfiguration(let why)? = $0 as? ModelError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("rope_freqs"), why)
        }
    }
}
