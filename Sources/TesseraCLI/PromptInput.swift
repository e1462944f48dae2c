// Where generate's prompt comes from: --prompt TEXT, or standard input for
// `--prompt -` or when no --prompt is given and input is piped.

#if canImport(Glibc)
    import Glibc
#endif

enum PromptInput {
    /// Whether the prompt is read from standard input.
    static func readsStandardInput(option: String?, inputIsTerminal: Bool) -> Bool {
        option == "-" || (option == nil && !inputIsTerminal)
    }

    /// The prompt: `option`'s text, or what `readInput` returns when it names
    /// standard input (its trailing newlines dropped). Throws for an empty one.
    static func resolve(option: String?, inputIsTerminal: Bool, readInput: () -> String) throws -> String {
        guard readsStandardInput(option: option, inputIsTerminal: inputIsTerminal) else {
            guard let option else { throw CLIError("no prompt: pass --prompt TEXT, or pipe it in (or --prompt -)") }
            return option
        }
        var text = readInput()
        while let last = text.last, last.isNewline { text.removeLast() }
        guard !text.allSatisfy(\.isWhitespace) else { throw CLIError("the prompt read from standard input is empty") }
        return text
    }

    /// Everything on standard input, as UTF-8 text (invalid bytes replaced).
    static func readStandardInput() -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes.append(contentsOf: chunk[0..<n])
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
