// `tessera serve` as a real process on loopback, checked by the official
// `openai` and `anthropic` Python SDKs (Tools/serve_sdk_check.py): every
// endpoint streamed and not, greedy text equal to `tessera generate`'s, bad
// requests in each API's error shape, a full queue, a client disconnect, a
// concurrent load loop, and SIGTERM ending the server with status 0.
//
// The full check runs on a tiny random llama with SmolLM2's tokenizer and
// Qwen2.5's chat template, which renders tools (built here: fast even in a
// debug build), on the batched engine, with a serial-engine server beside it
// for the 429 check and the uncached reference texts; the greedy/streaming
// core and the prefix cache run again on SmolLM2 itself when it is cached.

import Foundation
import Tessera
import TesseraLM
import XCTest

final class ServeBinaryTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures")
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Tools/serve_sdk_check.py").standardizedFileURL

    /// Runs the SDK check script; its last stdout line (JSON measurements).
    private func runCheck(_ arguments: [String]) throws -> [String: Any] {
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", Self.script.path] + arguments
        let out = Pipe(), err = Pipe()
        python.standardOutput = out
        python.standardError = err
        try python.run()
        let errData = Locked(Data())
        let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        while !errData.isSet { usleep(1000) }
        let stderr = String(decoding: errData.value, as: UTF8.self)
        print(stderr)
        XCTAssertEqual(python.terminationStatus, 0, "the SDK check failed:\n\(stderr)")
        guard let last = stdout.split(separator: "\n").last,
            let summary = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        else {
            XCTFail("no summary from the SDK check: \(stdout)")
            return [:]
        }
        return summary
    }

    /// A 2-layer llama with random weights, SmolLM2's vocabulary and tokenizer, and Qwen2.5's chat template.
    private func tinyModel() throws -> URL {
        let folder = try makeTemporaryFolder()
        let (vocab, hidden, inter, layers, heads, kvHeads, headDim) = (49152, 32, 64, 2, 2, 1, 16)
        let config = """
            {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": \(hidden),
             "intermediate_size": \(inter), "num_hidden_layers": \(layers), "num_attention_heads": \(heads),
             "num_key_value_heads": \(kvHeads), "head_dim": \(headDim), "vocab_size": \(vocab), "rms_norm_eps": 1e-05,
             "rope_theta": 10000, "max_position_embeddings": 2048, "tie_word_embeddings": false,
             "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float16"}
            """
        try Data(config.utf8).write(to: folder.appendingPathComponent("config.json"))
        var tensors: [String: Tensor] = [:]
        var counter: UInt64 = 0
        func add(_ name: String, _ shape: [Int], scale: Double = 0.05) {
            counter += 1
            // Uniform with the given standard deviation (normal draws are slow in a debug build).
            let a = scale * Double(3).squareRoot()
            tensors[name + ".weight"] = Random.uniform(
                low: -a, high: a, shape, dtype: .float16, key: Random.key(counter))
        }
        func norm(_ name: String) { tensors[name + ".weight"] = Tensor.ones([hidden], dtype: .float16) }
        add("model.embed_tokens", [vocab, hidden], scale: 1)
        add("lm_head", [vocab, hidden], scale: 1)
        norm("model.norm")
        for i in 0..<layers {
            let p = "model.layers.\(i)."
            norm(p + "input_layernorm")
            norm(p + "post_attention_layernorm")
            add(p + "self_attn.q_proj", [heads * headDim, hidden])
            add(p + "self_attn.k_proj", [kvHeads * headDim, hidden])
            add(p + "self_attn.v_proj", [kvHeads * headDim, hidden])
            add(p + "self_attn.o_proj", [hidden, heads * headDim])
            add(p + "mlp.gate_proj", [inter, hidden])
            add(p + "mlp.up_proj", [inter, hidden])
            add(p + "mlp.down_proj", [hidden, inter])
        }
        try Safetensors.save(
            tensors, metadata: ["format": "pt"], to: folder.appendingPathComponent("model.safetensors").path)
        try FileManager.default.copyItem(
            at: Self.fixtures.appendingPathComponent("tokenizers/smollm2/tokenizer.json"),
            to: folder.appendingPathComponent("tokenizer.json"))
        // Qwen2.5's chat template (ChatML like SmolLM2's, and it renders tools: Hermes-style <tool_call>).
        let configData = try Data(
            contentsOf: Self.fixtures.appendingPathComponent("tokenizers/smollm2/tokenizer_config.json"))
        guard var tokenizerConfig = try JSONSerialization.jsonObject(with: configData) as? [String: Any] else {
            throw NSError(
                domain: "serve", code: 2,
                userInfo: [NSLocalizedDescriptionKey: "tokenizer_config.json is not an object"])
        }
        tokenizerConfig["chat_template"] = try String(
            contentsOf: Self.fixtures.appendingPathComponent("chat_templates/qwen2.5.jinja"), encoding: .utf8)
        try JSONSerialization.data(withJSONObject: tokenizerConfig).write(
            to: folder.appendingPathComponent("tokenizer_config.json"))
        return folder
    }

    private func makeTemporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testTheSDKsAgainstATinyModel() throws {
        try requirePythonModules(["openai", "anthropic", "jsonschema"], "the openai and anthropic SDKs and jsonschema")
        let t0 = Date()
        let model = try tinyModel()
        print("tiny model written in \(Date().timeIntervalSince(t0)) s")
        let key = "test-key-\(UUID().uuidString.prefix(8))"
        let name = "tiny"
        let server = try ServerProcess([
            "serve", "--port", "0", "-m", model.path, "--model-name", name, "--api-key", key, "--cors-origin",
            "http://example.com"
        ])
        // The serial engine, no queue: the 429 check, and the uncached reference for the prefix cache.
        let queued = try ServerProcess([
            "serve", "--port", "0", "-m", model.path, "--model-name", name, "--api-key", key, "--max-queue", "0",
            "--engine", "serial"
        ])
        print("servers up after \(Date().timeIntervalSince(t0)) s")
        let summary = try runCheck([
            "--url", server.address, "--queue-url", queued.address, "--reference-url", queued.address, "--api-key", key,
            "--model", name,
            "--tessera", try tesseraBinary().path, "--model-path", model.path, "--pid",
            String(server.process.processIdentifier),
            "--clients", "32", "--rounds", "2", "--tools"
        ])
        print("serve load: \(summary)")
        XCTAssertEqual(summary["ok"] as? Bool, true)
        print("checked after \(Date().timeIntervalSince(t0)) s")
        XCTAssertEqual(server.stop(), 0, "SIGTERM should end the server with status 0:\n\(server.output)")
        XCTAssertEqual(queued.stop(), 0, queued.output)
        print("stopped after \(Date().timeIntervalSince(t0)) s")
    }

    func testTheSDKsAgainstSmolLM2() throws {
        try requirePythonModules(["openai", "anthropic", "jsonschema"], "the openai and anthropic SDKs and jsonschema")
        guard let model = DefaultModel.cachedPath() else {
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_MODEL"] != nil {
                XCTFail("the default model is required but not in the cache (\(DefaultModel.cacheFile))")
            }
            throw XCTSkip("SmolLM2 GGUF not present (run `swift run tessera generate` once to fetch it)")
        }
        let key = "k\(UUID().uuidString.prefix(8))"
        let server = try ServerProcess(["serve", "--port", "0", "-m", model, "--api-key", key])
        let reference = try ServerProcess(["serve", "--port", "0", "-m", model, "--api-key", key, "--engine", "serial"])
        let name = URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent
        let summary = try runCheck([
            "--url", server.address, "--reference-url", reference.address, "--api-key", key, "--model", name,
            "--tessera", try tesseraBinary().path,
            "--model-path", model, "--pid", String(server.process.processIdentifier), "--quick"
        ])
        print("serve SmolLM2: \(summary)")
        XCTAssertEqual(summary["ok"] as? Bool, true)
        XCTAssertEqual(server.stop(), 0, server.output)
        XCTAssertEqual(reference.stop(), 0, reference.output)
    }
}

/// A value handed from a reader thread, with a flag once it is set.
private final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    private var done = false
    init(_ value: T) { stored = value }
    func set(_ value: T) {
        lock.withLock {
            stored = value; done = true
        }
    }
    var value: T { lock.withLock { stored } }
    var isSet: Bool { lock.withLock { done } }
}
