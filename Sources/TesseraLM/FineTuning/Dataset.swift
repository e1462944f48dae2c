// Fine-tuning data as mlx-lm reads it: a folder with train.jsonl,
// valid.jsonl and test.jsonl, one example per line in one of three formats:
// chat (`messages`, optional `tools`), completions (`prompt`/`completion`,
// rendered as a user turn and an assistant turn) and `text`. Chat and
// completions go through the tokenizer's chat template; each example keeps
// the offset where its completion starts, so the prompt can be masked.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera

/// Errors reading fine-tuning data.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case invalidLine(file: String, line: Int, reason: String)
    case empty(String)

    public var description: String {
        switch self {
        case .unreadable(let why): return "cannot read the data: \(why)"
        case let .invalidLine(file, line, reason): return "\(file):\(line): \(reason)"
        case .empty(let file): return "\(file) has no examples"
        }
    }
}

/// One tokenized example: its ids, and where the part to learn starts
/// (0: all of it; with `--mask-prompt`, the first token after the prompt).
public struct TokenizedExample: Sendable, Equatable {
    public var tokens: [Int]
    public var offset: Int

    public init(tokens: [Int], offset: Int = 0) { (self.tokens, self.offset) = (tokens, offset) }
}

public enum FineTuningData {
    /// The examples of `split` (`train`, `valid`, `test`) in `folder`, tokenized.
    public static func load(
        folder: String, split: String, tokenizer: Tokenizer, maskPrompt: Bool
    ) throws -> [TokenizedExample] {
        let path = folder + "/" + split + ".jsonl"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError.unreadable("no \(split).jsonl in \(folder)")
        }
        return try parse(
            String(decoding: data, as: UTF8.self), file: path, tokenizer: tokenizer, maskPrompt: maskPrompt)
    }

    /// Whether `folder` has `split`.jsonl.
    public static func has(folder: String, split: String) -> Bool {
        FileManager.default.fileExists(atPath: folder + "/" + split + ".jsonl")
    }

    /// The examples of JSON-lines `text` (blank lines skipped).
    public static func parse(
        _ text: String, file: String = "data", tokenizer: Tokenizer, maskPrompt: Bool
    ) throws -> [TokenizedExample] {
        var out: [TokenizedExample] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { continue }
            func bad(_ reason: String) -> DatasetError { .invalidLine(file: file, line: index + 1, reason: reason) }
            let json: JSONValue
            do { json = try JSONValue(parsing: trimmed) } catch { throw bad("not JSON: \(error)") }
            do {
                out.append(try example(json, tokenizer: tokenizer, maskPrompt: maskPrompt))
            } catch DatasetError.invalidLine(_, _, let reason) {
                throw bad(reason)
            } catch {
                throw bad("\(error)")
            }
        }
        guard !out.isEmpty else { throw DatasetError.empty(file) }
        return out
    }

    /// One example in any of the three formats.
    static func example(_ json: JSONValue, tokenizer: Tokenizer, maskPrompt: Bool) throws -> TokenizedExample {
        if let messages = json["messages"]?.array {
            let tools = json["tools"]?.array
            return try chat(messages, tools: tools, tokenizer: tokenizer, maskPrompt: maskPrompt)
        }
        if let prompt = json["prompt"]?.string, let completion = json["completion"]?.string {
            let messages: [JSONValue] = [
                ["role": "user", "content": .string(prompt)], ["role": "assistant", "content": .string(completion)]
            ]
            return try chat(messages, tools: nil, tokenizer: tokenizer, maskPrompt: maskPrompt)
        }
        if let text = json["text"]?.string {
            var tokens = tokenizer.encode(text)
            if let eos = tokenizer.eosTokenID, tokens.last != eos { tokens.append(eos) }
            return TokenizedExample(tokens: tokens)
        }
        throw DatasetError.invalidLine(
            file: "", line: 0, reason: "expected \"messages\", \"prompt\"/\"completion\" or \"text\"")
    }

    /// A conversation through the chat template; with `maskPrompt`, the
    /// offset is the length of all but the last message with a generation prompt.
    static func chat(_ messages: [JSONValue], tools: [JSONValue]?, tokenizer: Tokenizer, maskPrompt: Bool) throws
        -> TokenizedExample
    {
        guard !messages.isEmpty else { throw DatasetError.invalidLine(file: "", line: 0, reason: "no messages") }
        let rendered = try tokenizer.applyChatTemplate(messages: messages, tools: tools, addGenerationPrompt: false)
        let tokens = tokenizer.encode(rendered, addSpecialTokens: false)
        guard maskPrompt else { return TokenizedExample(tokens: tokens) }
        let prompt = try tokenizer.applyChatTemplate(
            messages: Array(messages.dropLast()), tools: tools, addGenerationPrompt: true)
        return TokenizedExample(tokens: tokens, offset: tokenizer.encode(prompt, addSpecialTokens: false).count)
    }
}
