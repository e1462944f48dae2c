// Ctrl-C in chat: while a reply is generated, it stops the reply and returns
// to the prompt; at the prompt, a second Ctrl-C in a row leaves.

import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

enum Interrupts {
    enum State: Int {
        case atPrompt, atPromptInterruptedOnce, generating, generatingInterrupted
    }

    private static let state = Atomic<Int>(State.atPrompt.rawValue)

    /// Installs the SIGINT handler (after the model has loaded: Ctrl-C while
    /// loading still ends the process at once).
    static func install() {
        signal(SIGINT) { _ in Interrupts.received() }
    }

    static func set(_ new: State) { state.store(new.rawValue, ordering: .sequentiallyConsistent) }

    /// Whether Ctrl-C was pressed since the reply began.
    static var replyInterrupted: Bool {
        state.load(ordering: .sequentiallyConsistent) == State.generatingInterrupted.rawValue
    }

    /// The handler's work: only atomics and write(2), which are async-signal-safe.
    private static func received() {
        switch State(rawValue: state.load(ordering: .sequentiallyConsistent)) {
        case .generating, .generatingInterrupted:
            set(.generatingInterrupted)
        case .atPromptInterruptedOnce:
            write(1, "\n", 1)
            _exit(130)
        case .atPrompt, nil:
            set(.atPromptInterruptedOnce)
            let hint = "\n(Ctrl-C again, /exit or Ctrl-D leaves)\n> "
            _ = hint.withCString { write(1, $0, strlen($0)) }
        }
    }
}

/// Thrown from the event callback to stop a reply on Ctrl-C.
struct ReplyInterrupted: Error {}
