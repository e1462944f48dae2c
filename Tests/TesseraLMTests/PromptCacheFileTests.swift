// Prompt-cache files: saved then reused gives the reference logits; another
// model's file is refused and kept; generation from a cache file.

import Foundation
import Tessera
@testable import TesseraLM
import XCTest

/// `generate --prompt-cache FILE`: the first run saves the prompt's keys and
/// values, later runs whose prompt starts with the saved tokens compute only
/// the rest; the logits equal transformers' (fixtures of ArchitectureTests,
/// same tolerance) whichever way the prompt was computed.
final class PromptCacheFileTests: XCTestCase {
    typealias Fixtures = ArchitectureTests

    func temporaryPath() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "prompt-\(UUID().uuidString).safetensors"
        ).path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testSaveThenReuseGivesTheReferenceLogits() throws {
        // qwen2: standard caches; gemma2: rotating caches (window 4) on its sliding layers.
        for name in ["qwen2", "gemma2"] {
            let folder = Fixtures.fixture(name)
            let loaded = try ModelLoader.load(folder)
            let reference = try Fixtures.Reference(folder)
            let file = PromptCacheFile(path: temporaryPath(), modelIdentity: loaded.identity)
            var parameters = GenerateParameters()
            parameters.sampling = .greedy
            // float32 caches, against transformers' float32 logits at their tolerance (the float16 default: below).
            parameters.kvCacheType = .f32
            func run(_ n: Int) throws -> PromptCacheUse {
                let (generator, use, _) = try PromptCache.generator(
                    model: loaded.model, prompt: Array(reference.tokens[..<n]), parameters: parameters, file: file)
                Fixtures.assertClose(
                    [generator.nextLogits!.toArray(Float.self)], [reference.logits[n - 1]], "\(name) \(use)")
                return use
            }
            XCTAssertEqual(try run(5), .saved(tokens: 4), name)
            XCTAssertEqual(try run(5), .reused(tokens: 4), "\(name): the same prompt again")
            XCTAssertEqual(try run(8), .reused(tokens: 4), "\(name): a longer prompt")
            // A prompt that does not start with the saved tokens replaces them.
            let other = [reference.tokens[1]] + Array(reference.tokens[1..<6])
            let (_, use, _) = try PromptCache.generator(
                model: loaded.model, prompt: other, parameters: parameters, file: file)
            XCTAssertEqual(use, .saved(tokens: 5), name)
            XCTAssertEqual(
                try PromptCache.load(file.path).metadata["tokens"],
                other.dropLast().map(String.init).joined(separator: " "))
            XCTAssertEqual(try run(5), .saved(tokens: 4), "\(name): back to the first prompt")
            // Caches of another size or precision are not reused.
            var quantized = parameters
            quantized.kvQuantization = try KVQuantization(bits: 8, groupSize: 32)
            let (_, kvUse, _) = try PromptCache.generator(
                model: loaded.model, prompt: Array(reference.tokens[..<6]), parameters: quantized, file: file)
            XCTAssertEqual(kvUse, .saved(tokens: 5), name)
        }
    }

    /// The float16 cache (the default): the file records its type; a reused
    /// file gives the logits a run without the file gives, bit for bit; a
    /// float32 file (of `--kv-cache-type f32`, or written before the type was
    /// recorded) loads as float32 caches, and a float16 run recomputes and
    /// replaces it rather than mixing types (and the other way round).
    func testFloat16CachesAreRecordedAndOlderFloat32FilesStillLoad() throws {
        let folder = Fixtures.fixture("qwen2")
        let loaded = try ModelLoader.load(folder)
        let reference = try Fixtures.Reference(folder)
        let file = PromptCacheFile(path: temporaryPath(), modelIdentity: loaded.identity)
        var half = GenerateParameters()
        half.sampling = .greedy
        XCTAssertEqual(half.kvCacheType, .f16, "the default")
        var full = half
        full.kvCacheType = .f32
        let prompt = Array(reference.tokens[..<6])
        /// Without a file, the prompt computed as the file's use splits it: all but its last token, then that one.
        func bits(_ p: GenerateParameters) throws -> [UInt32] {
            let cache = p.makeCache(for: loaded.model)
            _ = try TokenGenerator(model: loaded.model, prompt: Array(prompt.dropLast()), parameters: p, cache: cache)
            let plain = try TokenGenerator(model: loaded.model, prompt: [prompt.last!], parameters: p, cache: cache)
            XCTAssertEqual(cache[0].state[0].dtype, p.kvCacheType.dtype)
            return try XCTUnwrap(plain.nextLogits).toArray(Float.self).map(\.bitPattern)
        }
        func run(_ p: GenerateParameters) throws -> (PromptCacheUse, [UInt32]) {
            let (generator, use, _) = try PromptCache.generator(
                model: loaded.model, prompt: prompt, parameters: p, file: file)
            return (use, try XCTUnwrap(generator.nextLogits).toArray(Float.self).map(\.bitPattern))
        }
        let halfBits = try bits(half), fullBits = try bits(full)
        XCTAssertNotEqual(halfBits, fullBits, "float16 keys change the logits a little")

        var (use, got) = try run(half)
        XCTAssertEqual(use, .saved(tokens: 5))
        XCTAssertEqual(got, halfBits)
        let (tensors, metadata) = try Safetensors.load(file.path)
        XCTAssertEqual(metadata["layer.0.kv_cache_type"], "f16")
        XCTAssertEqual(tensors["layer.0.0"]?.dtype, .float16)
        let restored = try PromptCache.load(file.path, modelIdentity: loaded.identity, model: loaded.model).caches
        XCTAssertTrue(restored.allSatisfy(\.halfPrecision))
        (use, got) = try run(half)
        XCTAssertEqual(use, .reused(tokens: 5))
        XCTAssertEqual(got, halfBits, "reused float16 caches")

        // A float32 run does not reuse the float16 file: recomputed, saved as float32.
        (use, got) = try run(full)
        XCTAssertEqual(use, .saved(tokens: 5))
        XCTAssertEqual(got, fullBits)
        XCTAssertEqual(try Safetensors.load(file.path).metadata["layer.0.kv_cache_type"], "f32")
        (use, got) = try run(full)
        XCTAssertEqual(use, .reused(tokens: 5))
        XCTAssertEqual(got, fullBits)

        // A file written before the type was recorded: float32 caches.
        var (older, info) = try Safetensors.load(file.path)
        for key in info.keys where key.hasSuffix(".kv_cache_type") { info[key] = nil }
        try Safetensors.save(older, metadata: info, to: file.path)
        let legacy = try PromptCache.load(file.path, modelIdentity: loaded.identity, model: loaded.model).caches
        XCTAssertFalse(legacy.contains(where: \.halfPrecision))
        XCTAssertEqual(legacy.first?.state.first?.dtype, .float32)
        (use, got) = try run(full)
        XCTAssertEqual(use, .reused(tokens: 5), "an older float32 file still serves a float32 run")
        XCTAssertEqual(got, fullBits)
        try Safetensors.save(older, metadata: info, to: file.path)
        (use, got) = try run(half)
        XCTAssertEqual(use, .saved(tokens: 5), "the float16 default recomputes an older float32 file")
        XCTAssertEqual(got, halfBits)
        XCTAssertEqual(try Safetensors.load(file.path).metadata["layer.0.kv_cache_type"], "f16")

        // Float32 tensors under a float16 type, and an unknown type: typed errors.
        older = try Safetensors.load(file.path).tensors
        info = try Safetensors.load(file.path).metadata
        var mismatched = older
        mismatched["layer.0.0"] = older["layer.0.0"]?.asType(.float32)
        mismatched["layer.0.1"] = older["layer.0.1"]?.asType(.float32)
        try Safetensors.save(mismatched, metadata: info, to: file.path)
        XCTAssertThrowsError(try PromptCache.load(file.path, model: loaded.model)) {
            guard case .corruptPromptCache(_, let reason)? = $0 as? ModelError else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("cache type is f16"), reason)
        }
        info["layer.1.kv_cache_type"] = "q4"
        try Safetensors.save(older, metadata: info, to: file.path)
        XCTAssertThrowsError(try PromptCache.load(file.path)) {
            guard case .corruptPromptCache(_, let reason)? = $0 as? ModelError else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("unknown cache type"), reason)
        }
    }

    func testAnotherModelsFileIsRefusedAndKept() throws {
        let loaded = try ModelLoader.load(Fixtures.fixture("qwen2"))
        let path = temporaryPath()
        let parameters = GenerateParameters()
        _ = try PromptCache.generator(
            model: loaded.model, prompt: [5, 17, 99], parameters: parameters,
            file: PromptCacheFile(path: path, modelIdentity: "another model"))
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertThrowsError(
            try PromptCache.generator(
                model: loaded.model, prompt: [5, 17, 99], parameters: parameters,
                file: PromptCacheFile(path: path, modelIdentity: loaded.identity))
        ) {
            guard case .promptCacheForAnotherModel(let p, let saved, _)? = $0 as? ModelError else {
                return XCTFail("\($0)")
            }
            XCTAssertEqual(p, path)
            XCTAssertEqual(saved, "another model")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(
            try PromptCache.generator(
                model: loaded.model, prompt: [5, 17, 99], parameters: parameters,
                file: PromptCacheFile(path: path, modelIdentity: loaded.identity)))
        XCTAssertThrowsError(
            try PromptCache.generator(
                model: loaded.model, prompt: [5], parameters: parameters,
                file: PromptCacheFile(path: temporaryPath(), modelIdentity: loaded.identity))
        ) { XCTAssertTrue($0 is ModelError) }
    }

    /// Through `TextGenerator.generate` (what `tessera generate --prompt-cache` calls):
    /// the events say what happened, the tokens equal a run without the cache.
    func testGenerateWithAPromptCacheFile() async throws {
        let loaded = try ModelLoader.load(Fixtures.fixture("qwen2"))
        let generator = TextGenerator(
            model: loaded.model, tokenizer: try Tokenizer(directory: TokenizerTests.directory("gpt2-bpe")))
        var parameters = GenerateParameters()
        parameters.sampling = .greedy
        parameters.maxTokens = 6
        let prompt = [5, 17, 99, 3, 64, 120, 42]
        func run(_ file: PromptCacheFile?) async throws -> (
            tokens: [Int], uses: [PromptCacheUse], stats: GenerationStats
        ) {
            var tokens: [Int] = [], uses: [PromptCacheUse] = [], stats = GenerationStats()
            for try await event in generator.generate(prompt: prompt, parameters: parameters, promptCache: file) {
                switch event {
                case .token(let t): tokens.append(t)
                case .promptCache(let use): uses.append(use)
                case .done(let s): stats = s
                case .text: break
                }
            }
            return (tokens, uses, stats)
        }
        let plain = try await run(nil)
        XCTAssertEqual(plain.tokens.count, 6)
        let file = PromptCacheFile(path: temporaryPath(), modelIdentity: loaded.identity)
        let first = try await run(file)
        XCTAssertEqual(first.uses, [.saved(tokens: 6)])
        XCTAssertEqual(first.tokens, plain.tokens)
        XCTAssertEqual(first.stats.promptTokens, prompt.count)
        let second = try await run(file)
        XCTAssertEqual(second.uses, [.reused(tokens: 6)])
        XCTAssertEqual(second.tokens, plain.tokens)
        XCTAssertEqual(second.stats.promptTokens, 1, "only the last prompt token is computed")
    }
}
