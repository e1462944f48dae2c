// Prompt caches read from disk are checked against the model's cache layout
// before they size or feed anything (issue 18): counts bounded, every tensor's
// shape and dtype the model's, and a corrupt file is an error that leaves the
// file as it was. Each corrupt file is made here from a valid one.

import Foundation
import Tessera
import XCTest

@testable import TesseraLM

final class PromptCacheValidationTests: XCTestCase {
    typealias Fixtures = ArchitectureTests

    private func temporaryPath() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cache-\(UUID().uuidString).safetensors"
        ).path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Asserts `generator` refuses the file at `file.path` with a message containing `reason`, and leaves it alone.
    private func assertRefused(
        _ model: any LanguageModel, _ file: PromptCacheFile, _ reason: String, line: UInt = #line
    ) throws {
        let before = try Data(contentsOf: URL(fileURLWithPath: file.path))
        XCTAssertThrowsError(
            try PromptCache.generator(
                model: model, prompt: [5, 17, 99, 3], parameters: GenerateParameters(), file: file),
            line: line
        ) { XCTAssertTrue("\($0)".contains(reason), "\($0)", line: line) }
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: file.path)), before, "the file was rewritten", line: line)
    }

    func testCorruptCachesAreErrorsAndLeftAlone() throws {
        let loaded = try ModelLoader.load(Fixtures.fixture("qwen2"))
        let valid = PromptCacheFile(path: temporaryPath(), modelIdentity: loaded.identity)
        _ = try PromptCache.generator(
            model: loaded.model, prompt: [5, 17, 99], parameters: GenerateParameters(), file: valid)
        let (tensors, metadata) = try Safetensors.load(valid.path)
        let keys = try XCTUnwrap(tensors["layer.0.0"])

        /// A copy of the valid file with `edit` applied to its tensors and metadata.
        func variant(_ edit: (inout [String: Tensor], inout [String: String]) -> Void) throws -> PromptCacheFile {
            var t = tensors, m = metadata
            edit(&t, &m)
            let file = PromptCacheFile(path: temporaryPath(), modelIdentity: loaded.identity)
            try Safetensors.save(t, metadata: m, to: file.path)
            return file
        }
        let model = loaded.model
        try assertRefused(model, try variant { _, m in m["layers"] = "1152921504606846976" }, "layers is not a count")
        try assertRefused(model, try variant { _, m in m["layers"] = "1" }, "1 layers, but the model has 2")
        try assertRefused(
            model, try variant { _, m in m["layer.1.tensors"] = "4611686018427387904" }, "layer.1.tensors")
        try assertRefused(model, try variant { _, m in m["layer.0.offset"] = "-3" }, "layer.0.offset")
        // The default cache type is float16: float32 keys, or keys and values, do not match it.
        try assertRefused(model, try variant { t, _ in t["layer.0.0"] = keys.asType(.float32) }, "layer 0 holds")
        try assertRefused(
            model,
            try variant { t, _ in
                t["layer.0.0"] = keys.asType(.float32)
                t["layer.0.1"] = t["layer.0.1"]?.asType(.float32)
            }, "cache type is f16")
        try assertRefused(model, try variant { _, m in m["layer.1.kv_cache_type"] = "f8" }, "unknown cache type")
        try assertRefused(
            model, try variant { t, _ in t["layer.1.1"] = concatenated([keys, keys], axis: 3) }, "layer 1 holds")
        try assertRefused(model, try variant { t, _ in t["layer.0.1"] = keys[0..., 0..., ..<1] }, "do not form a cache")
        try assertRefused(model, try variant { t, _ in t["layer.0.1"] = nil }, "layer.0.1")

        // Truncated: the safetensors reader refuses it.
        let truncated = PromptCacheFile(path: temporaryPath(), modelIdentity: loaded.identity)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: valid.path))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated.path))
        try assertRefused(model, truncated, "safetensors")
    }

    func testACacheOfAnotherModelUnderTheSameNameIsRefused() throws {
        // qwen3's fixture has qwen2's layer and head counts but a head size of 32, not 16.
        let qwen2 = try ModelLoader.load(Fixtures.fixture("qwen2"))
        let qwen3 = try ModelLoader.load(Fixtures.fixture("qwen3"))
        let file = PromptCacheFile(path: temporaryPath(), modelIdentity: "same name")
        _ = try PromptCache.generator(
            model: qwen3.model, prompt: [5, 17, 99], parameters: GenerateParameters(), file: file)
        try assertRefused(qwen2.model, file, "but the model's cache holds")
        // The model that wrote it still reuses it.
        let (_, use, _) = try PromptCache.generator(
            model: qwen3.model, prompt: [5, 17, 99, 3], parameters: GenerateParameters(), file: file)
        XCTAssertEqual(use, .reused(tokens: 2))
    }
}
