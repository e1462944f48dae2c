// Structured output: the JSON-schema automaton accepts valid and rejects invalid
// instances (jsonschema fixtures), prefixes, bounds, the token trie and completion budget.

import Foundation
import Tessera
@testable import TesseraLM
import XCTest

/// Constrained JSON decoding: the schema automaton against instances that
/// Python's jsonschema judged (Tests/Fixtures/structured/schemas.json, from
/// Tools/gen_json_schema_fixtures.py), the vocabulary trie against a brute
/// force, and SmolLM2 decoding under 20 random schemas, validated by jsonschema.
final class StructuredOutputTests: XCTestCase {
    static let fixtureURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/structured/schemas.json")
    static let validatorScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Tools/validate_json_schema.py").standardized.path

    struct Case {
        var name: String
        var schema: JSONValue
        var valid: [String]
        var invalid: [String]
    }

    static func cases() throws -> [Case] {
        let doc = try JSONValue(parsing: Array(try Data(contentsOf: fixtureURL)))
        return (doc["cases"]?.array ?? []).map {
            Case(
                name: $0["name"]?.string ?? "", schema: $0["schema"] ?? .null,
                valid: ($0["valid"]?.array ?? []).compactMap(\.string),
                invalid: ($0["invalid"]?.array ?? []).compactMap(\.string))
        }
    }

    static func accepts(_ grammar: JSONGrammar, _ text: String) -> Bool {
        var a = JSONAutomaton(grammar: grammar)
        return a.consume(Array(text.utf8)) && a.isComplete
    }

    func testAutomatonAcceptsTheValidInstancesAndRejectsTheInvalid() throws {
        let cases = try Self.cases()
        XCTAssertEqual(cases.count, 20)
        var valid = 0, invalid = 0
        for c in cases {
            let grammar = try JSONGrammar(schema: c.schema)
            for text in c.valid {
                XCTAssertTrue(Self.accepts(grammar, text), "\(c.name): should accept \(text)")
                valid += 1
            }
            for text in c.invalid {
                XCTAssertFalse(Self.accepts(grammar, text), "\(c.name): should reject \(text)")
                invalid += 1
            }
        }
        XCTAssertGreaterThan(valid, 60)
        XCTAssertGreaterThan(invalid, 300)
    }

    func testPrefixesOfValidTextStayAliveAndIncomplete() throws {
        let c = try XCTUnwrap(Self.cases().first)
        let grammar = try JSONGrammar(schema: c.schema)
        for text in c.valid {
            var a = JSONAutomaton(grammar: grammar)
            let bytes = Array(text.utf8)
            for (i, b) in bytes.enumerated() {
                XCTAssertTrue(a.consume([b]), "\(text) dies at byte \(i)")
                if i < bytes.count - 1 { XCTAssertFalse(a.isComplete, "\(text) complete after \(i + 1) bytes") }
            }
            XCTAssertTrue(a.isComplete)
            // A closed object admits nothing after it, not even whitespace.
            XCTAssertFalse(a.consume([0x20]))
        }
    }

    func testJSONObjectFormatAndLiteralsNumbersStrings() throws {
        let any = JSONGrammar.anyJSONObject
        for text in [
            "{}", "{\"a\":1}", "{\"a\":[1,2.5,-3e+2,true,false,null,\"x\"],\"b\":{\"c\":{}}}",
            "{\"é\":\"\\u00e9\\n\\\"\"}", " {\"k\" : \"v\" } "
        ] where !text.hasSuffix(" ") {
            XCTAssertTrue(Self.accepts(any, text), text)
        }
        for text in [
            "[]", "1", "\"s\"", "{\"a\":01}", "{\"a\":1.}", "{\"a\":tru}", "{a:1}", "{\"a\":1,}", "{\"a\":\"\u{01}\"}",
            "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{\"a\":-}", "{\"a\":1e}"
        ] {
            XCTAssertFalse(Self.accepts(any, text), text)
        }
        // Invalid UTF-8 inside a string is rejected byte by byte.
        var a = JSONAutomaton(grammar: any)
        XCTAssertTrue(a.consume(Array("{\"a\":\"".utf8)))
        XCTAssertFalse(a.consume([0xC0, 0x80]))
        var b = JSONAutomaton(grammar: any)
        XCTAssertTrue(b.consume(Array("{\"a\":\"".utf8) + [0xE2, 0x9C, 0x93] + Array("\"}".utf8)))
        XCTAssertTrue(b.isComplete)
        // Top-level numbers end where the text ends; enum prefixes (1 vs 12) both work.
        let g = try JSONGrammar(schema: ["enum": [1, 12, "a"]])
        XCTAssertTrue(Self.accepts(g, "1"))
        XCTAssertTrue(Self.accepts(g, "12"))
        XCTAssertTrue(Self.accepts(g, "\"a\""))
        XCTAssertFalse(Self.accepts(g, "2"))
        XCTAssertFalse(Self.accepts(g, "123"))
    }

    func testWhitespaceAndNumbersAreBounded() throws {
        let any = JSONGrammar.anyJSONObject
        XCTAssertTrue(Self.accepts(any, "{" + String(repeating: " ", count: 8) + "}"))
        XCTAssertFalse(Self.accepts(any, "{" + String(repeating: " ", count: 9) + "}"))
        XCTAssertTrue(Self.accepts(any, "{\"a\":" + String(repeating: "9", count: 15) + "}"))
        XCTAssertFalse(Self.accepts(any, "{\"a\":" + String(repeating: "9", count: 16) + "}"))
        // Nesting is bounded too.
        XCTAssertFalse(
            Self.accepts(any, "{\"a\":" + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}"))
    }

    func testUnsupportedKeywordsAreListedNotDropped() throws {
        let schema: JSONValue = [
            "type": "object",
            "properties": [
                "name": ["type": "string", "minLength": 2, "pattern": "^a"],
                "when": ["type": "string", "format": "date-time"],
                "ref": ["$ref": "#/$defs/x"]
            ],
            "$defs": ["x": ["type": "integer"]]
        ]
        XCTAssertThrowsError(try JSONGrammar(schema: schema)) { error in
            guard case StructuredOutputError.unsupportedKeywords(let list) = error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(
                Set(list),
                [
                    "#: $defs", "#/properties/name: minLength", "#/properties/name: pattern",
                    "#/properties/when: format", "#/properties/ref: $ref"
                ])
        }
        XCTAssertThrowsError(try JSONGrammar(schema: ["oneOf": [["type": "number"], ["type": "integer"]]])) { error in
            guard case StructuredOutputError.unsupportedKeywords(let list) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(list.count, 1)
        }
        XCTAssertThrowsError(try JSONGrammar(schema: ["type": "thing"]))
        XCTAssertThrowsError(try JSONGrammar(schema: false))
        XCTAssertThrowsError(try JSONGrammar(schema: ["type": "array", "minItems": 3, "maxItems": 1]))
        XCTAssertThrowsError(try ResponseFormat(openAI: ["type": "json_schema"]))
        XCTAssertEqual(try ResponseFormat(openAI: ["type": "json_object"]), .jsonObject)
        XCTAssertEqual(try ResponseFormat(openAI: ["type": "text"]), .text)
        // Deep schemas end with an error, not a stack overflow.
        var deep: JSONValue = ["type": "string"]
        for _ in 0..<100 { deep = ["type": "array", "items": deep] }
        XCTAssertThrowsError(try JSONGrammar(schema: deep))
    }

    /// The trie walk returns exactly the ids whose bytes the automaton
    /// accepts one by one, along a path through a small vocabulary.
    func testTrieWalkEqualsBruteForce() throws {
        let words = [
            "{", "}", "{\"", "\"", "\":", ":", ",", ",\"", " ", "  ", "\n", "[", "]", "a", "ab", "abc", "name", "na",
            "\"name", "\":\"", "1", "12", "0", ".", "5", "e", "-", "true", "tr", "ue", "null", "x\"", "\\", "\\n",
            "\"}",
            "é", "\u{2713}"
        ]
        var pieces: [[UInt8]?] = words.map { Array($0.utf8) }
        pieces.append(nil)  // a special token
        pieces.append([0xE2])  // a partial UTF-8 piece
        pieces.append([0x9C, 0x93])
        pieces.append(Array("ab".utf8))  // a duplicate
        let vocabulary = TokenVocabulary(pieces: pieces)
        let schema: JSONValue = [
            "type": "object",
            "properties": [
                "name": ["type": "string"], "n": ["type": ["integer", "null"]], "t": ["enum": [true, "abc"]]
            ],
            "required": ["name"], "additionalProperties": false
        ]
        let grammar = try JSONGrammar(schema: schema)
        for text in ["{\"name\":\"ab\\n\u{2713}x\",\"n\":12,\"t\":true}", "{\"n\":null,\"name\":\"\"}"] {
            var automaton = JSONAutomaton(grammar: grammar)
            for b in Array(text.utf8) {
                let trie = Set(vocabulary.allowedIDs(automaton))
                var brute = Set<Int>()
                for (id, p) in pieces.enumerated() {
                    guard let p, !p.isEmpty else { continue }
                    var copy = automaton
                    if copy.consume(p) { brute.insert(id) }
                }
                XCTAssertEqual(trie, brute, "after \(String(decoding: [b], as: UTF8.self)) in \(text)")
                XCTAssertTrue(automaton.consume([b]))
            }
            XCTAssertTrue(automaton.isComplete)
        }
    }

    /// The shortest completion the automaton computes equals a breadth-first
    /// search over bytes, at every prefix of valid instances.
    func testShortestCompletionEqualsSearch() throws {
        let cases = try Self.cases()
        var checked = 0
        for c in cases.prefix(6) {
            let grammar = try JSONGrammar(schema: c.schema)
            for text in c.valid.prefix(1) {
                let bytes = Array(text.utf8)
                for i in bytes.indices where i % 4 == 0 || i < 4 {
                    var automaton = JSONAutomaton(grammar: grammar)
                    XCTAssertTrue(automaton.consume(bytes.prefix(i)))
                    let computed = automaton.minCompletion(automaton.stacks)
                    let searched = Self.shortestCompletion(automaton, limit: computed + 1)
                    XCTAssertEqual(computed, searched, "\(c.name) after \(i) bytes of \(text)")
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 30)
    }

    /// Breadth-first over all bytes: the length of the shortest completion (nil past `limit`).
    static func shortestCompletion(_ automaton: JSONAutomaton, limit: Int) -> Int? {
        var frontier = [automaton.stacks]
        var seen = Set<[[JSONAutomaton.Frame]]>(frontier)
        for depth in 0...limit {
            if frontier.contains(where: { s in s.contains { $0.isEmpty } || Self.completes(automaton, s) }) {
                return depth
            }
            var next: [[[JSONAutomaton.Frame]]] = []
            for state in frontier {
                for b in 0...255 {
                    let n = automaton.step(state, UInt8(b))
                    if !n.isEmpty, seen.insert(n).inserted { next.append(n) }
                }
            }
            frontier = next
            if frontier.isEmpty || seen.count > 400_000 { return nil }
        }
        return nil
    }

    static func completes(_ automaton: JSONAutomaton, _ stacks: [[JSONAutomaton.Frame]]) -> Bool {
        var a = automaton
        a.setStacks(stacks)
        return a.isComplete
    }

    /// With maxTokens, random walks through the allowed tokens (a vocabulary
    /// of single bytes and longer pieces) always end with complete JSON.
    func testBudgetSteersToCompletion() throws {
        var words: [String] = (0x20..<0x7F).map { String(UnicodeScalar(UInt8($0))) }
        words += [
            "\n", "{\"", "\":", "\":\"", "[1,", "[[", "true", "null", "\u{2713}", "éé", "\",\"", "1234567", "        "
        ]
        var pieces: [[UInt8]?] = words.map { Array($0.utf8) }
        pieces.append(nil)
        let eos = pieces.count - 1
        let vocabulary = TokenVocabulary(pieces: pieces)
        var seed: UInt64 = 12345
        func random(_ n: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(n))
        }
        var walks = 0, unsteeredIncomplete = 0
        for c in try Self.cases() {
            let grammar = try JSONGrammar(schema: c.schema)
            let minimum = JSONAutomaton(grammar: grammar).minCompletion(JSONAutomaton(grammar: grammar).stacks)
            for (extra, steered) in [(0, true), (3, true), (17, true), (17, false)] {
                let maxTokens = minimum + extra
                let constraint = try XCTUnwrap(
                    JSONConstraint(
                        format: .jsonSchema(c.schema), vocabulary: vocabulary, endTokens: [eos],
                        maxTokens: steered ? maxTokens : nil))
                XCTAssertEqual(constraint.minimumTokens, minimum)
                var generated: [Int] = []
                var ended = false
                while generated.count < maxTokens {
                    let next = constraint.next(generated: generated)
                    guard case .allowed(let set) = next else { ended = true; break }
                    // Prefer opening things: the walk that would run past the budget unsteered.
                    let sorted = set.sorted()
                    let openers = sorted.filter {
                        [UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "\"")].contains(pieces[$0]?.first ?? 0)
                    }
                    let pick =
                        !openers.isEmpty && random(3) > 0
                        ? openers[random(openers.count)] : sorted[random(sorted.count)]
                    if pick == eos { ended = true; break }
                    generated.append(pick)
                }
                let text = generated.flatMap { pieces[$0] ?? [] }
                var a = JSONAutomaton(grammar: grammar)
                let complete = a.consume(text) && a.isComplete
                if steered {
                    XCTAssertTrue(
                        complete,
                        "\(c.name) in \(maxTokens) tokens (ended: \(ended)): \(String(decoding: text, as: UTF8.self))")
                    walks += 1
                } else if !complete {
                    unsteeredIncomplete += 1
                }
            }
        }
        XCTAssertEqual(walks, 60)
        // The same walks without the budget mostly run past it: the steering is what completes them.
        XCTAssertGreaterThan(unsteeredIncomplete, 5)
    }

    func testConstraintAllowsEndOnlyWhenCompleteThenFinishes() throws {
        let words = ["{", "}", "\"", "a", "\":", "1", "2", "<eos>"]
        var pieces: [[UInt8]?] = words.map { Array($0.utf8) }
        pieces[7] = nil
        let vocabulary = TokenVocabulary(pieces: pieces)
        let constraint = try XCTUnwrap(
            JSONConstraint(format: .jsonSchema(["type": "integer"]), vocabulary: vocabulary, endTokens: [7]))
        guard case .allowed(let first) = constraint.next(generated: []) else { return XCTFail() }
        XCTAssertEqual(first, [5, 6])
        guard case .allowed(let second) = constraint.next(generated: [5]) else { return XCTFail() }
        XCTAssertEqual(second, [5, 6, 7])  // "1" is complete: EOS allowed, or more digits
        let object = try XCTUnwrap(JSONConstraint(format: .jsonObject, vocabulary: vocabulary, endTokens: [7]))
        guard case .allowed(let o) = object.next(generated: [0]) else { return XCTFail() }
        XCTAssertEqual(o, [1, 2, 4])  // "}", or a key: "\"" and "\":" (a key may start with ':')
        guard case .finished = object.next(generated: [0, 1]) else { return XCTFail("{} is complete") }
        // A token outside the constraint ends it.
        let other = try XCTUnwrap(JSONConstraint(format: .jsonObject, vocabulary: vocabulary, endTokens: [7]))
        guard case .finished = other.next(generated: [3]) else { return XCTFail() }
        XCTAssertNil(try JSONConstraint(format: .text, vocabulary: vocabulary, endTokens: [7]))
        var logits: [Float] = [1, 2, 3]
        TokenConstraint.allowed([1]).mask(&logits)
        XCTAssertEqual(logits, [-.infinity, 2, -.infinity])
    }

    /// The weather tool of the chat-template fixtures (an OpenAI tool object).
    static func weatherTool() throws -> JSONValue {
        try XCTUnwrap(ToolCallTests.fixture("qwen2.5", "tool-call")["tools"]?.array?.first)
    }

    func testForcedToolCallGrammarPerFamily() throws {
        let tool = try Self.weatherTool()
        let other: JSONValue = [
            "type": "function", "function": ["name": "ping", "parameters": ["type": "object", "properties": [:]]]
        ]
        let cases: [(ToolCallFormat, String, String)] = [
            (.hermes, "<tool_call>\n", "\n</tool_call>"), (.llama3, "", ""), (.mistral, "[TOOL_CALLS][", "]")
        ]
        for (format, open, close) in cases {
            let key = format == .llama3 ? "parameters" : "arguments"
            let grammar = try JSONGrammar(toolCallOf: [tool, other], only: nil, format: format)
            let good =
                open
                + "{\"name\":\"get_weather\",\"\(key)\":{\"city\":\"Paris\",\"unit\":\"celsius\",\"extra\":{\"x\":true}}}"
                + close
            XCTAssertTrue(Self.accepts(grammar, good), good)
            let parsed = ToolCallStreamParser.parse(good, format: format)
            XCTAssertEqual(parsed.calls.map(\.name), ["get_weather"])
            XCTAssertEqual(parsed.calls.first?.arguments["city"], "Paris")
            XCTAssertTrue(Self.accepts(grammar, open + "{\"name\":\"ping\",\"\(key)\":{}}" + close))
            var bad = [
                open + "{\"name\":\"get_weather\",\"\(key)\":{\"unit\":\"celsius\"}}" + close,  // city is required
                open + "{\"name\":\"get_weather\",\"\(key)\":{\"city\":\"P\",\"unit\":\"kelvin\"}}" + close,
                open + "{\"name\":\"pong\",\"\(key)\":{}}" + close,
                open + "{\"name\":\"ping\",\"other\":{}}" + close
            ]
            if !close.isEmpty { bad.append(open + "{\"name\":\"ping\",\"\(key)\":{}}") }  // the closing marker is missing
            for text in bad { XCTAssertFalse(Self.accepts(grammar, text), text) }
            let only = try JSONGrammar(toolCallOf: [tool, other], only: "ping", format: format)
            XCTAssertFalse(Self.accepts(only, good))
        }
        XCTAssertThrowsError(try JSONGrammar(toolCallOf: [tool], only: "nope", format: .hermes))
    }

    // MARK: - SmolLM2

    /// The model file, or a skip (a failure when TESSERA_REQUIRE_MODEL is set).
    static func modelPath() throws -> String { try SmolLM2ReferenceTests.modelPath() }

    /// Byte strings of SmolLM2's vocabulary decode as the tokenizer does.
    func testTokenBytesMatchTheDecoder() throws {
        let tokenizer = try TextGenerator(loaded: try ModelLoader.load(try Self.modelPath())).tokenizer
        let all = tokenizer.allTokenBytes()
        XCTAssertEqual(all.count, tokenizer.vocabularySize)
        let text = "{\"name\": \"Zoë ✓ 你好\", \"n\": [1, 2.5e3]}\n"
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        XCTAssertEqual(String(decoding: ids.flatMap { all[$0] ?? [] }, as: UTF8.self), text)
        XCTAssertNil(all[try XCTUnwrap(tokenizer.eosTokenID)])
    }

    /// Decodes under `schema` with the model: the filter's mask before each sample.
    static func decode(
        _ generator: TextGenerator, vocabulary: TokenVocabulary, schema: JSONValue, sampling: SamplingParameters,
        maxTokens: Int
    ) throws -> (text: String, finished: Bool, stepSeconds: [Double]) {
        let tokenizer = generator.tokenizer
        let end = Set([tokenizer.eosTokenID, tokenizer.tokenID("<|im_end|>")].compactMap { $0 })
        let constraint = try XCTUnwrap(
            JSONConstraint(format: .jsonSchema(schema), vocabulary: vocabulary, endTokens: end, maxTokens: maxTokens))
        XCTAssertLessThanOrEqual(constraint.minimumTokens, maxTokens)
        return try decode(
            generator, constraint: constraint, end: end,
            question: "Give one example of JSON for this schema: \(schema.compactText)", sampling: sampling,
            maxTokens: maxTokens)
    }

    static func decode(
        _ generator: TextGenerator, constraint: JSONConstraint, end: Set<Int>, question: String,
        sampling: SamplingParameters,
        maxTokens: Int
    ) throws -> (text: String, finished: Bool, stepSeconds: [Double]) {
        let tokenizer = generator.tokenizer
        let prompt = try generator.promptTokens(messages: [
            ChatMessage(role: "system", content: "Reply with JSON only."), ChatMessage(role: "user", content: question)
        ])
        let model = generator.model
        let cache = model.makeCache()
        var logits = model(Tensor(prompt.map { Int32($0) }, shape: [1, prompt.count]), cache: cache)[0, -1]
        var sampler = Sampler(sampling)
        var generated: [Int] = [], history = prompt, times: [Double] = []
        for _ in 0..<maxTokens {
            let t0 = Date()
            let c = constraint.next(generated: generated)
            times.append(Date().timeIntervalSince(t0))
            if case .finished = c { return (tokenizer.decode(generated), true, times) }
            var z = logits.toArray(Float.self)
            c.mask(&z)
            let id = sampler.sample(z, history: history)
            if end.contains(id) { return (tokenizer.decode(generated), true, times) }
            generated.append(id)
            history.append(id)
            logits = model(Tensor([Int32(id)], shape: [1, 1]), cache: cache)[0, -1]
        }
        return (tokenizer.decode(generated), false, times)
    }

    /// Validates outputs with Python's jsonschema through the committed script;
    /// skips without python3/jsonschema unless TESSERA_REQUIRE_PYTHON=1.
    static func validateWithPython(_ pairs: [(schema: JSONValue, output: String)]) throws -> [String] {
        let environment = ProcessInfo.processInfo.environment
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-structured-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("outputs.json")
        let doc = JSONValue.array(pairs.map { ["schema": $0.schema, "output": .string($0.output)] })
        try Data(doc.compactText.utf8).write(to: input)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", validatorScript, input.path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        // 3: no jsonschema; 127: no python3.
        if [3, 127].contains(process.terminationStatus), environment["TESSERA_REQUIRE_PYTHON"] != "1" {
            throw XCTSkip("needs python3 with jsonschema (pip install jsonschema to run it)")
        }
        XCTAssertEqual(process.terminationStatus, 0, text)
        return text.split(separator: "\n").map(String.init)
    }

    /// Three schemas, greedy and seeded sampling, 40 tokens at most (debug
    /// builds decode slowly; the 20-schema run is the release test below).
    func testSmolLM2OutputsParseAndValidate() throws {
        try runSchemas(count: 3, maxTokens: 40)
    }

    /// All 20 fixture schemas, greedy and seeded: every output parses and
    /// validates. In release (CI): swift test -c release --filter StructuredOutputTests
    func testSmolLM2OutputsForTwentySchemasParseAndValidate() throws {
        #if DEBUG
            if ProcessInfo.processInfo.environment["TESSERA_SLOW_TESTS"] == nil {
                throw XCTSkip("runs in release builds (or set TESSERA_SLOW_TESTS=1)")
            }
        #endif
        try runSchemas(count: 20, maxTokens: 160)
    }

    /// A forced call of the weather tool (tool_choice "required") in the
    /// Hermes syntax: the parser reads it back and jsonschema validates its
    /// arguments against the tool's parameters.
    func testSmolLM2ForcedToolCallParsesAndValidates() throws {
        _ = try Self.validateWithPython([])  // skips before decoding when jsonschema is missing
        let generator = try TextGenerator(loaded: try ModelLoader.load(try Self.modelPath()))
        let tokenizer = generator.tokenizer
        let vocabulary = TokenVocabulary(tokenizer: tokenizer)
        let tool = try Self.weatherTool()
        let end = Set([tokenizer.eosTokenID, tokenizer.tokenID("<|im_end|>")].compactMap { $0 })
        // Compact (one whitespace byte in a row) so the call fits in few tokens.
        let constraint = try JSONConstraint(
            toolCallOf: [tool], format: .hermes, vocabulary: vocabulary, endTokens: end, maxTokens: 80, maxWhitespace: 1
        )
        let r = try Self.decode(
            generator, constraint: constraint, end: end, question: "What is the weather in Paris? Call get_weather.",
            sampling: .greedy, maxTokens: 80)
        XCTAssertTrue(r.finished, r.text)
        let parsed = ToolCallStreamParser.parse(r.text, format: .hermes)
        XCTAssertEqual(parsed.calls.map(\.name), ["get_weather"], r.text)
        XCTAssertEqual(parsed.text, "")
        let parameters = try XCTUnwrap(tool["function"]?["parameters"])
        let lines = try Self.validateWithPython([(parameters, parsed.calls.first?.argumentsJSON ?? "")])
        XCTAssertEqual(lines.filter { $0.hasPrefix("ok") }.count, 1, lines.joined(separator: "\n"))
    }

    private func runSchemas(count: Int, maxTokens: Int) throws {
        _ = try Self.validateWithPython([])  // skips before decoding when jsonschema is missing
        let generator = try TextGenerator(loaded: try ModelLoader.load(try Self.modelPath()))
        let vocabulary = TokenVocabulary(tokenizer: generator.tokenizer)
        let cases = Array(try Self.cases().prefix(count))
        var seeded = SamplingParameters()
        seeded.temperature = 0.8
        seeded.seed = 7
        var pairs: [(schema: JSONValue, output: String)] = []
        var steps: [Double] = []
        for c in cases {
            for sampling in [SamplingParameters.greedy, seeded] {
                let r = try Self.decode(
                    generator, vocabulary: vocabulary, schema: c.schema, sampling: sampling, maxTokens: maxTokens)
                XCTAssertTrue(r.finished, "\(c.name): not complete in \(maxTokens) tokens: \(r.text)")
                XCTAssertTrue(Self.accepts(try JSONGrammar(schema: c.schema), r.text), "\(c.name): \(r.text)")
                pairs.append((c.schema, r.text))
                steps += r.stepSeconds
            }
        }
        let lines = try Self.validateWithPython(pairs)
        XCTAssertEqual(lines.filter { $0.hasPrefix("ok") }.count, pairs.count, lines.joined(separator: "\n"))
        steps.sort()
        print(
            "structured output: \(lines.filter { $0.hasPrefix("ok") }.count) of \(pairs.count) outputs valid; filter step median \(steps[steps.count / 2] * 1000) ms, max \((steps.last ?? 0) * 1000) ms"
        )
    }
}
