// Anthropic's Messages API: POST /v1/messages (system, text content blocks,
// stop_sequences, max_tokens, temperature/top_p/top_k, streaming with its
// event types) and POST /v1/messages/count_tokens.

import Hummingbird
import Tessera
import TesseraLM

/// A Messages request's prompt and options.
struct AnthropicRequest {
    var messages: [JSONValue]
    var maxTokens: Int
    var stream: Bool
    var sampling: SamplingParameters
    var stops: [String]
    var tools: ToolRequest

    /// Reads the fields; `countOnly` (count_tokens) needs no max_tokens.
    init(_ f: RequestFields, countOnly: Bool = false) throws(APIError) {
        tools = try ToolRequest(anthropic: f)
        var messages: [JSONValue] = []
        switch f["system"] {
        case nil: break
        case .string(let s)?: if !s.isEmpty { messages.append(Self.message("system", s)) }
        case .array(let blocks)?: messages.append(Self.message("system", try Self.text(of: blocks, field: "system")))
        default: throw APIError.invalid("system: must be a string or an array of text blocks")
        }
        guard let list = try f.array("messages") else { throw APIError.invalid("messages: field required") }
        guard !list.isEmpty else { throw APIError.invalid("messages: at least one message is required") }
        for (i, item) in list.enumerated() {
            guard let object = item.object else { throw APIError.invalid("messages.\(i): must be an object") }
            let m = RequestFields(object)
            let role = try m.requiredString("role")
            guard role == "user" || role == "assistant" else {
                throw APIError.invalid("messages.\(i).role: must be 'user' or 'assistant', got '\(role)'")
            }
            switch m["content"] {
            case .string(let s)?: messages.append(Self.message(role, s))
            case .array(let blocks)?: messages += try Self.messages(role, blocks, field: "messages.\(i).content")
            default: throw APIError.invalid("messages.\(i).content: must be a string or an array of content blocks")
            }
        }
        self.messages = messages
        if countOnly {
            maxTokens = 1
        } else {
            guard let max = try f.int("max_tokens", in: 1...Int.max) else {
                throw APIError.invalid("max_tokens: field required")
            }
            maxTokens = max
        }
        stream = try f.bool("stream") ?? false
        sampling = SamplingParameters()
        sampling.temperature = Float(try f.number("temperature", in: 0...1) ?? 1)
        sampling.topP = Float(try f.number("top_p", in: 0...1) ?? 1)
        if sampling.topP == 0 { sampling.temperature = 0 }
        sampling.topK = try f.int("top_k", in: 0...Int(Int32.max)) ?? 0
        stops = try f.stopStrings("stop_sequences", limit: 16)
    }

    static func message(_ role: String, _ content: String) -> JSONValue {
        .object(JSONObject([("role", .string(role)), ("content", .string(content))]))
    }

    /// The text of content blocks (system: text blocks only).
    static func text(of blocks: [JSONValue], field: String) throws(APIError) -> String {
        var text = ""
        for (i, block) in blocks.enumerated() {
            guard block["type"]?.string == "text", let t = block["text"]?.string else {
                throw APIError.invalid("\(field).\(i): only text content blocks are supported here")
            }
            text += t
        }
        return text
    }

    /// One message's content blocks as template messages: an assistant's
    /// text and `tool_use` blocks become one message with OpenAI-shaped
    /// `tool_calls`; a user's `tool_result` blocks become `tool` messages
    /// (first: they answer the previous turn's calls), its text one user message.
    static func messages(_ role: String, _ blocks: [JSONValue], field: String) throws(APIError) -> [JSONValue] {
        var text = ""
        var calls: [JSONValue] = []
        var results: [JSONValue] = []
        for (i, block) in blocks.enumerated() {
            let at = "\(field).\(i)"
            switch block["type"]?.string ?? "" {
            case "text":
                guard let t = block["text"]?.string else { throw APIError.invalid("\(at).text: must be a string") }
                text += t
            case "tool_use" where role == "assistant":
                guard let id = block["id"]?.string, let name = block["name"]?.string, let input = block["input"],
                    input.object != nil
                else { throw APIError.invalid("\(at): a tool_use block needs id, name and an input object") }
                calls.append(
                    .object(
                        JSONObject([
                            ("id", .string(id)), ("type", "function"),
                            ("function", .object(JSONObject([("name", .string(name)), ("arguments", input)])))
                        ])))
            case "tool_result" where role == "user":
                guard let id = block["tool_use_id"]?.string else {
                    throw APIError.invalid("\(at): a tool_result block needs tool_use_id")
                }
                let content: String
                switch block["content"] {
                case nil, .null?: content = ""
                case .string(let s)?: content = s
                case .array(let parts)?: content = try Self.text(of: parts, field: at + ".content")
                default: throw APIError.invalid("\(at).content: must be a string or text blocks")
                }
                results.append(
                    .object(
                        JSONObject([
                            ("role", "tool"), ("tool_call_id", .string(id)), ("content", .string(content))
                        ])))
            case let type:
                throw APIError.invalid(
                    "\(at): \(type.isEmpty ? "blocks without a type" : "'\(type)' blocks") are not supported in a \(role) message"
                )
            }
        }
        if role == "assistant" {
            var m = JSONObject([("role", "assistant"), ("content", .string(text))])
            if !calls.isEmpty { m["tool_calls"] = .array(calls) }
            return [.object(m)]
        }
        return results + (results.isEmpty || !text.isEmpty ? [Self.message("user", text)] : [])
    }
}

extension FinishReason {
    var anthropic: (reason: JSONValue, sequence: JSONValue) {
        switch self {
        case .stop(let s?): ("stop_sequence", .string(s))
        case .stop(nil): ("end_turn", .null)
        case .length: ("max_tokens", .null)
        case .cancelled: (.null, .null)
        }
    }
}

extension Server {
    func anthropicUsage(input: Int, output: Int, cached: Int) -> JSONValue {
        .object(
            JSONObject([
                ("input_tokens", .int(input - cached)), ("output_tokens", .int(output)),
                ("cache_creation_input_tokens", 0), ("cache_read_input_tokens", .int(cached))
            ]))
    }

    func countTokens(_ f: RequestFields) throws(APIError) -> Response {
        try model.check(model: try f.requiredString("model"))
        let request = try AnthropicRequest(f, countOnly: true)
        _ = try model.toolFormat(for: request.tools)
        let tokens = try model.chatTokens(request.messages, tools: request.tools.active ? request.tools.tools : nil)
        return HTTP.json(.object(JSONObject([("input_tokens", .int(tokens.count))])))
    }

    func messages(_ f: RequestFields) async throws -> Response {
        try model.check(model: try f.requiredString("model"))
        let request = try AnthropicRequest(f)
        let tools = request.tools
        let toolFormat = try model.toolFormat(for: tools)
        let prompt = try model.chatTokens(request.messages, tools: tools.active ? tools.tools : nil)
        let context = model.engine.contextLength
        guard prompt.count + request.maxTokens <= context else {
            throw APIError.invalid(
                "prompt is too long: \(prompt.count) tokens + max_tokens \(request.maxTokens) > the model's context of \(context)"
            )
        }
        var filter: (@Sendable ([Int]) -> TokenConstraint)?
        if let toolFormat {
            filter = try model.toolConstraint(tools, format: toolFormat, maxTokens: request.maxTokens)?.tokenFilter
        }
        let stream = try model.start(
            EngineRequest(
                promptTokens: prompt, maxTokens: request.maxTokens, sampling: request.sampling,
                stopTokens: model.stopTokens,
                tokenFilter: filter))
        let id = "msg_" + randomID()
        let started = wallClock()
        let (model, metrics) = (self.model, self.metrics)
        let keepSpecial = toolFormat != nil

        @Sendable func stopReason(_ end: SequenceEnd, calls: [ToolCall]) -> (reason: JSONValue, sequence: JSONValue) {
            calls.isEmpty ? end.reason.anthropic : ("tool_use", .null)
        }

        if request.stream {
            let usage = anthropicUsage(input: prompt.count, output: 0, cached: 0)
            return HTTP.eventStream { writer in
                do {
                    try await writer.send(
                        .object(
                            JSONObject([
                                ("type", "message_start"),
                                (
                                    "message",
                                    .object(
                                        JSONObject([
                                            ("id", .string(id)), ("type", "message"), ("role", "assistant"),
                                            ("content", .array([])),
                                            ("model", .string(model.name)), ("stop_reason", .null),
                                            ("stop_sequence", .null), ("usage", usage)
                                        ]))
                                )
                            ])), event: "message_start")
                    // Blocks in order: a text block open while text arrives; each call its own tool_use block.
                    var nextIndex = 0
                    var openText: Int?
                    func openTextBlock() async throws -> Int {
                        if let openText { return openText }
                        let index = nextIndex
                        nextIndex += 1
                        openText = index
                        try await writer.send(
                            .object(
                                JSONObject([
                                    ("type", "content_block_start"), ("index", .int(index)),
                                    ("content_block", .object(JSONObject([("type", "text"), ("text", "")])))
                                ])), event: "content_block_start")
                        return index
                    }
                    func closeTextBlock() async throws {
                        guard let index = openText else { return }
                        openText = nil
                        try await writer.send(
                            .object(JSONObject([("type", "content_block_stop"), ("index", .int(index))])),
                            event: "content_block_stop")
                    }
                    func send(_ events: [ToolCallEvent]) async throws {
                        for event in events {
                            switch event {
                            case .text(let text):
                                guard !text.isEmpty else { continue }
                                let index = try await openTextBlock()
                                try await writer.send(
                                    .object(
                                        JSONObject([
                                            ("type", "content_block_delta"), ("index", .int(index)),
                                            (
                                                "delta",
                                                .object(JSONObject([("type", "text_delta"), ("text", .string(text))]))
                                            )
                                        ])), event: "content_block_delta")
                            case .toolCall(let call):
                                try await closeTextBlock()
                                let index = nextIndex
                                nextIndex += 1
                                var block = call.anthropicBlock.object ?? JSONObject()
                                block["input"] = .object(JSONObject())
                                try await writer.send(
                                    .object(
                                        JSONObject([
                                            ("type", "content_block_start"), ("index", .int(index)),
                                            ("content_block", .object(block))
                                        ])), event: "content_block_start")
                                try await writer.send(
                                    .object(
                                        JSONObject([
                                            ("type", "content_block_delta"), ("index", .int(index)),
                                            (
                                                "delta",
                                                .object(
                                                    JSONObject([
                                                        ("type", "input_json_delta"),
                                                        ("partial_json", .string(call.argumentsJSON))
                                                    ]))
                                            )
                                        ])), event: "content_block_delta")
                                try await writer.send(
                                    .object(JSONObject([("type", "content_block_stop"), ("index", .int(index))])),
                                    event: "content_block_stop")
                            }
                        }
                    }
                    if toolFormat == nil { _ = try await openTextBlock() }
                    try await writer.send(.object(JSONObject([("type", "ping")])), event: "ping")
                    var splitter = ReplySplitter(format: toolFormat)
                    let end = try await model.drive(
                        stream, stops: request.stops, metrics: metrics, started: started, keepSpecialTokens: keepSpecial
                    ) { delta in
                        try await send(splitter.feed(delta.text))
                    }
                    if case .cancelled = end.reason { throw APIError(.unavailable, "the server is shutting down") }
                    try await send(splitter.finish())
                    if nextIndex == 0 { _ = try await openTextBlock() }
                    try await closeTextBlock()
                    let (reason, sequence) = stopReason(end, calls: splitter.calls)
                    try await writer.send(
                        .object(
                            JSONObject([
                                ("type", "message_delta"),
                                ("delta", .object(JSONObject([("stop_reason", reason), ("stop_sequence", sequence)]))),
                                ("usage", .object(JSONObject([("output_tokens", .int(end.usage.completionTokens))])))
                            ])), event: "message_delta")
                    try await writer.send(.object(JSONObject([("type", "message_stop")])), event: "message_stop")
                } catch let error as APIError {
                    try await writer.send(error.json(.anthropic), event: "error")
                } catch {
                    metrics.recordCancelledStream()
                    throw error
                }
            }
        }

        var text = ""
        let end = try await model.drive(
            stream, stops: request.stops, metrics: metrics, started: started, keepSpecialTokens: keepSpecial
        ) { delta in
            text += delta.text
        }
        if case .cancelled = end.reason { throw APIError(.unavailable, "the server is shutting down") }
        var calls: [ToolCall] = []
        if let toolFormat { (text, calls) = ToolCallStreamParser.parse(text, format: toolFormat) }
        var content: [JSONValue] = []
        if !text.isEmpty || calls.isEmpty {
            content.append(.object(JSONObject([("type", "text"), ("text", .string(text))])))
        }
        content += calls.map(\.anthropicBlock)
        let (reason, sequence) = stopReason(end, calls: calls)
        return HTTP.json(
            .object(
                JSONObject([
                    ("id", .string(id)), ("type", "message"), ("role", "assistant"), ("model", .string(model.name)),
                    ("content", .array(content)), ("stop_reason", reason), ("stop_sequence", sequence),
                    (
                        "usage",
                        anthropicUsage(
                            input: prompt.count, output: end.usage.completionTokens,
                            cached: end.usage.cachedPromptTokens)
                    )
                ])))
    }
}
