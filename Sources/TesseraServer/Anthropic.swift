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

    /// Reads the fields; `countOnly` (count_tokens) needs no max_tokens.
    init(_ f: RequestFields, countOnly: Bool = false) throws(APIError) {
        if let tools = f["tools"], tools.array?.isEmpty != true {
            throw APIError.invalid("tools are not supported by this server yet")
        }
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
            let text: String
            switch m["content"] {
            case .string(let s)?: text = s
            case .array(let blocks)?: text = try Self.text(of: blocks, field: "messages.\(i).content")
            default: throw APIError.invalid("messages.\(i).content: must be a string or an array of content blocks")
            }
            messages.append(Self.message(role, text))
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

    /// The text of content blocks (only text blocks are supported here).
    static func text(of blocks: [JSONValue], field: String) throws(APIError) -> String {
        var text = ""
        for (i, block) in blocks.enumerated() {
            let type = block["type"]?.string
            if type == "tool_use" || type == "tool_result" {
                throw APIError.invalid("\(field).\(i): \(type ?? "") blocks are not supported by this server yet")
            }
            guard type == "text", let t = block["text"]?.string else {
                throw APIError.invalid("\(field).\(i): only text content blocks are supported")
            }
            text += t
        }
        return text
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
        .object(JSONObject([
            ("input_tokens", .int(input - cached)), ("output_tokens", .int(output)),
            ("cache_creation_input_tokens", 0), ("cache_read_input_tokens", .int(cached)),
        ]))
    }

    func countTokens(_ f: RequestFields) throws(APIError) -> Response {
        try model.check(model: try f.requiredString("model"))
        let request = try AnthropicRequest(f, countOnly: true)
        let tokens = try model.chatTokens(request.messages)
        return HTTP.json(.object(JSONObject([("input_tokens", .int(tokens.count))])))
    }

    func messages(_ f: RequestFields) async throws -> Response {
        try model.check(model: try f.requiredString("model"))
        let request = try AnthropicRequest(f)
        let prompt = try model.chatTokens(request.messages)
        let context = model.engine.contextLength
        guard prompt.count + request.maxTokens <= context else {
            throw APIError.invalid(
                "prompt is too long: \(prompt.count) tokens + max_tokens \(request.maxTokens) > the model's context of \(context)")
        }
        let stream = try model.start(
            EngineRequest(
                promptTokens: prompt, maxTokens: request.maxTokens, sampling: request.sampling, stopTokens: model.stopTokens))
        let id = "msg_" + randomID()
        let started = wallClock()
        let (model, metrics) = (self.model, self.metrics)

        if request.stream {
            let usage = anthropicUsage(input: prompt.count, output: 0, cached: 0)
            return HTTP.eventStream { writer in
                do {
                    try await writer.send(
                        .object(JSONObject([
                            ("type", "message_start"),
                            ("message", .object(JSONObject([
                                ("id", .string(id)), ("type", "message"), ("role", "assistant"), ("content", .array([])),
                                ("model", .string(model.name)), ("stop_reason", .null), ("stop_sequence", .null), ("usage", usage),
                            ]))),
                        ])), event: "message_start")
                    try await writer.send(
                        .object(JSONObject([
                            ("type", "content_block_start"), ("index", 0),
                            ("content_block", .object(JSONObject([("type", "text"), ("text", "")]))),
                        ])), event: "content_block_start")
                    try await writer.send(.object(JSONObject([("type", "ping")])), event: "ping")
                    let end = try await model.drive(stream, stops: request.stops, metrics: metrics, started: started) { delta in
                        guard !delta.text.isEmpty else { return }
                        try await writer.send(
                            .object(JSONObject([
                                ("type", "content_block_delta"), ("index", 0),
                                ("delta", .object(JSONObject([("type", "text_delta"), ("text", .string(delta.text))]))),
                            ])), event: "content_block_delta")
                    }
                    if case .cancelled = end.reason { throw APIError(.unavailable, "the server is shutting down") }
                    try await writer.send(.object(JSONObject([("type", "content_block_stop"), ("index", 0)])), event: "content_block_stop")
                    let (reason, sequence) = end.reason.anthropic
                    try await writer.send(
                        .object(JSONObject([
                            ("type", "message_delta"),
                            ("delta", .object(JSONObject([("stop_reason", reason), ("stop_sequence", sequence)]))),
                            ("usage", .object(JSONObject([("output_tokens", .int(end.usage.completionTokens))]))),
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
        let end = try await model.drive(stream, stops: request.stops, metrics: metrics, started: started) { delta in
            text += delta.text
        }
        if case .cancelled = end.reason { throw APIError(.unavailable, "the server is shutting down") }
        let (reason, sequence) = end.reason.anthropic
        return HTTP.json(.object(JSONObject([
            ("id", .string(id)), ("type", "message"), ("role", "assistant"), ("model", .string(model.name)),
            ("content", .array([.object(JSONObject([("type", "text"), ("text", .string(text))]))])),
            ("stop_reason", reason), ("stop_sequence", sequence),
            ("usage", anthropicUsage(input: prompt.count, output: end.usage.completionTokens, cached: end.usage.cachedPromptTokens)),
        ])))
    }
}
