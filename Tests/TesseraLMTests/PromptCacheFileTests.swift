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
