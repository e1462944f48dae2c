// OpenAI's API: POST /v1/chat/completions, POST /v1/completions, GET
// /v1/models. Requests become engine requests (one per choice, n of them);
// replies are JSON or server-sent-event chunks ending with `data: [DONE]`.

import Hummingbird
import Tessera
import TesseraLM

/// What one choice produced.
struct ChoiceResult {
    var text = ""
    var tokens: [EngineToken] = []
    var end = SequenceEnd(
        reason: .length, usage: EngineUsage(promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0))
}

/// The parts of a generation request both OpenAI endpoints share.
struct OpenAIGeneration {
    var n = 1
    var stream = false
    var includeUsage = false
    var maxTokens: Int?
    var sampling = SamplingParameters()
    var stops: [String] = []
    var logprobs = false
    var topLogprobs = 0
    /// `response_format`: JSON enforced by a constraint per choice.
    var responseFormat = ResponseFormat.text

    static let maxChoices = 16
    static let maxStops = 16

    /// Reads the shared fields (`completionsLogprobs`: the legacy endpoint's integer `logprobs`).
    init(_ f: RequestFields, completionsLogprobs: Bool) throws(APIError) {
        n = try f.int("n", in: 1...Self.maxChoices) ?? 1
        stream = try f.bool("stream") ?? false
        if let options = try f.objectField("stream_options") {
            includeUsage = try options.bool("include_usage") ?? false
        }
        let maxCompletion = try f.int("max_completion_tokens", in: 1...Int.max)
        let legacyMax = try f.int("max_tokens", in: 1...Int.max)
        maxTokens = maxCompletion ?? legacyMax
        sampling = try Self.sampling(f)
        stops = try f.stopStrings("stop", limit: Self.maxStops)
        if let format = try f.objectField("response_format") {
            do {
                responseFormat = try ResponseFormat(openAI: .object(format.object))
            } catch {
                throw APIError.invalid(error.description, param: "response_format")
            }
        }
        if completionsLogprobs {
            if let k = try f.int("logprobs", in: 0...5) {
                logprobs = true
                topLogprobs = k
            }
        } else {
            logprobs = try f.bool("logprobs") ?? false
            topLogprobs = try f.int("top_logprobs", in: 0...20) ?? 0
            if topLogprobs > 0 && !logprobs {
                throw APIError.invalid("'top_logprobs' needs 'logprobs' set to true", param: "top_logprobs")
            }
        }
    }

    /// OpenAI's sampling fields (and the common extensions top_k, min_p, repetition_penalty).
    static func sampling(_ f: RequestFields) throws(APIError) -> SamplingParameters {
        var p = SamplingParameters()
        p.temperature = Float(try f.number("temperature", in: 0...2) ?? 1)
        p.topP = Float(try f.number("top_p", in: 0...1) ?? 1)
        if p.topP == 0 { p.temperature = 0 }  // nothing but the most likely token
        let topK = try f.int("top_k", in: -1...Int(Int32.max)) ?? 0
        p.topK = max(0, topK)
        p.minP = Float(try f.number("min_p", in: 0...1) ?? 0)
        p.repetitionPenalty = Float(try f.number("repetition_penalty", in: 0.01...10) ?? 1)
        p.presencePenalty = Float(try f.number("presence_penalty", in: -2...2) ?? 0)
        p.frequencyPenalty = Float(try f.number("frequency_penalty", in: -2...2) ?? 0)
        if let bias = try f.objectField("logit_bias") {
            for (key, value) in bias.object {
                guard let id = Int(key), id >= 0 else {
                    throw APIError.invalid("'logit_bias' keys must be token ids, got '\(key)'", param: "logit_bias")
                }
                guard let b = value.double, b >= -100, b <= 100 else {
                    throw APIError.invalid("'logit_bias' values must be numbers in [-100, 100]", param: "logit_bias")
                }
                p.logitBias[id] = Float(b)
            }
        }
        if let seed = try f.int("seed", in: Int.min...Int.max) { p.seed = UInt64(bitPattern: Int64(seed)) }
        return p
    }

    /// Starts the n choices' sequences for `prompt` (an error refuses them all).
    /// `forcedTools`: each choice must write a call of these tools (else the
    /// `response_format` constraint, if any).
    func start(
        _ prompt: [Int], on model: ServedModel, forcedTools: (tools: ToolRequest, format: ToolCallFormat)? = nil
    ) throws(APIError) -> [AsyncThrowingStream<EngineEvent, any Error>] {
        for id in sampling.logitBias.keys where id >= model.engine.vocabularySize {
            throw APIError.invalid("'logit_bias' names token \(id), outside the vocabulary", param: "logit_bias")
        }
        let context = model.engine.contextLength
        guard prompt.count < context else {
            throw APIError.invalid(
                "the prompt is \(prompt.count) tokens, and the model's context is \(context)", param: "messages")
        }
        let maxTokens = self.maxTokens ?? (context - prompt.count)
        guard prompt.count + maxTokens <= context else {
            throw APIError.invalid(
                "the prompt (\(prompt.count) tokens) and max_tokens (\(maxTokens)) need \(prompt.count + maxTokens) "
                    + "positions, but the model's context is \(context)", param: "max_tokens")
        }
        // One constraint per choice (each follows its own tokens); all built
        // before any sequence starts, so a schema it cannot enforce is a 400.
        var filters: [(@Sendable ([Int]) -> TokenConstraint)?] = []
        for _ in 0..<n {
            let constraint =
                if let forcedTools {
                    try model.toolConstraint(forcedTools.tools, format: forcedTools.format, maxTokens: maxTokens)
                } else {
                    try model.constraint(for: responseFormat, maxTokens: maxTokens)
                }
            filters.append(constraint?.tokenFilter)
        }
        var streams: [AsyncThrowingStream<EngineEvent, any Error>] = []
        for i in 0..<n {
            var sampling = self.sampling
            if let seed = sampling.seed { sampling.seed = seed &+ UInt64(i) }
            let request = EngineRequest(
                promptTokens: prompt, maxTokens: maxTokens, sampling: sampling, stopTokens: model.stopTokens,
                logprobs: logprobs, topLogprobs: topLogprobs, tokenFilter: filters[i])
            streams.append(try model.start(request))
        }
        return streams
    }
}

extension FinishReason {
    var openAI: JSONValue {
        switch self {
        case .stop: "stop"
        case .length: "length"
        case .cancelled: .null
        }
    }
}

/// A log-probability as OpenAI sends it: -9999 for an impossible token (JSON has no -inf).
func wireLogprob(_ value: Float) -> JSONValue {
    .double(value.isFinite ? Double(value) : -9999)
}

/// Usage, with `prompt_tokens_details.cached_tokens`.
func openAIUsage(prompt: Int, results: [SequenceEnd]) -> JSONValue {
    let completion = results.reduce(0) { $0 + $1.usage.completionTokens }
    let cached = results.map(\.usage.cachedPromptTokens).max() ?? 0
    return .object(
        JSONObject([
            ("prompt_tokens", .int(prompt)), ("completion_tokens", .int(completion)),
            ("total_tokens", .int(prompt + completion)),
            ("prompt_tokens_details", .object(JSONObject([("cached_tokens", .int(cached))])))
        ]))
}

extension Server {
    // MARK: /v1/models

    func models() -> Response {
        let entry = JSONValue.object(
            JSONObject([
                ("id", .string(model.name)), ("object", "model"), ("created", .int(model.created)),
                ("owned_by", "tessera")
            ]))
        return HTTP.json(.object(JSONObject([("object", "list"), ("data", .array([entry]))])))
    }

    // MARK: /v1/chat/completions

    /// The chat messages as template messages: role and text content.
    static func chatMessages(_ f: RequestFields) throws(APIError) -> [JSONValue] {
        guard let messages = try f.array("messages") else {
            throw APIError.invalid("'messages' is required", param: "messages")
        }
        guard !messages.isEmpty else { throw APIError.invalid("'messages' must not be empty", param: "messages") }
        var out: [JSONValue] = []
        for (i, message) in messages.enumerated() {
            let param = "messages[\(i)]"
            guard let object = message.object else {
                throw APIError.invalid("\(param) must be an object", param: param)
            }
            let m = RequestFields(object)
            var role = try m.requiredString("role")
            switch role {
            case "system", "user", "assistant", "tool": break
            case "developer": role = "system"
            case "function":
                throw APIError.invalid(
                    "\(param): 'function' messages (the deprecated functions API) are not supported; use tools",
                    param: param)
            default:
                throw APIError.invalid(
                    "\(param).role '\(role)' is not one of system, developer, user, assistant, tool", param: param)
            }
            if m["function_call"] != nil {
                throw APIError.invalid(
                    "\(param): 'function_call' (the deprecated functions API) is not supported; use tool_calls",
                    param: param)
            }
            var extra: [(String, JSONValue)] = []
            if let calls = m["tool_calls"] {
                guard role == "assistant", let list = calls.array else {
                    throw APIError.invalid("\(param).tool_calls must be an array on an assistant message", param: param)
                }
                for (j, call) in list.enumerated() {
                    guard call["function"]?["name"]?.string != nil, call["function"]?["arguments"]?.string != nil else {
                        throw APIError.invalid(
                            "\(param).tool_calls[\(j)] needs function.name and function.arguments (a JSON string)",
                            param: param)
                    }
                }
                extra.append(("tool_calls", calls))
            }
            if role == "tool" {
                guard let id = m["tool_call_id"]?.string else {
                    throw APIError.invalid("\(param): a tool message needs 'tool_call_id'", param: param)
                }
                extra.append(("tool_call_id", .string(id)))
                if let name = m["name"]?.string { extra.append(("name", .string(name))) }
            }
            let content: String
            switch m["content"] {
            case .string(let s)?: content = s
            case .array(let parts)?:
                var text = ""
                for part in parts {
                    guard part["type"]?.string == "text", let t = part["text"]?.string else {
                        throw APIError.invalid("\(param).content: only text parts are supported", param: param)
                    }
                    text += t
                }
                content = text
            case nil where role == "assistant" && !extra.isEmpty: content = ""
            case nil: throw APIError.invalid("\(param).content is required", param: param)
            default: throw APIError.invalid("\(param).content must be a string or an array of text parts", param: param)
            }
            out.append(.object(JSONObject([("role", .string(role)), ("content", .string(content))] + extra)))
        }
        return out
    }

    /// Refuses the deprecated functions API: a clear 400, never silently ignored.
    static func refuseUnsupported(_ f: RequestFields) throws(APIError) {
        if f["functions"] != nil {
            throw APIError.invalid("the deprecated 'functions' API is not supported; use 'tools'", param: "functions")
        }
    }

    func chatCompletions(_ f: RequestFields) async throws -> Response {
        try model.check(model: try f.requiredString("model"))
        let messages = try Self.chatMessages(f)
        try Self.refuseUnsupported(f)
        let options = try OpenAIGeneration(f, completionsLogprobs: false)
        let tools = try ToolRequest(openAI: f)
        let toolFormat = try model.toolFormat(for: tools)
        let prompt = try model.chatTokens(messages, tools: tools.active ? tools.tools : nil)
        let streams: [AsyncThrowingStream<EngineEvent, any Error>]
        if let toolFormat, tools.isForced {
            guard options.responseFormat == .text else {
                throw APIError.invalid(
                    "a forced tool_choice and a JSON response_format cannot both apply", param: "tool_choice")
            }
            streams = try options.start(prompt, on: model, forcedTools: (tools, toolFormat))
        } else {
            streams = try options.start(prompt, on: model)
        }
        let id = "chatcmpl-" + randomID()
        let created = Int(wallClock())
        let started = wallClock()
        let (model, metrics) = (self.model, self.metrics)
        let keepSpecial = toolFormat != nil

        @Sendable func chunk(_ choices: [JSONValue], usage: JSONValue? = nil) -> JSONValue {
            var o = JSONObject([
                ("id", .string(id)), ("object", "chat.completion.chunk"), ("created", .int(created)),
                ("model", .string(model.name)), ("system_fingerprint", "tessera"), ("choices", .array(choices))
            ])
            if options.includeUsage { o["usage"] = usage ?? .null }
            return .object(o)
        }
        @Sendable func logprobsJSON(_ tokens: [EngineToken]) -> JSONValue {
            guard options.logprobs else { return .null }
            return .object(JSONObject([("content", .array(tokens.map { Self.chatLogprob($0, model) }))]))
        }
        @Sendable func finishReason(_ end: SequenceEnd, calls: [ToolCall]) -> JSONValue {
            calls.isEmpty ? end.reason.openAI : "tool_calls"
        }

        if options.stream {
            return HTTP.eventStream { writer in
                var ends: [SequenceEnd] = []
                do {
                    for (index, stream) in streams.enumerated() {
                        try await writer.send(
                            chunk([
                                .object(
                                    JSONObject([
                                        ("index", .int(index)),
                                        ("delta", .object(JSONObject([("role", "assistant"), ("content", "")]))),
                                        ("logprobs", .null), ("finish_reason", .null)
                                    ]))
                            ]))
                        var splitter = ReplySplitter(format: toolFormat)
                        var pendingTokens: [EngineToken] = []
                        func send(_ events: [ToolCallEvent], callsBefore: Int) async throws {
                            var callIndex = callsBefore
                            for event in events {
                                let delta: JSONObject
                                switch event {
                                case .text(let text): delta = JSONObject([("content", .string(text))])
                                case .toolCall(let call):
                                    var entry = call.openAIJSON.object ?? JSONObject()
                                    entry["index"] = .int(callIndex)
                                    callIndex += 1
                                    delta = JSONObject([("tool_calls", .array([.object(entry)]))])
                                }
                                try await writer.send(
                                    chunk([
                                        .object(
                                            JSONObject([
                                                ("index", .int(index)), ("delta", .object(delta)), ("logprobs", .null),
                                                ("finish_reason", .null)
                                            ]))
                                    ]))
                            }
                        }
                        let end = try await model.drive(
                            stream, stops: options.stops, metrics: metrics, started: started,
                            keepSpecialTokens: keepSpecial
                        ) { delta in
                            pendingTokens += delta.tokens
                            let before = splitter.calls.count
                            let events = splitter.feed(delta.text)
                            // Log-probabilities ride on the first text chunk that follows their tokens.
                            if options.logprobs, !pendingTokens.isEmpty, case .text(let text)? = events.first {
                                try await writer.send(
                                    chunk([
                                        .object(
                                            JSONObject([
                                                ("index", .int(index)),
                                                ("delta", .object(JSONObject([("content", .string(text))]))),
                                                ("logprobs", logprobsJSON(pendingTokens)), ("finish_reason", .null)
                                            ]))
                                    ]))
                                pendingTokens = []
                                try await send(Array(events.dropFirst()), callsBefore: before)
                            } else {
                                try await send(events, callsBefore: before)
                            }
                        }
                        if case .cancelled = end.reason { throw APIError(.unavailable, "the server is shutting down") }
                        let before = splitter.calls.count
                        try await send(splitter.finish(), callsBefore: before)
                        if options.logprobs && !pendingTokens.isEmpty {  // tokens whose text was cut by a stop string
                            try await writer.send(
                                chunk([
                                    .object(
                                        JSONObject([
                                            ("index", .int(index)), ("delta", .object(JSONObject([("content", "")]))),
                                            ("logprobs", logprobsJSON(pendingTokens)), ("finish_reason", .null)
                                        ]))
                                ]))
                        }
                        ends.append(end)
                        try await writer.send(
                            chunk([
                                .object(
                                    JSONObject([
                                        ("index", .int(index)), ("delta", .object(JSONObject())), ("logprobs", .null),
                                        ("finish_reason", finishReason(end, calls: splitter.calls))
                                    ]))
                            ]))
                    }
                    if options.includeUsage {
                        try await writer.send(chunk([], usage: openAIUsage(prompt: prompt.count, results: ends)))
                    }
                    try await writer.sendDone()
                } catch let error as APIError {
                    try await writer.send(error.json(.openAI))
                    try await writer.sendDone()
                } catch {
                    metrics.recordCancelledStream()
                    throw error
                }
            }
        }

        var choices: [JSONValue] = []
        var ends: [SequenceEnd] = []
        for (index, stream) in streams.enumerated() {
            var result = ChoiceResult()
            result.end = try await model.drive(
                stream, stops: options.stops, metrics: metrics, started: started, keepSpecialTokens: keepSpecial
            ) { delta in
                result.text += delta.text
                result.tokens += delta.tokens
            }
            if case .cancelled = result.end.reason { throw APIError(.unavailable, "the server is shutting down") }
            ends.append(result.end)
            var message = JSONObject([("role", "assistant"), ("content", .string(result.text))])
            var calls: [ToolCall] = []
            if let toolFormat {
                let parsed = ToolCallStreamParser.parse(result.text, format: toolFormat)
                calls = parsed.calls
                if !calls.isEmpty {
                    message["content"] = parsed.text.isEmpty ? .null : .string(parsed.text)
                    message["tool_calls"] = .array(calls.map(\.openAIJSON))
                }
            }
            choices.append(
                .object(
                    JSONObject([
                        ("index", .int(index)), ("message", .object(message)),
                        ("logprobs", logprobsJSON(result.tokens)),
                        ("finish_reason", finishReason(result.end, calls: calls))
                    ])))
        }
        return HTTP.json(
            .object(
                JSONObject([
                    ("id", .string(id)), ("object", "chat.completion"), ("created", .int(created)),
                    ("model", .string(model.name)),
                    ("system_fingerprint", "tessera"), ("choices", .array(choices)),
                    ("usage", openAIUsage(prompt: prompt.count, results: ends))
                ])))
    }

    static func chatLogprob(_ token: EngineToken, _ model: ServedModel) -> JSONValue {
        func entry(_ id: Int, _ logprob: Float) -> JSONObject {
            let text = model.tokenText(id)
            return JSONObject([
                ("token", .string(text)), ("logprob", wireLogprob(logprob)),
                ("bytes", .array(text.utf8.map { .int(Int($0)) }))
            ])
        }
        var o = entry(token.id, token.logprob ?? 0)
        o["top_logprobs"] = .array(token.top.map { .object(entry($0.id, $0.logprob)) })
        return .object(o)
    }

    // MARK: /v1/completions

    func completions(_ f: RequestFields) async throws -> Response {
        try model.check(model: try f.requiredString("model"))
        if try f.bool("echo") == true { throw APIError.invalid("'echo' is not supported", param: "echo") }
        if f["suffix"] != nil { throw APIError.invalid("'suffix' is not supported", param: "suffix") }
        if let best = try f.int("best_of", in: 1...Int.max), best != 1 {
            throw APIError.invalid("'best_of' other than 1 is not supported", param: "best_of")
        }
        let prompt: [Int]
        switch f["prompt"] {
        case .string(let s)?: prompt = model.promptTokens(s)
        case .array(let items)?:
            if items.count == 1, let s = items[0].string {
                prompt = model.promptTokens(s)
            } else if !items.isEmpty, items.allSatisfy({ $0.int != nil }) {
                prompt = items.compactMap(\.int)
                let vocabulary = self.model.engine.vocabularySize
                if let bad = prompt.first(where: { $0 < 0 || $0 >= vocabulary }) {
                    throw APIError.invalid("'prompt' token \(bad) is outside the vocabulary", param: "prompt")
                }
            } else {
                throw APIError.invalid(
                    "'prompt' must be a string, one string in an array, or token ids", param: "prompt")
            }
        case nil: throw APIError.invalid("'prompt' is required", param: "prompt")
        default: throw APIError.invalid("'prompt' must be a string or an array of token ids", param: "prompt")
        }
        guard !prompt.isEmpty else { throw APIError.invalid("'prompt' is empty", param: "prompt") }
        let options = try OpenAIGeneration(f, completionsLogprobs: true)
        let streams = try options.start(prompt, on: model)
        let id = "cmpl-" + randomID()
        let created = Int(wallClock())
        let started = wallClock()
        let (model, metrics) = (self.model, self.metrics)

        @Sendable func body(_ choices: [JSONValue], usage: JSONValue?) -> JSONValue {
            var o = JSONObject([
                ("id", .string(id)), ("object", "text_completion"), ("created", .int(created)),
                ("model", .string(model.name)),
                ("system_fingerprint", "tessera"), ("choices", .array(choices))
            ])
            if !options.stream || options.includeUsage { o["usage"] = usage ?? .null }
            return .object(o)
        }
        @Sendable func logprobsJSON(_ tokens: [EngineToken], offset: Int) -> JSONValue {
            guard options.logprobs else { return .null }
            var offsets: [JSONValue] = []
            var at = offset
            for t in tokens {
                offsets.append(.int(at))
                at += model.tokenText(t.id).count
            }
            return .object(
                JSONObject([
                    ("tokens", .array(tokens.map { .string(model.tokenText($0.id)) })),
                    ("token_logprobs", .array(tokens.map { wireLogprob($0.logprob ?? 0) })),
                    (
                        "top_logprobs",
                        .array(
                            tokens.map { t in
                                .object(JSONObject(t.top.map { (model.tokenText($0.id), wireLogprob($0.logprob)) }))
                            })
                    ),
                    ("text_offset", .array(offsets))
                ]))
        }
        @Sendable func choice(_ index: Int, _ text: String, _ tokens: [EngineToken], offset: Int, finish: JSONValue)
            -> JSONValue
        {
            .object(
                JSONObject([
                    ("index", .int(index)), ("text", .string(text)), ("logprobs", logprobsJSON(tokens, offset: offset)),
                    ("finish_reason", finish)
                ]))
        }

        if options.stream {
            return HTTP.eventStream { writer in
                var ends: [SequenceEnd] = []
                do {
                    for (index, stream) in streams.enumerated() {
                        var offset = 0
                        let end = try await model.drive(
                            stream, stops: options.stops, metrics: metrics, started: started
                        ) {
                            delta in
                            try await writer.send(
                                body(
                                    [choice(index, delta.text, delta.tokens, offset: offset, finish: .null)], usage: nil
                                ))
                            offset += delta.text.count
                        }
                        if case .cancelled = end.reason { throw APIError(.unavailable, "the server is shutting down") }
                        ends.append(end)
                        try await writer.send(
                            body([choice(index, "", [], offset: offset, finish: end.reason.openAI)], usage: nil))
                    }
                    if options.includeUsage {
                        try await writer.send(body([], usage: openAIUsage(prompt: prompt.count, results: ends)))
                    }
                    try await writer.sendDone()
                } catch let error as APIError {
                    try await writer.send(error.json(.openAI))
                    try await writer.sendDone()
                } catch {
                    metrics.recordCancelledStream()
                    throw error
                }
            }
        }

        var choices: [JSONValue] = []
        var ends: [SequenceEnd] = []
        for (index, stream) in streams.enumerated() {
            var result = ChoiceResult()
            result.end = try await model.drive(stream, stops: options.stops, metrics: metrics, started: started) {
                delta in
                result.text += delta.text
                result.tokens += delta.tokens
            }
            if case .cancelled = result.end.reason { throw APIError(.unavailable, "the server is shutting down") }
            ends.append(result.end)
            choices.append(choice(index, result.text, result.tokens, offset: 0, finish: result.end.reason.openAI))
        }
        return HTTP.json(body(choices, usage: openAIUsage(prompt: prompt.count, results: ends)))
    }
}
