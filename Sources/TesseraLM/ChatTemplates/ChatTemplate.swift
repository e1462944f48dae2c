// ChatTemplate: a model's Jinja chat template, parsed once, rendered for a
// conversation the way transformers' apply_chat_template does (Jinja2 with
// trim_blocks and lstrip_blocks, loop controls, raise_exception,
// strftime_now, namespace, and a tojson that keeps non-ASCII text).

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera

/// A parsed Jinja chat template.
///
/// ```swift
/// let template = try ChatTemplate(tokenizer.chatTemplate!)
/// let prompt = try template.apply(
///     messages: [["role": "user", "content": "Hi!"]],
///     addGenerationPrompt: true, specialTokens: ["bos_token": "<s>"])
/// ```
public struct ChatTemplate: Sendable {
    public let source: String
    private let nodes: [Node]

    /// Parses a template; throws a `.syntax` TemplateError with the position.
    public init(_ source: String) throws(TemplateError) {
        self.source = source
        nodes = try Parser.parse(try Lexer.tokenize(source))
    }

    /// Renders with exactly the given variables.
    /// `now` feeds `strftime_now` (UTC); going past `limits` throws a `.limit` error.
    public func render(
        _ context: [String: JSONValue], now: Date = Date(), limits: TemplateLimits = .standard
    ) throws(TemplateError) -> String {
        var values: [String: Value] = [:]
        for (k, v) in context { values[k] = Value(v) }
        let interpreter = Interpreter(context: values, globals: Builtins.globals(now: { now }), limits: limits)
        return try interpreter.render(nodes)
    }

    /// Renders a conversation as transformers' `apply_chat_template` does:
    /// `messages`, `tools` (none when nil), `documents` (none),
    /// `add_generation_prompt`, then the special tokens (`bos_token`,
    /// `eos_token`...) and any extra variables (`enable_thinking`, `date_string`...).
    public func apply(
        messages: [JSONValue], tools: [JSONValue]? = nil, addGenerationPrompt: Bool = false,
        specialTokens: [String: String] = [:], extra: [String: JSONValue] = [:], now: Date = Date(),
        limits: TemplateLimits = .standard
    ) throws(TemplateError) -> String {
        var context: [String: JSONValue] = [:]
        for (k, v) in specialTokens { context[k] = .string(v) }
        for (k, v) in extra { context[k] = v }
        context["messages"] = .array(messages)
        context["tools"] = tools.map { .array($0) } ?? .null
        context["documents"] = .null
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try render(context, now: now, limits: limits)
    }
}

extension Tokenizer {
    /// Renders `messages` with the tokenizer's chat template, passing its BOS
    /// and EOS token strings as `bos_token` and `eos_token`.
    public func applyChatTemplate(
        messages: [JSONValue], tools: [JSONValue]? = nil, addGenerationPrompt: Bool = true,
        extra: [String: JSONValue] = [:]
    ) throws(TemplateError) -> String {
        guard let chatTemplate else { throw TemplateError(.undefined, "the tokenizer has no chat template") }
        var special: [String: String] = [:]
        if let id = bosTokenID, let t = token(id) { special["bos_token"] = t }
        if let id = eosTokenID, let t = token(id) { special["eos_token"] = t }
        return try ChatTemplate(chatTemplate).apply(
            messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt,
            specialTokens: special, extra: extra)
    }
}
