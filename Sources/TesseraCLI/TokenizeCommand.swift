// `tessera tokenize`: text to token ids, or ids back to text.

import ArgumentParser
import TesseraLM

struct TokenizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of --text, or the text of --ids.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Text to encode.")
    var text: String?

    @Option(help: ArgumentHelp("Token ids to decode, separated by spaces or commas.", valueName: "\"1 2 3\""))
    var ids: String?

    @Flag(help: "Add the tokenizer's special tokens (such as BOS) when encoding.")
    var addSpecial = false

    init() {}

    func validate() throws {
        switch (text, ids) {
        case (nil, nil): throw ValidationError("tokenize needs --text TEXT or --ids \"1 2 3\"")
        case (.some, .some): throw ValidationError("give --text or --ids, not both")
        default: break
        }
        if let ids { _ = try Self.parseIDs(ids) }
    }

    /// The ids of `text` ("1 2 3" or "1,2,3"), each ≥ 0.
    static func parseIDs(_ text: String) throws -> [Int] {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "," })
        guard !parts.isEmpty else { throw ValidationError("--ids: no token ids in \"\(text)\"") }
        return try parts.map { part in
            guard let id = Int(part), id >= 0 else { throw ValidationError("--ids: \(part) is not a token id") }
            return id
        }
    }

    func run() async throws {
        let tokenizer = try await modelOptions.load().generator.tokenizer
        if let text {
            print(tokenizer.encode(text, addSpecialTokens: addSpecial).map(String.init).joined(separator: " "))
        } else if let ids {
            let parsed = try Self.parseIDs(ids)
            if let bad = parsed.first(where: { $0 >= tokenizer.vocabularySize }) {
                throw CLIError("--ids: \(bad) is outside this vocabulary of \(tokenizer.vocabularySize) tokens")
            }
            print(tokenizer.decode(parsed))
        }
    }
}
