// `tessera chat`: an interactive conversation on the terminal. The caches are
// kept between turns, so each turn computes only the new message.

import ArgumentParser
import TesseraLM

struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Talk with the model, one message per line.",
        discussion: """
            Commands at the prompt: \(ChatLine.helpText). Ctrl-C stops a reply and returns \
            to the prompt; at the prompt, a second Ctrl-C leaves. The conversation's keys and \
            values are kept between turns, so each turn computes only the new message.

            \(EnvironmentVariables.help)
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var adapter: AdapterOptions
    @OptionGroup var sampling: SamplingOptions

    init() {}

    func run() async throws {
        // Under `tessera launch -n N`: the model split over the ranks; rank 0
        // reads the lines and prints, and Ctrl-C (passed to every rank) ends the run.
        let ranks = try LaunchedRanks.start()
        try ranks.refuse(adapter: adapter.adapterPath, promptCache: nil)
        let (generator, loaded, path) = try await modelOptions.load(tensorParallel: ranks.tensorParallel)
        _ = try adapter.apply(to: loaded, verbose: modelOptions.verbose)
        var parameters = try GenerationSetup.parameters(sampling, modelPath: path, verbose: modelOptions.verbose)
        parameters.sampling.seed = try ranks.sharedSeed(parameters.sampling.seed)
        var session = ChatSession(generator: generator, parameters: parameters, system: sampling.system)
        if ranks.group.rank == 0 {
            printError(
                "chat: type a message; /help lists the commands, /exit or Ctrl-D leaves; "
                    + (ranks.isParallel ? "Ctrl-C ends the run" : "Ctrl-C stops a reply"))
        }
        if !ranks.isParallel { Interrupts.install() }
        while true {
            print("> ", terminator: "")
            flushStandardOutput()
            Interrupts.set(.atPrompt)
            guard let line = try ranks.shared({ readLine() }) else {
                print()  // Ctrl-D: end the prompt's line before the shell's comes back
                return
            }
            switch ChatLine(line) {
            case .empty: continue
            case .exit: return
            case .help: printError(ChatLine.helpText)
            case .reset:
                session.reset()
                printError("(the conversation is forgotten)")
            case .unknownCommand(let name): printError("unknown command \(name); \(ChatLine.helpText)")
            case .message(let text):
                var printer = ReplyPrinter()
                Interrupts.set(.generating)
                do {
                    let reply = try await session.respond(to: text) { event in
                        if Interrupts.replyInterrupted { throw ReplyInterrupted() }
                        printer.handle(event)
                    }
                    printer.finish()
                    if reply.droppedMessages > 0 {
                        printError(
                            "(the conversation outgrew the model's context: "
                                + "its oldest \(reply.droppedMessages) messages are dropped)")
                    }
                    if modelOptions.verbose { printError(printer.summary) }
                } catch is ReplyInterrupted {
                    printer.finish()
                    printError("(stopped; the message and the partial reply are dropped)")
                } catch {
                    // The turn is dropped; the conversation before it stays.
                    printer.finish()
                    printError("Error: \(error) (/reset starts a new conversation)")
                }
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
