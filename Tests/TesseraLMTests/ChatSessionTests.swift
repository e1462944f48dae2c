// A chat keeps its caches between turns: the second turn prefills only what
// the first left out (the new message and the template around it).

import Tessera
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

final class ChatSessionTests: XCTestCase {
    /// A small random model over SmolLM2's tokenizer and chat template.
    private func session(maxTokens: Int = 6, context: Int = 2048, kvCacheType: KVCacheType = .f16) throws
        -> ChatSession
    {
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 49152,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": \(context), "tie_word_embeddings": true}
            """
        let model = try SyntheticModel.llama(config: config, bits: 4, groupSize: 32)
        let tokenizer = try Tokenizer(directory: TokenizerTests.directory("smollm2"))
        var parameters = GenerateParameters()
        parameters.sampling = .greedy
        parameters.maxTokens = maxTokens
        parameters.kvCacheType = kvCacheType
        return ChatSession(
            generator: TextGenerator(model: model, tokenizer: tokenizer), parameters: parameters, system: "Be brief.")
    }

    func testTheSecondTurnPrefillsOnlyTheNewMessage() async throws {
        var chat = try session()
        let firstPrompt = try chat.generator.promptTokens(
            messages: chat.messages + [ChatMessage(role: "user", content: "Hello there")])
        let first = try await chat.respond(to: "Hello there")
        XCTAssertEqual(first.stats.promptTokens, firstPrompt.count)
        XCTAssertEqual(chat.messages.map(\.role), ["system", "user", "assistant"])
        XCTAssertEqual(chat.cachedTokens.count, firstPrompt.count + first.stats.generatedTokens - 1)

        let secondPrompt = try chat.generator.promptTokens(
            messages: chat.messages + [ChatMessage(role: "user", content: "Tell me about the sea")])
        let held = chat.cachedTokens
        let second = try await chat.respond(to: "Tell me about the sea")
        // Computed: the prompt past what the caches held and it shares. That is
        // all of the first prompt (but its last token, "\n" after "assistant",
        // which re-tokenized may merge with the reply's first characters).
        let shared = zip(held, secondPrompt).prefix { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(shared, firstPrompt.count - 1)
        XCTAssertEqual(second.stats.promptTokens, secondPrompt.count - shared)
        let newMessage = chat.generator.tokenizer.encode("Tell me about the sea", addSpecialTokens: false).count
        XCTAssertGreaterThan(second.stats.promptTokens, newMessage)
        XCTAssertEqual(chat.messages.count, 5)

        // After /reset the next turn computes its whole prompt again.
        chat.reset()
        XCTAssertEqual(chat.messages.map(\.role), ["system"])
        let third = try await chat.respond(to: "Hello there")
        XCTAssertEqual(third.stats.promptTokens, firstPrompt.count)
        XCTAssertEqual(third.text, first.text)
    }

    func testAKeptCacheContinuesAsAFreshPrefillWould() async throws {
        var chat = try session(maxTokens: 4)
        _ = try await chat.respond(to: "Hi")
        let history = chat.messages
        let continued = try await chat.respond(to: "What is rain?")

        // The same conversation computed from nothing gives the same greedy reply.
        let prompt = try chat.generator.promptTokens(
            messages: history + [ChatMessage(role: "user", content: "What is rain?")])
        var tokens: [Int] = []
        for try await event in chat.generator.generate(prompt: prompt, parameters: chat.parameters) {
            if case .token(let t) = event { tokens.append(t) }
        }
        XCTAssertEqual(continued.stats.generatedTokens, tokens.count)
        XCTAssertEqual(continued.text, chat.generator.tokenizer.decode(tokens, skipSpecialTokens: true))
    }

    /// The caches kept between turns are of the session's cache type
    /// (float16 by default): the same caches, cut back where the re-tokenized
    /// reply differs and extended, never rebuilt in float32.
    func testTheKeptCachesKeepTheirTypeAcrossTurns() async throws {
        XCTAssertEqual(GenerateParameters().kvCacheType, .f16)
        for type in KVCacheType.allCases {
            var chat = try session(maxTokens: 5, kvCacheType: type)
            _ = try await chat.respond(to: "Hi")
            let first = try XCTUnwrap(chat.cache)
            for turn in ["What is rain?", "And snow?"] {
                let before = chat.cachedTokens.count
                _ = try await chat.respond(to: turn)
                let kept = try XCTUnwrap(chat.cache)
                XCTAssertTrue(zip(kept, first).allSatisfy { $0 === $1 }, "\(type): the same caches")
                XCTAssertGreaterThan(chat.cachedTokens.count, before)
                for c in kept {
                    XCTAssertEqual(c.halfPrecision, type == .f16)
                    XCTAssertEqual(c.state.map(\.dtype), [type.dtype, type.dtype], "\(type)")
                    XCTAssertEqual(c.offset, chat.cachedTokens.count)
                }
            }
        }
    }

    func testOldTurnsAreDroppedWhenTheContextFillsUp() async throws {
        var chat = try session(maxTokens: 8, context: 160)
        let message = "Tell me something about the weather by the sea today, please."
        var dropped = 0
        for _ in 0..<8 {
            let reply = try await chat.respond(to: message)
            dropped += reply.droppedMessages
            let prompt = try chat.generator.promptTokens(messages: Array(chat.messages.dropLast()))
            XCTAssertLessThanOrEqual(prompt.count + 8, 160)
            XCTAssertEqual(chat.messages.first?.role, "system")
        }
        XCTAssertGreaterThan(dropped, 0)
        XCTAssertEqual(dropped % 2, 0)
        XCTAssertLessThan(chat.messages.count, 17)
    }
}
