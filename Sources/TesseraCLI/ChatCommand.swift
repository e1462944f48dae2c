// `tessera chat`: an interactive conversation on the terminal.

import ArgumentParser
import TesseraLM

struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Talk with the model, one message per line.",
        discussion: """
            Commands at the prompt: \(ChatLine.helpText)

            \(EnvironmentVariables.help)
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions

    init() {}

    func run() async throws {
        let (generator, _, path) = try modelOptions.load()
        let parameters = try GenerationSetup.parameters(sampling, modelPath: path, verbose: modelOptions.verbose)
        let system = sampling.system.map { ChatMessage(role: "system", content: $0) }
        var history: [ChatMessage] = system.map { [$0] } ?? []
        printError("chat: type a message; /help lists the commands, /exit or Ctrl-D leaves")
        while true {
            print("> ", terminator: "")
            flushStandardOutput()
            guard let line = readLine() else {
                print()  // Ctrl-D: end the prompt's line before the shell's comes back
                return
            }
            switch ChatLine(line) {
            case .empty: continue
            case .exit: return
            case .help: printError(ChatLine.helpText)
            case .reset:
                history = system.map { [$0] } ?? []
                printError("(the conversation is forgotten)")
            case .unknownCommand(let name): printError("unknown command \(name); \(ChatLine.helpText)")
            case .message(let text):
                history.append(ChatMessage(role: "user", content: text))
                let tokens = try generator.promptTokens(messages: history)
                let reply = try await Streaming.stream(
                    generator.generate(prompt: tokens, parameters: parameters), promptTokens: tokens.count)
                if modelOptions.verbose { printError(Streaming.summary(reply)) }
                history.append(ChatMessage(role: "assistant", content: reply.text))
            }
        }
    }
}

/// One line typed at the chat prompt.
enum ChatLine: Equatable {
    case empty, exit, help, reset
    case unknownCommand(String)
    case message(String)

    static let helpText = "/help shows this, /reset forgets the conversation, /exit or /quit (or Ctrl-D) leaves"

    init(_ line: String) {
        let trimmed = String(line.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        switch trimmed {
        case "": self = .empty
        case "/exit", "/quit": self = .exit
        case "/help", "/?": self = .help
        case "/reset", "/clear": self = .reset
        default:
            if trimmed.hasPrefix("/"), !trimmed.contains(" ") {
                self = .unknownCommand(trimmed)
            } else {
                self = .message(line)
            }
        }
    }
}
