// Printing a generation as it streams, and its statistics.

import TesseraLM

/// Prints a reply's text as it comes and keeps what it came to.
struct ReplyPrinter {
    var text = ""
    var stats = GenerationStats()
    /// Seconds from the request to the first generated token.
    var timeToFirstToken: Double?
    var promptTokens = 0
    var cachePath: String?
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant

    init(promptTokens: Int = 0, cachePath: String? = nil) {
        self.promptTokens = promptTokens
        self.cachePath = cachePath
        start = clock.now
    }

    mutating func handle(_ event: GenerationEvent) {
        switch event {
        case .text(let piece):
            text += piece
            print(piece, terminator: "")
            flushStandardOutput()
        case .token:
            if timeToFirstToken == nil { timeToFirstToken = (clock.now - start).seconds }
        case .promptCache(.reused(let n)):
            printError("prompt cache: reused \(n) of \(promptTokens) prompt tokens")
        case .promptCache(.saved(let n)):
            printError("prompt cache: saved \(n) prompt tokens to \(cachePath ?? "")")
        case .done(let s):
            stats = s
        }
    }

    /// Ends the reply's line.
    func finish() {
        print()
        flushStandardOutput()
    }

    /// One line of statistics for stderr.
    var summary: String {
        let s = stats
        let ttft = timeToFirstToken.map { "time to first token \(formatted($0 * 1000)) ms; " } ?? ""
        return "prompt: \(s.promptTokens) tokens, \(formatted(s.promptTokensPerSecond)) tok/s; "
            + "generation: \(s.generatedTokens) tokens, \(formatted(s.tokensPerSecond)) tok/s; "
            + ttft + "peak memory \(formatted(Double(s.peakMemory) / 1_048_576)) MiB"
    }
}
