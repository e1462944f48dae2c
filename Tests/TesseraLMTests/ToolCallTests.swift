// Tool-call parsing for Qwen/Hermes, Mistral and Llama 3 as their templates write
// them; adversarial text stays text; streaming holds back only possible markers.

import Foundation
import Tessera
@testable import TesseraLM
import XCTest

/// Tool-call parsing per family. The model-side text comes from the real
/// templates rendered by Jinja2 (Tests/Fixtures/chat_templates/expected.json:
/// an assistant turn with tool calls is written exactly as the model is
/// trained to write it), so parsing it must give back the calls that were
/// rendered; plus streaming in every split and adversarial input.
final class ToolCallTests: XCTestCase {
    static func fixtureCases() throws -> [JSONValue] {
        let url = ChatTemplateTests.directory.appendingPathComponent("expected.json")
        return try JSONValue(parsing: Array(try Data(contentsOf: url)))["cases"]?.array ?? []
    }

    static func fixture(_ template: String, _ conversation: String) throws -> JSONValue {
        try XCTUnwrap(
            fixtureCases().first {
                $0["template"]?.string == template && $0["conversation"]?.string == conversation
                    && $0["tools"]?.array != nil
                    && $0["add_generation_prompt"]?.bool == false && $0["extra"]?.object?.isEmpty == true
            })
    }

    /// The text between the last `start` before `stop` and that `stop`.
    static func segment(_ text: String, after start: String, before stop: String, from anchor: String) throws -> String
    {
        let a = try XCTUnwrap(text.range(of: anchor))
        let s = try XCTUnwrap(text.range(of: start, options: .backwards, range: text.startIndex..<a.lowerBound))
        let e = try XCTUnwrap(text.range(of: stop, range: s.upperBound..<text.endIndex))
        return String(text[s.upperBound..<e.lowerBound])
    }

    static func counterIDs() -> @Sendable () -> String {
        let counter = Counter()
        return { counter.next() }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func next() -> String {
            lock.withLock {
                n += 1; return "id\(n)"
            }
        }
    }

    /// The calls of the assistant message with tool_calls in a fixture conversation.
    static func renderedCalls(_ fixture: JSONValue) -> [(name: String, arguments: JSONValue)] {
        let messages = fixture["messages"]?.array ?? []
        let calls = messages.first { $0["tool_calls"] != nil }?["tool_calls"]?.array ?? []
        return calls.map { ($0["function"]?["name"]?.string ?? "", $0["function"]?["arguments"] ?? .null) }
    }

    /// Parsing in one piece, and streamed in pieces of 1...7 bytes, gives the same result.
    static func parseAllWays(_ text: String, _ format: ToolCallFormat) -> (text: String, calls: [ToolCall]) {
        let whole = ToolCallStreamParser.parse(text, format: format, makeID: counterIDs())
        let chars = Array(text)
        for size in 1...7 {
            var parser = ToolCallStreamParser(format: format, makeID: counterIDs())
            var out = "", calls: [ToolCall] = []
            var events: [ToolCallEvent] = []
            for start in stride(from: 0, to: chars.count, by: size) {
                events += parser.feed(String(chars[start..<min(chars.count, start + size)]))
            }
            events += parser.finish()
            for e in events {
                switch e {
                case .text(let t): out += t
                case .toolCall(let c): calls.append(c)
                }
            }
            XCTAssertEqual(out, whole.text, "streamed in pieces of \(size): \(text)")
            XCTAssertEqual(calls, whole.calls, "streamed in pieces of \(size): \(text)")
        }
        return whole
    }

    func assertCalls(
        _ got: [ToolCall], _ expected: [(name: String, arguments: JSONValue)], file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertEqual(got.map(\.name), expected.map(\.name), file: file, line: line)
        XCTAssertEqual(got.map(\.arguments), expected.map(\.arguments), file: file, line: line)
    }

    func testQwenAndHermesCallsAsTheTemplatesWriteThem() throws {
        for template in ["qwen2.5", "qwen3", "hermes-3-tool-use"] {
            let f = try Self.fixture(template, "parallel-tool-calls")
            let output = try XCTUnwrap(f["output"]?.string)
            let reply = try Self.segment(
                output, after: "<|im_start|>assistant\n", before: "<|im_end|>", from: "<tool_response>")
            XCTAssertEqual(ToolCallFormat.detect(chatTemplate: try ChatTemplateTests.source(template)), .hermes)
            let parsed = Self.parseAllWays(reply, .hermes)
            assertCalls(parsed.calls, Self.renderedCalls(f))
            XCTAssertEqual(parsed.calls.map(\.id), ["id1", "id2"])
            let expectedText = template == "hermes-3-tool-use" ? "" : "Checking both."
            XCTAssertEqual(parsed.text.trimmingCharacters(in: .whitespacesAndNewlines), expectedText, template)
        }
    }

    func testMistralCallsAsTheTemplateWritesThem() throws {
        let f = try Self.fixture("mistral-nemo", "parallel-tool-calls")
        let output = try XCTUnwrap(f["output"]?.string)
        let reply = try Self.segment(output, after: "[/INST]", before: "</s>", from: "[TOOL_RESULTS]")
        XCTAssertTrue(reply.hasPrefix("[TOOL_CALLS]"))
        XCTAssertEqual(ToolCallFormat.detect(chatTemplate: try ChatTemplateTests.source("mistral-nemo")), .mistral)
        let parsed = Self.parseAllWays(reply, .mistral)
        assertCalls(parsed.calls, Self.renderedCalls(f))
        XCTAssertEqual(parsed.calls.map(\.id), ["call00001", "call00002"])  // the ids the model wrote
        XCTAssertEqual(parsed.text, "")
    }

    func testLlama3CallsAsTheTemplateWritesThem() throws {
        for template in ["llama-3.1", "llama-3.2"] {
            let f = try Self.fixture(template, "tool-call")
            let output = try XCTUnwrap(f["output"]?.string)
            let reply = try Self.segment(
                output, after: "<|start_header_id|>assistant<|end_header_id|>\n\n", before: "<|eot_id|>",
                from: "ipython<|end_header_id|>")
            XCTAssertEqual(
                ToolCallFormat.detect(chatTemplate: try ChatTemplateTests.source(template)), .llama3, template)
            let parsed = Self.parseAllWays(reply, .llama3)
            assertCalls(parsed.calls, Self.renderedCalls(f))
            XCTAssertEqual(parsed.text, "")
            // After <|python_tag|>, and several separated by ";".
            let tagged = Self.parseAllWays("<|python_tag|>" + reply + "; " + reply, .llama3)
            XCTAssertEqual(tagged.calls.count, 2)
            XCTAssertEqual(tagged.text, "")
        }
        XCTAssertNil(ToolCallFormat.detect(chatTemplate: try ChatTemplateTests.source("smollm2")))
        XCTAssertNil(ToolCallFormat.detect(chatTemplate: try ChatTemplateTests.source("gemma-2")))
        XCTAssertEqual(ToolCallFormat.detect(chatTemplate: nil, modelType: "qwen2"), .hermes)
        XCTAssertEqual(ToolCallFormat.detect(chatTemplate: "{{ messages }}", modelType: "llama"), .llama3)
    }

    func testAdversarialInputStaysText() {
        let cases: [(String, ToolCallFormat, Int, String)] = [
            // Unterminated: the call never closes.
            (
                "Sure <tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1}", .hermes, 0,
                "Sure <tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1}"
            ),
            // Invalid JSON inside the markers.
            ("<tool_call>{name: f}</tool_call> ok", .hermes, 0, "<tool_call>{name: f}</tool_call> ok"),
            // Valid JSON but no name.
            ("<tool_call>{\"arguments\": {}}</tool_call>", .hermes, 0, "<tool_call>{\"arguments\": {}}</tool_call>"),
            // Arguments that are not an object.
            (
                "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>", .hermes, 0,
                "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>"
            ),
            // A marker-like prefix that is not a marker.
            ("a <tool_cal> b <tool", .hermes, 0, "a <tool_cal> b <tool"),
            // Braces and the closing tag inside strings.
            (
                "<tool_call>{\"name\": \"f\", \"arguments\": {\"s\": \"}{ </tool_call> \\\" ]\"}}</tool_call>tail",
                .hermes, 1, "tail"
            ),
            // Arguments given as a JSON string.
            ("<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 2}\"}</tool_call>", .hermes, 1, ""),
            // Missing closing tag at the very end: the complete JSON is accepted.
            ("<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n", .hermes, 1, ""),
            // Something else after the JSON instead of the closing tag.
            (
                "<tool_call>{\"name\": \"f\", \"arguments\": {}} oops", .hermes, 0,
                "<tool_call>{\"name\": \"f\", \"arguments\": {}} oops"
            ),
            // Llama 3: a JSON reply that is not a call, and prose.
            ("{\"answer\": 42}", .llama3, 0, "{\"answer\": 42}"),
            (
                "The JSON {\"name\": \"f\", \"parameters\": {}} is mid-text.", .llama3, 0,
                "The JSON {\"name\": \"f\", \"parameters\": {}} is mid-text."
            ),
            ("{\"name\": \"f\", \"parameters\": {\"q\": \"{\"}} and then text", .llama3, 1, " and then text"),
            (
                "<|python_tag|>{\"name\": \"f\", \"parameters\": ", .llama3, 0,
                "<|python_tag|>{\"name\": \"f\", \"parameters\": "
            ),
            // Mistral: broken array, and an object instead of a list.
            (
                "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}}, {\"name\": 3}]", .mistral, 0,
                "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}}, {\"name\": 3}]"
            ),
            ("[TOOL_CALLS]{\"name\": \"f\", \"arguments\": {\"k\": [1, {\"z\": null}]}}", .mistral, 1, ""),
            ("[TOOL_CALLS] not json", .mistral, 0, "[TOOL_CALLS] not json"),
            ("Plain ✓ text, ünïcode [TOOL", .mistral, 0, "Plain ✓ text, ünïcode [TOOL")
        ]
        for (input, format, count, text) in cases {
            let parsed = Self.parseAllWays(input, format)
            XCTAssertEqual(parsed.calls.count, count, input)
            XCTAssertEqual(parsed.text, text, input)
        }
        let nested = ToolCallStreamParser.parse(
            "<tool_call>{\"name\": \"f\", \"arguments\": {\"s\": \"}{ </tool_call> \\\" ]\"}}</tool_call>",
            format: .hermes)
        XCTAssertEqual(nested.calls.first?.arguments, ["s": "}{ </tool_call> \" ]"])
    }

    func testStreamingHoldsBackOnlyPossibleMarkers() {
        var parser = ToolCallStreamParser(format: .hermes, makeID: Self.counterIDs())
        XCTAssertEqual(parser.feed("Hello <to"), [.text("Hello ")])
        XCTAssertEqual(parser.feed("ol"), [])
        XCTAssertEqual(parser.feed("bar>"), [.text("<toolbar>")])
        XCTAssertEqual(parser.feed(" <tool_call>{\"name\": \"f\","), [.text(" ")])
        XCTAssertEqual(parser.feed(" \"arguments\": {}}\n</tool_"), [])
        XCTAssertEqual(
            parser.feed("call>Done"), [.toolCall(ToolCall(id: "id1", name: "f", argumentsJSON: "{}")), .text("Done")])
        XCTAssertEqual(parser.finish(), [])
        // Llama 3 prose streams at once; a leading "{" waits for the end.
        var llama = ToolCallStreamParser(format: .llama3)
        XCTAssertEqual(llama.feed("It is "), [.text("It is ")])
        var bare = ToolCallStreamParser(format: .llama3)
        XCTAssertEqual(bare.feed("  {\"na"), [])
        XCTAssertEqual(bare.finish(), [.text("  {\"na")])
    }

    func testWireShapesAndTemplateMessages() throws {
        let call = ToolCall(id: "call_1", name: "get_weather", argumentsJSON: "{\"city\":\"Paris\"}")
        XCTAssertEqual(call.openAIJSON["function"]?["arguments"]?.string, "{\"city\":\"Paris\"}")
        XCTAssertEqual(call.openAIJSON["type"]?.string, "function")
        XCTAssertEqual(call.anthropicJSON["input"], ["city": "Paris"])
        XCTAssertEqual(call.anthropicJSON["type"]?.string, "tool_use")
        XCTAssertTrue(ToolCall.randomID().hasPrefix("call_"))
        XCTAssertNotEqual(ToolCall.randomID(), ToolCall.randomID())

        // OpenAI clients send arguments as a JSON string; after messagesForTemplate
        // the template renders exactly what Jinja2 renders for the object.
        for template in ["qwen2.5", "mistral-nemo", "hermes-3-tool-use"] {
            let f = try Self.fixture(template, "parallel-tool-calls")
            let messages = try XCTUnwrap(f["messages"]?.array)
            let asOpenAI: [JSONValue] = messages.map { m in
                guard var o = m.object, let calls = o["tool_calls"]?.array else { return m }
                o["tool_calls"] = .array(
                    calls.map { c in
                        guard var co = c.object, var fn = co["function"]?.object, let args = fn["arguments"] else {
                            return c
                        }
                        fn["arguments"] = .string(args.compactText)
                        co["function"] = .object(fn)
                        return .object(co)
                    })
                return .object(o)
            }
            XCTAssertNotEqual(asOpenAI, messages)
            var special: [String: String] = [:]
            for (k, v) in f["special_tokens"]?.object ?? JSONObject() { special[k] = v.string }
            let rendered = try ChatTemplate(try ChatTemplateTests.source(template)).apply(
                messages: ToolCall.messagesForTemplate(asOpenAI), tools: f["tools"]?.array, addGenerationPrompt: false,
                specialTokens: special)
            XCTAssertEqual(rendered, f["output"]?.string, template)
        }
    }
}
