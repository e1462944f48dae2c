// SmolLM2's tokenizer and chat template reproduce the reference text and ids;
// bad input gives typed errors; the GGUF tokenizer written as files tokenizes the same.

import Foundation
import Tessera
import TesseraLM
import XCTest

/// The default model's tokenizer and chat template (from its GGUF metadata)
/// against the reference prompts and texts.
final class SmolLM2TextTests: XCTestCase {
    func testTokenizerAndChatTemplateReproduceTheReference() throws {
        let loaded = try ModelLoader.load(try SmolLM2ReferenceTests.modelPath())
        let generator = try TextGenerator(loaded: loaded)
        let tokenizer = generator.tokenizer
        let reference =
            try JSONSerialization.jsonObject(with: Data(contentsOf: SmolLM2ReferenceTests.referenceURL))
            as! [String: Any]
        let prompts = reference["prompts"] as! [String: [String: Any]]
        for (name, prompt) in prompts {
            let text = prompt["prompt"] as! String
            XCTAssertEqual(
                tokenizer.encode(text, addSpecialTokens: false), prompt["prompt_ids"] as! [Int], "prompt \(name)")
            XCTAssertEqual(
                tokenizer.decode(prompt["greedy_ids_48"] as! [Int]), prompt["greedy_text"] as! String,
                "prompt \(name) text")
        }
        // Prompt c is SmolLM2's template applied to one user message (default system prompt).
        let c = prompts["c"]!
        let question = "What is the tallest mountain in the world?"
        XCTAssertEqual(
            try generator.promptTokens(messages: [ChatMessage(role: "user", content: question)]),
            c["prompt_ids"] as! [Int])
        XCTAssertEqual(
            try tokenizer.applyChatTemplate(messages: [
                .object(JSONObject([("role", "user"), ("content", .string(question))]))
            ]),
            c["prompt"] as! String)
    }

    func testBadInputGivesTypedErrors() throws {
        let loaded = try ModelLoader.load(try SmolLM2ReferenceTests.modelPath())
        var parameters = GenerateParameters()
        parameters.maxTokens = 1
        XCTAssertThrowsError(try TokenGenerator(model: loaded.model, prompt: [], parameters: parameters))
        XCTAssertThrowsError(try TokenGenerator(model: loaded.model, prompt: [1, 999_999], parameters: parameters))
        XCTAssertThrowsError(
            try TokenGenerator(model: loaded.model, prompt: [Int](repeating: 1, count: 9000), parameters: parameters)
        ) {
            XCTAssertEqual($0 as? ModelError, .promptTooLong(tokens: 9000, context: 8192))
        }
        XCTAssertThrowsError(try ModelLoader.load("/nonexistent/model.gguf")) { XCTAssertTrue($0 is ModelError) }
        // A GGUF that is not a model (the IO fixture) names what is missing.
        let notAModel = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/io/sample.gguf").path
        XCTAssertThrowsError(try ModelLoader.load(notAModel)) { XCTAssertTrue($0 is ModelError, "\($0)") }
    }

    /// A varied corpus (prose, code, whitespace runs, emoji, CJK, accents,
    /// numbers, special tokens in text): the tokenizer fixtures' texts.
    static func corpus() throws -> [String] {
        try TokenizerTests.cases("smollm2").map(\.text)
    }

    /// The GGUF's tokenizer metadata written as tokenizer.json and
    /// tokenizer_config.json (as `tessera convert` does) loads from a folder as
    /// the same tokenizer: ids, decoding, special tokens, chat template.
    func testGGUFTokenizerWrittenAsFilesTokenizesTheSame() throws {
        let file = try GGUFFile.load(try SmolLM2ReferenceTests.modelPath())
        let gguf = try Tokenizer(gguf: file)
        let (json, config) = try TokenizerMetadata(gguf: file).huggingFaceFiles(modelMaxLength: 8192)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-tok-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try Data(json.compactText.utf8).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        try Data(config.compactText.utf8).write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        let folder = try Tokenizer(directory: dir)
        for text in try Self.corpus() {
            let ids = gguf.encode(text)
            XCTAssertEqual(folder.encode(text), ids, text)
            XCTAssertEqual(
                folder.encode(text, addSpecialTokens: false, splitSpecialTokens: false),
                gguf.encode(text, addSpecialTokens: false, splitSpecialTokens: false), text)
            XCTAssertEqual(folder.decode(ids), gguf.decode(ids), text)
        }
        XCTAssertEqual(folder.bosTokenID, gguf.bosTokenID)
        XCTAssertEqual(folder.eosTokenID, gguf.eosTokenID)
        XCTAssertEqual(folder.addedTokens, gguf.addedTokens)
        XCTAssertNotNil(folder.chatTemplate)
        XCTAssertEqual(folder.chatTemplate, gguf.chatTemplate)
    }
}
