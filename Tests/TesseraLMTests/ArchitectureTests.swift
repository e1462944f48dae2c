// The safetensors architectures (llama with llama3 rope scaling, mistral, qwen2/3, phi3,
// gemma2/3, MLX-quantized folders) against transformers/mlx-lm logits from committed fixtures.

import Foundation
import Tessera
@testable import TesseraLM
import XCTest

/// Each architecture against Hugging Face transformers' float32 logits on a
/// tiny random model (fixtures by Tools/gen_lm_fixtures.py): the first
/// `prompt_length` tokens in one step, the rest one by one through the KV
/// cache. Tolerance (float32): |got - expected| <= 1e-4 + 1e-4·|expected|.
final class ArchitectureTests: XCTestCase {
    static let rtol: Float = 1e-4, atol: Float = 1e-4

    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/lm/\(name)").standardizedFileURL.path
    }

    struct Reference {
        let tokens: [Int]
        let promptLength: Int
        let logits: [[Float]]

        init(_ folder: String) throws {
            let json =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: folder + "/reference.json"))) as! [String: Any]
            tokens = json["tokens"] as! [Int]
            promptLength = json["prompt_length"] as! Int
            logits = (json["logits"] as! [[Double]]).map { $0.map(Float.init) }
        }
    }

    /// Logits per position: the prompt in one step, then one token at a time through `cache`.
    static func logits(_ model: any LanguageModel, _ tokens: [Int], promptLength: Int, cache: [KVCache]) -> [[Float]] {
        func run(_ ids: ArraySlice<Int>) -> [[Float]] {
            let out = model(Tensor(ids.map { Int32($0) }, shape: [1, ids.count]), cache: cache)
            eval([out] + cache.flatMap(\.state))
            let flat = out.toArray(Float.self)
            return (0..<ids.count).map { Array(flat[$0 * model.vocabularySize..<($0 + 1) * model.vocabularySize]) }
        }
        var rows = run(tokens[..<promptLength])
        for i in promptLength..<tokens.count { rows += run(tokens[i..<i + 1]) }
        return rows
    }

    static func assertClose(
        _ got: [[Float]], _ expected: [[Float]], rtol: Float = rtol, atol: Float = atol, _ what: String
    ) {
        XCTAssertEqual(got.count, expected.count, what)
        var worst: Float = 0
        for (g, e) in zip(got, expected) {
            XCTAssertEqual(g.count, e.count, what)
            for (a, b) in zip(g, e) { worst = max(worst, abs(a - b) - rtol * abs(b)) }
        }
        XCTAssertLessThanOrEqual(worst, atol, "\(what): worst excess error \(worst)")
    }

    func check(_ name: String, modelType: String? = nil, rtol: Float = rtol, atol: Float = atol) throws {
        let folder = Self.fixture(name)
        let loaded = try ModelLoader.load(folder)
        XCTAssertEqual(loaded.modelType, modelType ?? name)
        let reference = try Reference(folder)
        let got = Self.logits(
            loaded.model, reference.tokens, promptLength: reference.promptLength, cache: loaded.model.makeCache())
        Self.assertClose(got, reference.logits, rtol: rtol, atol: atol, name)
    }

    func testLlamaWithLlama3RopeScaling() throws { try check("llama") }
    func testMistralSlidingWindow() throws { try check("mistral") }
    func testQwen2() throws { try check("qwen2") }
    func testQwen3() throws { try check("qwen3") }
    func testPhi3() throws { try check("phi3") }
    func testGemma2() throws { try check("gemma2") }
    func testGemma3() throws { try check("gemma3_text") }

    /// mlx-lm's 4-bit quantization (group 32, one layer 8-bit group 64, one left
    /// dense) against mlx_lm running the same quantized weights.
    func testMLXQuantizedFolderMatchesMLX() throws {
        try check("qwen3_mlx_q4", modelType: "qwen3")
    }

    /// Sliding layers keep only their window (a rotating cache); decoding past it
    /// from a short prompt gives the same logits.
    func testSlidingWindowCacheRotates() throws {
        for name in ["gemma2", "gemma3_text", "mistral"] {
            let folder = Self.fixture(name)
            let model = try ModelLoader.load(folder).model
            let reference = try Reference(folder)
            let cache = model.makeCache()
            let got = Self.logits(model, reference.tokens, promptLength: 2, cache: cache)
            Self.assertClose(got, reference.logits, name)
            XCTAssertEqual(cache[0].length, 4, "\(name): the window")
        }
    }

    func testUnknownModelTypeIsATypedError() throws {
        let dir = try temporaryFolder(config: #"{"model_type": "mamba", "hidden_size": 8}"#)
        XCTAssertThrowsError(try ModelLoader.load(dir)) {
            XCTAssertEqual($0 as? ModelError, .unknownModelType("mamba"))
        }
    }

    func testMissingAndMisshapedTensorsAreTypedErrors() throws {
        let source = Self.fixture("qwen2")
        let config = try String(contentsOfFile: source + "/config.json", encoding: .utf8)
        var tensors = try Safetensors.load(source + "/model.safetensors").tensors
        tensors["model.layers.1.self_attn.q_proj.bias"] = nil
        let missing = try temporaryFolder(config: config, tensors: tensors)
        XCTAssertThrowsError(try ModelLoader.load(missing)) {
            XCTAssertEqual($0 as? ModelError, .missingTensor("model.layers.1.self_attn.q_proj.bias"))
        }
        tensors = try Safetensors.load(source + "/model.safetensors").tensors
        tensors["model.layers.0.mlp.up_proj.weight"] = Tensor.zeros([3, 64])
        let misshaped = try temporaryFolder(config: config, tensors: tensors)
        XCTAssertThrowsError(try ModelLoader.load(misshaped)) {
            guard case .tensorShape(let name, _, let got)? = $0 as? ModelError else { return XCTFail("\($0)") }
            XCTAssertEqual(name, "model.layers.0.mlp.up_proj.weight")
            XCTAssertEqual(got, [3, 64])
        }
    }

    func testCorruptFilesAreTypedErrors() throws {
        let source = Self.fixture("qwen2")
        let dir = try temporaryFolder(config: "{not json")
        XCTAssertThrowsError(try ModelLoader.load(dir)) { XCTAssertTrue($0 is ModelError, "\($0)") }
        let config = try String(contentsOfFile: source + "/config.json", encoding: .utf8)
        let truncated = try temporaryFolder(config: config)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: source + "/model.safetensors"))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated + "/model.safetensors"))
        XCTAssertThrowsError(try ModelLoader.load(truncated))
        let phi = try String(contentsOfFile: Self.fixture("phi3") + "/config.json", encoding: .utf8)
            .replacingOccurrences(of: #""rope_type": "default""#, with: #""rope_type": "longrope""#)
        let longrope = try temporaryFolder(config: phi)
        XCTAssertThrowsError(try ModelLoader.load(longrope)) {
            guard case .invalidConfiguration(let why)? = $0 as? ModelError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("longrope"), why)
        }
    }

    func temporaryFolder(config: String, tensors: [String: Tensor]? = nil) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-lm-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        if let tensors { try Safetensors.save(tensors, to: dir + "/model.safetensors") }
        return dir
    }
}
