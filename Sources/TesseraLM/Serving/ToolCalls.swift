// Tool calls in model output, per family, into one neutral ToolCall that a
// server maps to OpenAI `tool_calls` or Anthropic `tool_use` blocks.
//
//   hermes   <tool_call>{"name": ..., "arguments": {...}}</tool_call>
//            (Qwen2.5, Qwen3, Hermes 2/3; several in a row for parallel calls)
//   llama3   {"name": ..., "parameters": {...}} as the whole reply, or after
//            <|python_tag|>; several separated by ";" (Llama 3.1-3.3)
//   mistral  [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...] (Mistral,
//            Mistral Nemo)
//
// The family comes from the chat template (the markers it writes), else
// from the model type (`ToolCallFormat.detect`). Text must be decoded with
// special tokens kept: <|python_tag|> and [TOOL_CALLS] are special tokens.
// A call whose JSON is invalid or unterminated is left in the text as it was.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera

/// One function call the model made.
public struct ToolCall: Sendable, Equatable {
    /// An id for the call (`call_...`); a server may prefix it as its API wants.
    public var id: String
    public var name: String
    /// The arguments: a JSON object as compact text (OpenAI's `arguments` string).
    public var argumentsJSON: String

    public init(id: String, name: String, argumentsJSON: String) {
        self.id = id
        self.name = name
        self.argumentsJSON = argumentsJSON
    }

    /// The arguments as a JSON value (an object; empty when they do not parse).
    public var arguments: JSONValue {
        (try? JSONValue(parsing: argumentsJSON)) ?? .object(JSONObject())
    }

    /// `call_` and 24 random letters and digits.
    public static func randomID() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var g = SystemRandomNumberGenerator()
        return "call_" + String((0..<24).map { _ in alphabet[Int(g.next() % UInt64(alphabet.count))] })
    }

    /// The OpenAI `tool_calls` entry: `{"id", "type": "function", "function": {"name", "arguments"}}`.
    public var openAIJSON: JSONValue {
        [
            "id": .string(id), "type": "function",
            "function": ["name": .string(name), "arguments": .string(argumentsJSON)]
        ]
    }

    /// The Anthropic content block: `{"type": "tool_use", "id", "name", "input"}`.
    public var anthropicJSON: JSONValue {
        ["type": "tool_use", "id": .string(id), "name": .string(name), "input": arguments]
    }

    /// Messages as chat templates expect them: OpenAI sends each tool call's
    /// `function.arguments` as a JSON string, templates (as transformers
    /// documents) want the object; strings that parse to an object become it.
    public static func messagesForTemplate(_ messages: [JSONValue]) -> [JSONValue] {
        messages.map { message in
            guard var m = message.object, let calls = m["tool_calls"]?.array else { return message }
            m["tool_calls"] = .array(
                calls.map { call in
                    guard var c = call.object, var f = c["function"]?.object, let text = f["arguments"]?.string,
                        let parsed = try? JSONValue(parsing: text), parsed.object != nil
                    else { return call }
                    f["arguments"] = parsed
                    c["function"] = .object(f)
                    return .object(c)
                })
            return .object(m)
        }
    }
}

/// How a model family writes tool calls.
public enum ToolCallFormat: String, Sendable, CaseIterable {
    case hermes
    case llama3
    case mistral

    /// The family from the chat template's markers (`<tool_call>`,
    /// `[TOOL_CALLS]`, `<|python_tag|>` or Llama 3's `"parameters"` JSON
    /// instruction), else from the model type (qwen2/qwen3 → hermes, llama →
    /// llama3, mistral → mistral); nil when neither says.
    public static func detect(chatTemplate: String?, modelType: String? = nil) -> ToolCallFormat? {
        if let t = chatTemplate {
            if t.contains("<tool_call>") { return .hermes }
            if t.contains("[TOOL_CALLS]") { return .mistral }
            if t.contains("<|python_tag|>") || (t.contains("ipython") && t.contains("\"parameters\"")) {
                return .llama3
            }
        }
        switch modelType?.lowercased() {
        case "qwen2", "qwen2_moe", "qwen3", "qwen3_moe": return .hermes
        case "llama": return .llama3
        case "mistral": return .mistral
        default: return nil
        }
    }
}

/// What the streaming parser emits: text to show, or a complete call.
public enum ToolCallEvent: Sendable, Equatable {
    case text(String)
    case toolCall(ToolCall)
}

/// Splits generated text into plain text and tool calls as it arrives. Text
/// that may be the start of a marker is held back until it is known; a call
/// is emitted once its JSON (and closing marker) is complete.
///
/// ```swift
/// var parser = ToolCallStreamParser(format: .hermes)
/// for delta in deltas { for event in parser.feed(delta) { ... } }
/// for event in parser.finish() { ... }
/// ```
public struct ToolCallStreamParser: Sendable {
    public let format: ToolCallFormat
    private let makeID: @Sendable () -> String
    /// Text not yet emitted (as bytes: markers and JSON are ASCII-delimited).
    private var buffer: [UInt8] = []
    /// Inside a call: the marker that opened it (given back if it fails).
    private var openMarker: [UInt8]?
    /// Nothing but whitespace emitted or held so far (Llama 3's bare JSON call).
    private var atStart = true
    /// Llama 3: right after a call, where `;` and another call may follow.
    private var afterCall = false

    public init(format: ToolCallFormat, makeID: @escaping @Sendable () -> String = ToolCall.randomID) {
        self.format = format
        self.makeID = makeID
    }

    private var startMarkers: [[UInt8]] {
        switch format {
        case .hermes: [Array("<tool_call>".utf8)]
        case .llama3: [Array("<|python_tag|>".utf8)]
        case .mistral: [Array("[TOOL_CALLS]".utf8)]
        }
    }
    private static let hermesEnd = Array("</tool_call>".utf8)

    /// Adds a text delta; returns what can be told apart now.
    public mutating func feed(_ delta: String) -> [ToolCallEvent] {
        buffer.append(contentsOf: delta.utf8)
        var events: [ToolCallEvent] = []
        process(final: false, into: &events)
        return Self.merged(events)
    }

    /// The end of the text: whatever is held comes out (an unfinished call as text).
    public mutating func finish() -> [ToolCallEvent] {
        var events: [ToolCallEvent] = []
        process(final: true, into: &events)
        if let marker = openMarker {
            emitText(marker + buffer, into: &events)
        } else if !buffer.isEmpty {
            emitText(buffer, into: &events)
        }
        buffer = []
        openMarker = nil
        return Self.merged(events)
    }

    /// Parses a whole reply: its text (calls removed) and its calls.
    public static func parse(
        _ text: String, format: ToolCallFormat, makeID: @escaping @Sendable () -> String = ToolCall.randomID
    )
        -> (text: String, calls: [ToolCall])
    {
        var parser = ToolCallStreamParser(format: format, makeID: makeID)
        var out = "", calls: [ToolCall] = []
        for event in parser.feed(text) + parser.finish() {
            switch event {
            case .text(let t): out += t
            case .toolCall(let c): calls.append(c)
            }
        }
        return (out, calls)
    }

    private static func merged(_ events: [ToolCallEvent]) -> [ToolCallEvent] {
        var out: [ToolCallEvent] = []
        for e in events {
            if case .text(let t) = e {
                if t.isEmpty { continue }
                if case .text(let previous) = out.last {
                    out[out.count - 1] = .text(previous + t)
                    continue
                }
            }
            out.append(e)
        }
        return out
    }

    private mutating func emitText(_ bytes: some Collection<UInt8>, into events: inout [ToolCallEvent]) {
        guard !bytes.isEmpty else { return }
        if bytes.contains(where: { !Self.isSpace($0) }) { atStart = false }
        events.append(.text(String(decoding: bytes, as: UTF8.self)))
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    private mutating func process(final: Bool, into events: inout [ToolCallEvent]) {
        while true {
            if openMarker != nil {
                guard consumeCall(final: final, into: &events) else { return }
                continue
            }
            if afterCall {
                // Llama 3: `; {...}` continues the calls; anything else is text again.
                guard let i = buffer.firstIndex(where: { !Self.isSpace($0) && $0 != UInt8(ascii: ";") }) else {
                    if final { afterCall = false }
                    return
                }
                afterCall = false
                if buffer[i] == UInt8(ascii: "{") {
                    openMarker = Array(buffer[..<i])
                    buffer.removeSubrange(..<i)
                    continue
                }
            }
            if format == .llama3, atStart {
                // A reply that is a bare JSON object may be a call.
                if let i = buffer.firstIndex(where: { !Self.isSpace($0) }) {
                    if buffer[i] == UInt8(ascii: "{") {
                        openMarker = Array(buffer[..<i])
                        buffer.removeSubrange(..<i)
                        atStart = false
                        continue
                    }
                } else if !final {
                    return  // only whitespace so far: hold it
                }
            }
            // The earliest start marker in the buffer.
            var found: (at: Int, marker: [UInt8])?
            for marker in startMarkers {
                if let at = Self.find(marker, in: buffer), found.map({ at < $0.at }) ?? true { found = (at, marker) }
            }
            if let found {
                emitText(buffer[..<found.at], into: &events)
                buffer.removeSubrange(..<(found.at + found.marker.count))
                openMarker = found.marker
                continue
            }
            // Hold back a tail that may be the start of a marker.
            var keep = 0
            if !final {
                for marker in startMarkers {
                    for n in stride(from: min(marker.count - 1, buffer.count), to: 0, by: -1)
                    where buffer.suffix(n).elementsEqual(marker.prefix(n)) {
                        keep = max(keep, n)
                        break
                    }
                }
            }
            emitText(buffer[..<(buffer.count - keep)], into: &events)
            buffer.removeSubrange(..<(buffer.count - keep))
            return
        }
    }

    /// Inside a call: parses it once complete. Returns false to wait for more text.
    private mutating func consumeCall(final: Bool, into events: inout [ToolCallEvent]) -> Bool {
        let marker = openMarker ?? []
        guard let start = buffer.firstIndex(where: { !Self.isSpace($0) }) else {
            return failIfFinal(final, marker: marker, into: &events)
        }
        let opener = buffer[start]
        guard opener == UInt8(ascii: "{") || (opener == UInt8(ascii: "[") && format == .mistral) else {
            return fail(marker: marker, consumed: 0, into: &events)
        }
        guard let end = Self.jsonEnd(buffer, from: start) else {
            return failIfFinal(final, marker: marker, into: &events)
        }
        var consumed = end
        if format == .hermes {
            // The closing tag, after optional whitespace (missing at the very end: accepted).
            var j = end
            while j < buffer.count, Self.isSpace(buffer[j]) { j += 1 }
            let rest = buffer[j...]
            if rest.starts(with: Self.hermesEnd) {
                consumed = j + Self.hermesEnd.count
            } else if Self.hermesEnd.starts(with: rest) && !final {
                return false  // the tag may still come
            } else if !rest.isEmpty {
                return fail(marker: marker, consumed: end, into: &events)
            } else {
                consumed = j
            }
        }
        guard let calls = parseCalls(Array(buffer[start..<end])) else {
            return fail(marker: marker, consumed: consumed, into: &events)
        }
        events.append(contentsOf: calls.map(ToolCallEvent.toolCall))
        atStart = false
        buffer.removeSubrange(..<consumed)
        openMarker = nil
        if format == .llama3 { afterCall = true }
        return true
    }

    private mutating func failIfFinal(_ final: Bool, marker: [UInt8], into events: inout [ToolCallEvent]) -> Bool {
        guard final else { return false }
        return fail(marker: marker, consumed: buffer.count, into: &events)
    }

    /// Not a call: the marker and the bytes read as the call go out as text.
    private mutating func fail(marker: [UInt8], consumed: Int, into events: inout [ToolCallEvent]) -> Bool {
        emitText(marker + buffer[..<consumed], into: &events)
        buffer.removeSubrange(..<consumed)
        openMarker = nil
        return true
    }

    /// The calls in one JSON text, or nil when it is not a valid call (list).
    private func parseCalls(_ bytes: [UInt8]) -> [ToolCall]? {
        guard let value = try? JSONValue(parsing: bytes) else { return nil }
        let list: [JSONValue]
        if let a = value.array, format == .mistral { list = a } else { list = [value] }
        guard !list.isEmpty else { return nil }
        var calls: [ToolCall] = []
        for v in list {
            guard let name = v["name"]?.string, !name.isEmpty else { return nil }
            let args = v["arguments"] ?? v["parameters"] ?? .object(JSONObject())
            let object: JSONValue
            if args.object != nil {
                object = args
            } else if let text = args.string, let parsed = try? JSONValue(parsing: text), parsed.object != nil {
                object = parsed
            } else {
                return nil
            }
            let id = v["id"]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? makeID()
            calls.append(ToolCall(id: id, name: name, argumentsJSON: object.compactText))
        }
        return calls
    }

    /// The index after the JSON object or array that starts at `from`, or nil
    /// when it is not closed yet (brackets inside strings do not count).
    static func jsonEnd(_ bytes: [UInt8], from: Int) -> Int? {
        var depth = 0, inString = false, escaped = false
        var i = from
        while i < bytes.count {
            let b = bytes[i]
            if inString {
                if escaped {
                    escaped = false
                } else if b == UInt8(ascii: "\\") {
                    escaped = true
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                }
            } else {
                switch b {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return i + 1 }
                default: break
                }
            }
            i += 1
        }
        return nil
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        }
        return nil
    }
}
