// The server's pure parts: stop strings across token boundaries, request
// field validation (the field named), both APIs' error shapes, and SSE framing.

import Tessera
import TesseraLM
import XCTest

@testable import TesseraServer

final class StopStringTests: XCTestCase {
    /// Feeds `pieces`; what is passed on, and the stop string found.
    private func run(_ stops: [String], _ pieces: [String]) -> (sent: [String], matched: String?) {
        var matcher = StopStringMatcher(stops: stops)
        var sent = pieces.map { matcher.append($0) }
        sent.append(matcher.finish())
        return (sent, matcher.matched)
    }

    func testAStopStringSplitAcrossPiecesIsHeldBackThenCut() {
        let r = run(["END"], ["Hello E", "N", "D and more"])
        XCTAssertEqual(r.sent, ["Hello ", "", "", ""])
        XCTAssertEqual(r.matched, "END")
    }

    func testAFalseStartIsReleased() {
        let r = run(["END"], ["Hello E", "N", "o more"])
        XCTAssertEqual(r.sent, ["Hello ", "", "ENo more", ""])
        XCTAssertNil(r.matched)
        XCTAssertEqual(r.sent.joined(), "Hello ENo more")
    }

    func testTheEarliestOfSeveralStopsWins() {
        let r = run(["world", "lo w"], ["hel", "lo world"])
        XCTAssertEqual(r.sent.joined(), "hel")
        XCTAssertEqual(r.matched, "lo w")
    }

    func testTheHeldBackTailIsSentAtTheEnd() {
        let r = run(["</s>"], ["abc<", "/"])
        XCTAssertEqual(r.sent, ["abc", "", "</"])
        XCTAssertNil(r.matched)
    }

    func testWithoutStopsEverythingPassesAtOnce() {
        XCTAssertEqual(run([], ["a", "b"]).sent, ["a", "b", ""])
    }

    func testNothingAfterTheMatch() {
        var matcher = StopStringMatcher(stops: ["."])
        XCTAssertEqual(matcher.append("One. Two"), "One")
        XCTAssertEqual(matcher.append(" three."), "")
        XCTAssertEqual(matcher.finish(), "")
    }
}

final class RequestFieldTests: XCTestCase {
    private func fields(_ json: String) throws -> RequestFields { try RequestFields(parsing: Array(json.utf8)) }

    private func assertInvalid(
        _ json: String, param: String?, contains text: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let f = try fields(json)
            _ = try OpenAIGeneration(f, completionsLogprobs: false)
            _ = try Server.chatMessages(f)
            try Server.refuseUnsupported(f)
            _ = try ToolRequest(openAI: f)
            XCTFail("accepted \(json)", file: file, line: line)
        } catch let error as APIError {
            XCTAssertEqual(error.kind, .invalidRequest, file: file, line: line)
            XCTAssertEqual(error.param, param, error.message, file: file, line: line)
            XCTAssertTrue(error.message.contains(text), error.message, file: file, line: line)
        } catch {
            XCTFail("\(error)", file: file, line: line)
        }
    }

    func testBadBodiesAndFieldsAreNamed() {
        let messages = #""messages": [{"role": "user", "content": "hi"}]"#
        assertInvalid("{", param: nil, contains: "not valid JSON")
        assertInvalid("[1]", param: nil, contains: "must be a JSON object")
        assertInvalid(#"{"max_tokens": -5, \#(messages)}"#, param: "max_tokens", contains: "at least 1")
        assertInvalid(#"{"max_tokens": "ten", \#(messages)}"#, param: "max_tokens", contains: "integer")
        assertInvalid(#"{"max_tokens": 2.5, \#(messages)}"#, param: "max_tokens", contains: "integer")
        assertInvalid(#"{"temperature": 3, \#(messages)}"#, param: "temperature", contains: "[0.0, 2.0]")
        assertInvalid(#"{"temperature": "hot", \#(messages)}"#, param: "temperature", contains: "number")
        assertInvalid(#"{"n": 0, \#(messages)}"#, param: "n", contains: "at least 1")
        assertInvalid(#"{"stop": [1], \#(messages)}"#, param: "stop", contains: "strings")
        assertInvalid(#"{"stop": [""], \#(messages)}"#, param: "stop", contains: "empty")
        assertInvalid(#"{"top_logprobs": 3, \#(messages)}"#, param: "top_logprobs", contains: "logprobs")
        assertInvalid(#"{"logit_bias": {"x": 1}, \#(messages)}"#, param: "logit_bias", contains: "token ids")
        assertInvalid(#"{"messages": []}"#, param: "messages", contains: "must not be empty")
        assertInvalid(#"{"messages": "hi"}"#, param: "messages", contains: "array")
        assertInvalid(#"{"messages": [{"role": "wizard", "content": "x"}]}"#, param: "messages[0]", contains: "wizard")
        assertInvalid(#"{"messages": [{"role": "user", "content": 5}]}"#, param: "messages[0]", contains: "string")
        assertInvalid(
            #"{"response_format": {"type": "json_schema", "json_schema": {}}, \#(messages)}"#, param: "response_format",
            contains: "json_schema needs")
        assertInvalid(#"{"response_format": {"type": "xml"}, \#(messages)}"#, param: "response_format", contains: "xml")
        assertInvalid(#"{"tools": [{"type": "function"}], \#(messages)}"#, param: "tools", contains: "tools[0] must be")
        let weather = #"[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]"#
        assertInvalid(
            #"{"tools": \#(weather), "tool_choice": {"type": "function", "function": {"name": "time"}}, \#(messages)}"#,
            param: "tool_choice", contains: "'time'")
        assertInvalid(#"{"tool_choice": "required", \#(messages)}"#, param: "tool_choice", contains: "no tools")
        assertInvalid(
            #"{"tools": \#(weather), "tool_choice": "always", \#(messages)}"#, param: "tool_choice",
            contains: "required")
        assertInvalid(
            #"{"messages": [{"role": "tool", "content": "x"}]}"#, param: "messages[0]", contains: "tool_call_id")
        assertInvalid(
            #"{"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]}"#,
            param: "messages[0]",
            contains: "function.arguments")
    }

    func testToolRequestsAndMessages() throws {
        let f = try fields(
            #"{"tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],"#
                + #" "tool_choice": {"type": "function", "function": {"name": "weather"}}, "messages": ["#
                + #"{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1","#
                + #" "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]},"#
                + #" {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]}"#)
        let tools = try ToolRequest(openAI: f)
        XCTAssertEqual(tools.choice, .named("weather"))
        XCTAssertTrue(tools.active && tools.isForced)
        XCTAssertEqual(tools.forcedName, "weather")
        let messages = try Server.chatMessages(f)
        XCTAssertEqual(messages.map { $0["role"]?.string }, ["user", "assistant", "tool"])
        XCTAssertEqual(messages[1]["content"]?.string, "")
        XCTAssertEqual(messages[1]["tool_calls"]?.array?.first?["function"]?["name"]?.string, "weather")
        XCTAssertEqual(messages[2]["tool_call_id"]?.string, "c1")
        XCTAssertFalse(try ToolRequest(openAI: try fields(#"{"tools": [], "tool_choice": "none"}"#)).active)

        // Anthropic: input_schema tools become OpenAI functions; tool_use and tool_result blocks become messages.
        let a = try AnthropicRequest(
            try fields(
                #"{"max_tokens": 5, "tools": [{"name": "weather", "input_schema": {"type": "object"}}],"#
                    + #" "tool_choice": {"type": "any"}, "messages": [{"role": "user", "content": "hi"},"#
                    + #" {"role": "assistant", "content": [{"type": "text", "text": "Let me look."}, {"type": "tool_use","#
                    + #" "id": "t1", "name": "weather", "input": {"city": "Oslo"}}]}, {"role": "user", "content": ["#
                    + #"{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]},"#
                    + #" {"type": "text", "text": "thanks"}]}]}"#))
        XCTAssertEqual(a.tools.choice, .required)
        XCTAssertEqual(a.tools.tools.first?["function"]?["parameters"], ["type": "object"])
        XCTAssertEqual(a.messages.map { $0["role"]?.string }, ["user", "assistant", "tool", "user"])
        XCTAssertEqual(a.messages[1]["content"]?.string, "Let me look.")
        XCTAssertEqual(a.messages[1]["tool_calls"]?.array?.first?["function"]?["arguments"], ["city": "Oslo"])
        XCTAssertEqual(a.messages[2]["content"]?.string, "sunny")
        XCTAssertEqual(a.messages[3]["content"]?.string, "thanks")
        for bad in [
            #"{"max_tokens": 5, "tools": [{"input_schema": {}}], "messages": [{"role": "user", "content": "a"}]}"#,
            #"{"max_tokens": 5, "tool_choice": {"type": "tool", "name": "x"}, "messages": [{"role": "user", "content": "a"}]}"#,
            #"{"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_use", "id": "x", "name": "f", "input": {}}]}]}"#
        ] {
            XCTAssertThrowsError(try AnthropicRequest(try fields(bad)), bad) {
                XCTAssertEqual(($0 as? APIError)?.kind, .invalidRequest, bad)
            }
        }
    }

    func testTheSharedFieldsMapToSampling() throws {
        let f = try fields(
            #"{"temperature": 0, "top_p": 0.5, "top_k": 40, "min_p": 0.1, "presence_penalty": 0.5, "frequency_penalty": -1,"#
                + #" "logit_bias": {"12": -100}, "seed": -1, "stop": "x", "n": 2, "max_completion_tokens": 7, "max_tokens": 9,"#
                + #" "logprobs": true, "top_logprobs": 2, "stream": true, "stream_options": {"include_usage": true}}"#)
        let g = try OpenAIGeneration(f, completionsLogprobs: false)
        XCTAssertEqual(g.sampling.temperature, 0)
        XCTAssertEqual(g.sampling.topP, 0.5)
        XCTAssertEqual(g.sampling.topK, 40)
        XCTAssertEqual(g.sampling.minP, 0.1, accuracy: 1e-7)
        XCTAssertEqual(g.sampling.presencePenalty, 0.5)
        XCTAssertEqual(g.sampling.frequencyPenalty, -1)
        XCTAssertEqual(g.sampling.logitBias, [12: -100])
        XCTAssertEqual(g.sampling.seed, UInt64.max)
        XCTAssertEqual(g.stops, ["x"])
        XCTAssertEqual(g.n, 2)
        XCTAssertEqual(g.maxTokens, 7)  // max_completion_tokens over max_tokens
        XCTAssertTrue(g.logprobs)
        XCTAssertEqual(g.topLogprobs, 2)
        XCTAssertTrue(g.stream && g.includeUsage)
        // The legacy endpoint's integer logprobs is the top count.
        let legacy = try OpenAIGeneration(try fields(#"{"logprobs": 3}"#), completionsLogprobs: true)
        XCTAssertTrue(legacy.logprobs)
        XCTAssertEqual(legacy.topLogprobs, 3)
    }

    func testAnthropicRequests() throws {
        let r = try AnthropicRequest(
            try fields(
                #"{"system": [{"type": "text", "text": "Be brief."}], "max_tokens": 5, "temperature": 0.5, "top_k": 3,"#
                    + #" "stop_sequences": ["\n\n"], "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},"#
                    + #" {"type": "text", "text": "b"}]}, {"role": "assistant", "content": "c"}]}"#))
        XCTAssertEqual(r.messages.map { $0["role"]?.string }, ["system", "user", "assistant"])
        XCTAssertEqual(r.messages.map { $0["content"]?.string }, ["Be brief.", "ab", "c"])
        XCTAssertEqual(r.maxTokens, 5)
        XCTAssertEqual(r.sampling.temperature, 0.5)
        XCTAssertEqual(r.sampling.topK, 3)
        XCTAssertEqual(r.stops, ["\n\n"])
        for bad in [
            #"{"messages": [{"role": "user", "content": "a"}]}"#,  // no max_tokens
            #"{"max_tokens": 5, "messages": []}"#,
            #"{"max_tokens": -1, "messages": [{"role": "user", "content": "a"}]}"#,
            #"{"max_tokens": 5, "temperature": 1.5, "messages": [{"role": "user", "content": "a"}]}"#,
            #"{"max_tokens": 5, "messages": [{"role": "system", "content": "a"}]}"#,
            #"{"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]}"#
        ] {
            XCTAssertThrowsError(try AnthropicRequest(try fields(bad)), bad) {
                XCTAssertEqual(($0 as? APIError)?.kind, .invalidRequest, bad)
            }
        }
    }

    func testErrorShapesAndStatuses() throws {
        let e = APIError(.overloaded, "busy", retryAfter: 3)
        XCTAssertEqual(e.status.code, 429)
        XCTAssertEqual(
            e.json(.openAI).compactText,
            #"{"error":{"message":"busy","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#)
        XCTAssertEqual(e.status(.openAI).code, 429)
        // A full queue is Anthropic's 529 overloaded_error, with Retry-After.
        XCTAssertEqual(e.status(.anthropic).code, 529)
        XCTAssertEqual(
            e.json(.anthropic).compactText, #"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#)
        let response = HTTP.error(e, .anthropic)
        XCTAssertEqual(response.status.code, 529)
        XCTAssertEqual(response.headers[.retryAfter], "3")
        XCTAssertEqual(HTTP.error(e, .openAI).status.code, 429)
        XCTAssertEqual(HTTP.error(e, .openAI).headers[.retryAfter], "3")
        XCTAssertEqual(APIError(.invalidRequest, "no").status(.anthropic).code, 400)
        XCTAssertEqual(APIError(EngineError.contextExceeded(requested: 10, context: 8)).status.code, 400)
        XCTAssertEqual(APIError(EngineError.overloaded(retryAfterSeconds: 2)).retryAfter, 2)
        XCTAssertEqual(APIError(.authentication, "no").status.code, 401)
        XCTAssertEqual(APIError(.notFound, "no").status.code, 404)
        XCTAssertEqual(APIError(.tooLarge, "no").status.code, 413)
        XCTAssertEqual(Server.flavor(of: "/v1/messages/count_tokens"), .anthropic)
        XCTAssertEqual(Server.flavor(of: "/v1/chat/completions"), .openAI)
    }

    func testServerSentEventFraming() {
        XCTAssertEqual(ServerSentEvent.frame("{}"), "data: {}\n\n")
        XCTAssertEqual(ServerSentEvent.frame("a\nb", event: "ping"), "event: ping\ndata: a\ndata: b\n\n")
    }

    func testKeysCompareWhole() {
        XCTAssertTrue(constantTimeEqual("secret", "secret"))
        XCTAssertFalse(constantTimeEqual("secret", "secre"))
        XCTAssertFalse(constantTimeEqual("secret", "secrex"))
        XCTAssertFalse(constantTimeEqual("", "x"))
    }
}

final class MetricsTests: XCTestCase {
    func testThePrometheusText() {
        let metrics = ServerMetrics()
        metrics.recordRequest(route: "/v1/messages", status: 200)
        metrics.recordRequest(route: "/v1/messages", status: 200)
        metrics.recordRequest(route: "/secret/path", status: 404)
        metrics.observeTimeToFirstToken(0.2)
        metrics.observeTimeToFirstToken(3)
        metrics.observeInterToken(0.004)
        let text = metrics.render(
            EngineSnapshot(
                activeSequences: 1, queuedSequences: 2, kvCacheBytes: 4096, prefixCacheHitTokens: 7,
                replayedDecodeSteps: 5))
        for line in [
            #"tessera_requests_total{route="/v1/messages",status="200"} 2"#,
            #"tessera_requests_total{route="other",status="404"} 1"#,
            "tessera_active_sequences 1", "tessera_queued_sequences 2", "tessera_kv_cache_bytes 4096",
            "tessera_prefix_cache_hit_tokens_total 7", "tessera_replayed_steps_total 5",
            #"tessera_time_to_first_token_seconds_bucket{le="0.1"} 0"#,
            #"tessera_time_to_first_token_seconds_bucket{le="0.25"} 1"#,
            #"tessera_time_to_first_token_seconds_bucket{le="5.0"} 2"#,
            #"tessera_time_to_first_token_seconds_bucket{le="+Inf"} 2"#,
            "tessera_time_to_first_token_seconds_sum 3.2", "tessera_time_to_first_token_seconds_count 2",
            #"tessera_inter_token_seconds_bucket{le="0.0025"} 0"#, #"tessera_inter_token_seconds_bucket{le="0.005"} 1"#
        ] {
            XCTAssertTrue(text.split(separator: "\n").contains(Substring(line)), "missing: \(line)\n\(text)")
        }
        XCTAssertEqual(metrics.requests(status: 200), 2)
    }
}
