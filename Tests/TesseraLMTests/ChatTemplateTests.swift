// The Jinja chat-template engine against jinja2's renderings (committed fixtures),
// typed errors with positions, hostile templates, concurrent renders.

import Foundation
import XCTest

@testable import TesseraLM
import Tessera

/// Chat templates against Python Jinja2 as transformers configures it
/// (Tools/gen_chat_template_fixtures.py): SmolLM2, Llama 3.1/3.2, Qwen2.5,
/// Qwen3, Mistral Nemo, Phi-3.5, Gemma 2, Hermes 3 and a feature template, over
/// conversations with and without system prompts, multi-turn, tool calls,
/// generation prompts, and the templates' own raise_exception errors.
final class ChatTemplateTests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/chat_templates").standardizedFileURL

    static func source(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name + ".jinja"), encoding: .utf8)
    }

    func testTemplatesMatchJinja2() throws {
        let fixture = try JSONValue(parsing: Data(contentsOf: Self.directory.appendingPathComponent("expected.json")))
        let now = Date(timeIntervalSince1970: fixture["now"]!.double!)
        var templates: [String: ChatTemplate] = [:]
        var rendered = 0, errors = 0
        for c in fixture["cases"]!.array! {
            let name = c["template"]!.string!
            if templates[name] == nil { templates[name] = try ChatTemplate(try Self.source(name)) }
            let label =
                "\(name) / \(c["conversation"]!.string!) / tools: \(!(c["tools"]!.isNull)) / agp: \(c["add_generation_prompt"]!.bool!) / \(c["extra"]!.object!.keys)"
            var special: [String: String] = [:]
            for (k, v) in c["special_tokens"]!.object! { special[k] = v.string! }
            var extra: [String: JSONValue] = [:]
            for (k, v) in c["extra"]!.object! { extra[k] = v }
            do {
                let out = try templates[name]!.apply(
                    messages: c["messages"]!.array!, tools: c["tools"]!.array,
                    addGenerationPrompt: c["add_generation_prompt"]!.bool!, specialTokens: special, extra: extra,
                    now: now)
                if let expected = c["output"]?.string {
                    XCTAssertEqual(out, expected, label)
                    rendered += 1
                } else {
                    XCTFail("\(label): rendered, but Jinja2 raised \(c["error"]!.string!)")
                }
            } catch {
                guard let message = c["error"]?.string else {
                    XCTFail("\(label): \(error)")
                    continue
                }
                if c["error_type"]?.string == "TemplateError" {
                    XCTAssertEqual(error.kind, .raised, label)
                    XCTAssertEqual(error.message, message, label)
                }
                XCTAssertGreaterThan(error.line, 0, "\(label): error without a position: \(error)")
                errors += 1
            }
        }
        let cases = fixture["cases"]!.array!
        XCTAssertEqual(rendered, cases.filter { $0["output"] != nil }.count)
        XCTAssertEqual(errors, cases.filter { $0["error"] != nil }.count)
        XCTAssertEqual(cases.count, 402)
    }

    func testSmolLM2TemplateThroughTokenizer() throws {
        let tokenizer = try Tokenizer(directory: TokenizerTests.directory("smollm2"))
        let prompt = try tokenizer.applyChatTemplate(messages: [["role": "user", "content": "Hi"]])
        XCTAssertEqual(
            prompt,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(tokenizer.encode(prompt).first, 1)
    }

    private func renderError(_ source: String, _ context: [String: JSONValue] = [:]) -> TemplateError? {
        do {
            _ = try ChatTemplate(source).render(context)
            return nil
        } catch {
            return error
        }
    }

    func testErrorsAreTypedWithPositions() {
        let syntax = renderError("line one\n{% if x %}\n  {{ x + }}\n{% endif %}")
        XCTAssertEqual(syntax?.kind, .syntax)
        XCTAssertEqual(syntax?.line, 3)

        let unclosed = renderError("{% for x in y %}no end")
        XCTAssertEqual(unclosed?.kind, .syntax)

        XCTAssertEqual(renderError("{% include 'x' %}")?.kind, .syntax)
        XCTAssertEqual(renderError("{{ 'unterminated }}")?.kind, .syntax)

        let raised = renderError("ok\n  {{ raise_exception('Bad role: ' ~ role) }}", ["role": "robot"])
        XCTAssertEqual(raised?.kind, .raised)
        XCTAssertEqual(raised?.message, "Bad role: robot")
        XCTAssertEqual(raised?.line, 2)
        XCTAssertEqual(raised?.column, 6)

        let undefinedFunction = renderError("{{ no_such_function(1) }}")
        XCTAssertEqual(undefinedFunction?.kind, .undefined)
        XCTAssertEqual(undefinedFunction?.line, 1)

        XCTAssertEqual(renderError("{{ x | no_such_filter }}")?.kind, .undefined)
        XCTAssertEqual(renderError("{{ x is no_such_test }}")?.kind, .undefined)
        XCTAssertEqual(renderError("{{ a.b.c }}")?.kind, .undefined)
        XCTAssertEqual(renderError("{{ 1 / 0 }}")?.kind, .runtime)
        XCTAssertEqual(renderError("{{ 'a' + 1 }}")?.kind, .runtime)
        XCTAssertEqual(renderError("{{ 9223372036854775807 + 1 }}")?.kind, .runtime)
        XCTAssertEqual(renderError("{% for a, b in [1] %}{% endfor %}")?.kind, .runtime)
        XCTAssertEqual(renderError("{% break %}")?.kind, .syntax)
    }

    func testWhitespaceControl() throws {
        func render(_ s: String) throws -> String { try ChatTemplate(s).render(["x": true]) }
        XCTAssertEqual(try render("a\n  {% if x %}\n  b\n  {% endif %}\nc"), "a\n  b\nc")
        XCTAssertEqual(try render("a  {%- if x -%}  b  {%- endif -%}  c"), "abc")
        XCTAssertEqual(try render("a\n  {%+ if x %}b{% endif %}"), "a\n  b")
        XCTAssertEqual(try render("{{ 'a' }}\n{{- 'b' -}}\n  c"), "abc")
        XCTAssertEqual(try render("a {# comment #}\n  {#- trimmed -#}  b\n"), "a b")
        XCTAssertEqual(try render("line\n"), "line")
    }

    func testStrftimeNow() throws {
        let date = Date(timeIntervalSince1970: 1_721_999_045)  // 2024-07-26 13:04:05 UTC, a Friday
        let out = try ChatTemplate("{{ strftime_now('%d %b %Y|%A %B %j %H:%M:%S %I%p %y %m %%') }}").render(
            [:], now: date)
        XCTAssertEqual(out, "26 Jul 2024|Friday July 208 13:04:05 01PM 24 07 %")
    }
}

extension ChatTemplateTests {
    func testHostileTemplatesThrowInsteadOfCrashing() {
        XCTAssertEqual(
            renderError(
                String(repeating: "{{ (", count: 1) + String(repeating: "(", count: 5000) + "1"
                    + String(repeating: ")", count: 5001) + " }}")?.kind, .syntax)
        XCTAssertEqual(renderError("{{ " + String(repeating: "not ", count: 5000) + "x }}")?.kind, .syntax)
        XCTAssertEqual(renderError("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")?.kind, .limit)
        XCTAssertEqual(renderError("{{ range(-9223372036854775807, 9223372036854775807) }}")?.kind, .runtime)
        XCTAssertEqual(renderError("{{ 3 ** 100 }}")?.kind, .runtime)
        XCTAssertEqual(
            try ChatTemplate("{{ 3 ** 4 }} {{ [1, 2, 3][::9223372036854775807] }} {{ 'abc'[-9223372036854775807:] }}")
                .render([:]),
            "81 [1] abc")
    }
}

extension ChatTemplateTests {
    func testDeeplyNestedBlocksThrow() {
        let deep =
            String(repeating: "{% if true %}", count: 10_000) + "x" + String(repeating: "{% endif %}", count: 10_000)
        XCTAssertEqual(renderError(deep)?.kind, .syntax)
        let fine = String(repeating: "{% if true %}", count: 20) + "x" + String(repeating: "{% endif %}", count: 20)
        XCTAssertEqual(try ChatTemplate(fine).render([:]), "x")
    }

    func testConcurrentRendersAndEncodes() async throws {
        let template = try ChatTemplate(try Self.source("qwen3"))
        let tokenizer = try Tokenizer(directory: TokenizerTests.directory("smollm2"))
        let messages: [JSONValue] = [["role": "user", "content": "Hello 🤖 world"]]
        let expected = try template.apply(messages: messages, addGenerationPrompt: true)
        let ids = tokenizer.encode(expected)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<20 {
                        XCTAssertEqual(try template.apply(messages: messages, addGenerationPrompt: true), expected)
                        XCTAssertEqual(tokenizer.encode(expected), ids)
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

/// Templates that loop, recurse or grow without end fail fast with a `.limit` error (issue 18).
extension ChatTemplateTests {
    private func limitError(_ source: String, _ limits: TemplateLimits = .standard) -> (TemplateError?, Duration) {
        let clock = ContinuousClock()
        var caught: TemplateError?
        let elapsed = clock.measure {
            do {
                _ = try ChatTemplate(source).render([:], limits: limits)
            } catch {
                caught = error as? TemplateError
            }
        }
        return (caught, elapsed)
    }

    func testRunawayTemplatesHitTheirLimits() {
        let hostile = [
            "nested range": "{% for i in range(10**6) %}{% for j in range(10**6) %}{% endfor %}{% endfor %}",
            "macro twice per level":
                "{% macro f(n) %}{% if n < 60 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}",
            "macro recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            "string doubling":
                "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "string repeat": "{{ ('x' * 1000) * 100000000 }}",
            "list repeat": "{{ ([] * 9223372036854775807)|length }}",
            "replace blow-up": "{{ ('a' * 100000).replace('a', 'b' * 100000) }}",
            "join blow-up": "{{ (['y' * 100000] * 1000)|join(',') }}",
            "huge indent": "{{ [1]|tojson(indent=10**10) }}",
            "nested list doubling":
                "{% set ns = namespace(x=['ab']) %}{% for i in range(64) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}{{ ns.x|tojson }}",
            "namespace cycle printed": "{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns }}",
            "namespace cycle joined": "{% set ns = namespace(a=1) %}{% set ns.l = [ns] %}{{ ''.join(ns.l) }}",
            "namespace cycle filtered": "{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns|string }}",
            "output": "{% for i in range(100000) %}{{ 'z' * 1000 }}{% endfor %}"
        ]
        // The step and loop budgets a fifth of the defaults, to keep the test fast (debug builds
        // run about 10 µs per loop iteration and 0.7 µs per step: the defaults cost ~1 s and ~3 s).
        var limits = TemplateLimits()
        limits.maxSteps = TemplateLimits.standard.maxSteps / 5
        limits.maxLoopIterations = TemplateLimits.standard.maxLoopIterations / 5
        for (name, source) in hostile.sorted(by: { $0.key < $1.key }) {
            let (error, elapsed) = limitError(source, limits)
            XCTAssertEqual(error?.kind, .limit, "\(name): \(String(describing: error))")
            // A hang would run for minutes; 30 s leaves room for a loaded CI machine (these take ~1 s idle).
            XCTAssertLessThan(elapsed, .seconds(30), name)
        }
    }

    func testEachLimitCanBeSetAndNamesItself() throws {
        var limits = TemplateLimits()
        limits.maxLoopIterations = 10
        XCTAssertEqual(
            try ChatTemplate("{% for i in range(10) %}{{ i }}{% endfor %}").render([:], limits: limits), "0123456789")
        let (loops, _) = limitError("{% for i in range(11) %}{% endfor %}", limits)
        XCTAssertEqual(loops?.kind, .limit)
        XCTAssertTrue(loops?.message.contains("10 iterations") ?? false, "\(String(describing: loops))")

        limits = TemplateLimits()
        limits.maxSteps = 100
        XCTAssertEqual(limitError(String(repeating: "{{ 1 }}", count: 200), limits).0?.kind, .limit)
        limits = TemplateLimits()
        limits.maxLength = 8
        XCTAssertEqual(limitError("{{ 'abcd' ~ 'efghi' }}", limits).0?.kind, .limit)
        XCTAssertEqual(try ChatTemplate("{{ 'abcd' ~ 'efgh' }}").render([:], limits: limits), "abcdefgh")
        limits = TemplateLimits()
        limits.maxCallDepth = 3
        let deep = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        XCTAssertEqual(try ChatTemplate(deep + "{{ f(2) }}").render([:], limits: limits), "")
        XCTAssertEqual(limitError(deep + "{{ f(3) }}", limits).0?.kind, .limit)
        limits = TemplateLimits()
        limits.maxDuration = .milliseconds(50)
        let (slow, elapsed) = limitError("{% for i in range(10**6) %}{{ i }}{% endfor %}", limits)
        XCTAssertEqual(slow?.kind, .limit)
        XCTAssertLessThan(elapsed, .seconds(20), "the 50 ms limit stops a loop of 10^6 (not a hang)")
    }
}
