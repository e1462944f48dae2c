// Tool calls on the wire: OpenAI `tools`/`tool_choice` and Anthropic
// `tools`/`tool_choice` become the chat template's tools (OpenAI's function
// shape), assistant calls and tool results become template messages, and the
// reply's calls (parsed per model family) go back as OpenAI `tool_calls` or
// Anthropic `tool_use` blocks.

import Tessera
import TesseraLM

/// What a request asks of tools.
struct ToolRequest {
    enum Choice: Equatable {
        case auto, off, required
        case named(String)
    }

    /// OpenAI function tools (`{"type": "function", "function": {"name", "description", "parameters"}}`).
    var tools: [JSONValue] = []
    var choice = Choice.auto

    /// Tools are rendered and calls parsed (some tools, and not `tool_choice: none`).
    var active: Bool { !tools.isEmpty && choice != .off }

    /// A call is forced (`required`, or a named tool).
    var isForced: Bool { active && (choice == .required || forcedName != nil) }
    /// The tool a forced call must be (nil: any of them).
    var forcedName: String? {
        if case .named(let name) = choice { return name }
        return nil
    }

    init() {}

    /// OpenAI's `tools` and `tool_choice`.
    init(openAI f: RequestFields) throws(APIError) {
        for (i, tool) in (try f.array("tools") ?? []).enumerated() {
            guard tool["type"]?.string == "function", let function = tool["function"], function.object != nil else {
                throw APIError.invalid(
                    "tools[\(i)] must be {\"type\": \"function\", \"function\": {\"name\": ..., \"parameters\": {...}}}",
                    param: "tools")
            }
            try Self.checkFunction(function, "tools[\(i)].function", param: "tools")
            tools.append(tool)
        }
        switch f["tool_choice"] {
        case nil, .string("auto")?: choice = .auto
        case .string("none")?: choice = .off
        case .string("required")?: choice = .required
        case .object(let o)? where o["type"]?.string == "function" && o["function"]?["name"]?.string != nil:
            choice = .named(o["function"]?["name"]?.string ?? "")
        default:
            throw APIError.invalid(
                "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}",
                param: "tool_choice")
        }
        try checkChoice(param: "tool_choice")
    }

    /// Anthropic's: `{"name", "description", "input_schema"}` tools become
    /// OpenAI function tools; `tool_choice` auto / any / tool / none.
    init(anthropic f: RequestFields) throws(APIError) {
        for (i, tool) in (try f.array("tools") ?? []).enumerated() {
            guard let o = tool.object, let name = o["name"]?.string else {
                throw APIError.invalid("tools.\(i): a tool needs a \"name\" and an \"input_schema\"")
            }
            var function = JSONObject([("name", .string(name))])
            if let d = o["description"], !d.isNull { function["description"] = d }
            function["parameters"] = o["input_schema"] ?? .object(JSONObject([("type", "object")]))
            try Self.checkFunction(.object(function), "tools.\(i)", param: nil)
            tools.append(.object(JSONObject([("type", "function"), ("function", .object(function))])))
        }
        switch f["tool_choice"] {
        case nil: choice = .auto
        case .object(let o)?:
            switch o["type"]?.string {
            case "auto": choice = .auto
            case "any": choice = .required
            case "none": choice = .off
            case "tool":
                guard let name = o["name"]?.string else {
                    throw APIError.invalid("tool_choice: type \"tool\" needs a \"name\"")
                }
                choice = .named(name)
            default: throw APIError.invalid("tool_choice.type: must be auto, any, tool or none")
            }
        default: throw APIError.invalid("tool_choice: must be an object")
        }
        try checkChoice(param: nil)
    }

    private static func checkFunction(_ function: JSONValue, _ field: String, param: String?) throws(APIError) {
        guard let name = function["name"]?.string, !name.isEmpty else {
            throw APIError.invalid("\(field): a function needs a non-empty \"name\"", param: param)
        }
        if let p = function["parameters"], !p.isNull, p.object == nil {
            throw APIError.invalid("\(field).parameters must be a JSON schema object", param: param)
        }
    }

    private func checkChoice(param: String?) throws(APIError) {
        if case .named(let name) = choice, !tools.contains(where: { $0["function"]?["name"]?.string == name }) {
            throw APIError.invalid("tool_choice names the tool '\(name)', which is not among the tools", param: param)
        }
        if choice == .required && tools.isEmpty {
            throw APIError.invalid("tool_choice asks for a tool call, but the request has no tools", param: param)
        }
    }
}

extension ServedModel {
    /// The tool-call family for a request's tools (nil: tools not active);
    /// a 400 when the model's chat template does not render tools.
    func toolFormat(for tools: ToolRequest) throws(APIError) -> ToolCallFormat? {
        guard tools.active else { return nil }
        guard let template = tokenizer.chatTemplate, template.contains("tools") else {
            throw APIError.invalid("this model's chat template does not render tools", param: "tools")
        }
        guard let format = toolCallFormat else {
            throw APIError.invalid(
                "this model's tool-call syntax is unknown (its template names none of <tool_call>, [TOOL_CALLS], <|python_tag|>)",
                param: "tools")
        }
        return format
    }

    /// The constraint that makes a sequence write one call of the tools (`tool_choice` required or named).
    func toolConstraint(_ tools: ToolRequest, format: ToolCallFormat, maxTokens: Int) throws(APIError)
        -> JSONConstraint?
    {
        guard tools.isForced else { return nil }
        do {
            return try JSONConstraint(
                toolCallOf: tools.tools, only: tools.forcedName, format: format, vocabulary: vocabulary,
                endTokens: stopTokens,
                maxTokens: maxTokens)
        } catch {
            throw APIError.invalid("the tools cannot be enforced: \(error.description)", param: "tools")
        }
    }
}

/// Splits one choice's text into text and calls as it streams (or passes text through without tools).
struct ReplySplitter {
    private var parser: ToolCallStreamParser?
    private(set) var calls: [ToolCall] = []

    init(format: ToolCallFormat?) {
        parser = format.map { ToolCallStreamParser(format: $0) }
    }

    mutating func feed(_ text: String) -> [ToolCallEvent] {
        guard parser != nil else { return text.isEmpty ? [] : [.text(text)] }
        return record(parser?.feed(text) ?? [])
    }

    mutating func finish() -> [ToolCallEvent] {
        record(parser?.finish() ?? [])
    }

    private mutating func record(_ events: [ToolCallEvent]) -> [ToolCallEvent] {
        for case .toolCall(let call) in events { calls.append(call) }
        return events
    }
}

extension ToolCall {
    /// Anthropic's id style (`toolu_...`).
    var anthropicBlock: JSONValue {
        var call = self
        if id.hasPrefix("call_") { call.id = "toolu_" + id.dropFirst("call_".count) }
        return call.anthropicJSON
    }
}
