// Generation's bad input: prompts past the context, bad token ids and empty prompts
// are typed errors; generation stops at the context.

import Foundation
import Tessera
@testable import TesseraLM
import XCTest

/// The "bad input" list on the tiny fixtures (no real model needed):
/// prompts longer than the context, and generation that reaches it.
/// (Unknown model types, missing / mis-shaped tensors and corrupt files:
/// ArchitectureTests and GGUFArchitectureTests.)
final class BadInputTests: XCTestCase {
    typealias Fixtures = ArchitectureTests

    func testPromptLongerThanTheContextIsATypedError() throws {
        let model = try ModelLoader.load(Fixtures.fixture("qwen2")).model
        XCTAssertEqual(model.contextLength, 256)
        var parameters = GenerateParameters()
        parameters.maxTokens = 1
        for length in [256, 300] {
            XCTAssertThrowsError(
                try TokenGenerator(model: model, prompt: [Int](repeating: 5, count: length), parameters: parameters)
            ) { XCTAssertEqual($0 as? ModelError, .promptTooLong(tokens: length, context: 256)) }
        }
        // With a cache already holding 200 positions, 60 more do not fit.
        let cache = model.makeCache()
        _ = try TokenGenerator(
            model: model, prompt: [Int](repeating: 5, count: 200), parameters: parameters, cache: cache)
        XCTAssertThrowsError(
            try TokenGenerator(
                model: model, prompt: [Int](repeating: 5, count: 60), parameters: parameters, cache: cache)
        ) { XCTAssertEqual($0 as? ModelError, .promptTooLong(tokens: 260, context: 256)) }
    }

    func testGenerationStopsAtTheContext() throws {
        let model = try ModelLoader.load(Fixtures.fixture("qwen2")).model
        var parameters = GenerateParameters()
        parameters.sampling = .greedy
        parameters.maxTokens = 50
        var generator = try TokenGenerator(
            model: model, prompt: [Int](repeating: 5, count: 250), parameters: parameters)
        var produced = 0
        while try generator.next() != nil { produced += 1 }
        XCTAssertEqual(produced, 6, "250 prompt tokens + 6 generated fill the 256 positions")
    }

    func testBadTokensAndEmptyPromptsAreTypedErrors() throws {
        let model = try ModelLoader.load(Fixtures.fixture("qwen2")).model
        let parameters = GenerateParameters()
        XCTAssertThrowsError(try TokenGenerator(model: model, prompt: [], parameters: parameters)) {
            XCTAssertTrue($0 is ModelError)
        }
        for bad in [-1, 128] {
            XCTAssertThrowsError(try TokenGenerator(model: model, prompt: [5, bad], parameters: parameters)) {
                XCTAssertTrue($0 is ModelError)
            }
        }
    }
}
