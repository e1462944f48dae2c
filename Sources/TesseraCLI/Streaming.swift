// Printing a generation as it streams, and its statistics.

import TesseraLM

/// What one streamed reply came to.
struct StreamedReply {
    var text = ""
    var stats = GenerationStats()
    /// Seconds from the request to the first generated token.
    var timeToFirstToken: Double?
}

enum Streaming {
    /// Streams one generation's text to stdout as it is made.
    static func stream(_ events: AsyncThrowingStream<GenerationEvent, Error>, promptTokens: Int, cachePath: String? = nil)
        async throws -> StreamedReply
    {
        let clock = ContinuousClock()
        let start = clock.now
        var reply = StreamedReply()
        for try await event in events {
            switch event {
            case .text(let piece):
                reply.text += piece
                print(piece, terminator: "")
                flushStandardOutput()
            case .token:
                if reply.timeToFirstToken == nil { reply.timeToFirstToken = (clock.now - start).seconds }
            case .promptCache(.reused(let n)):
                printError("prompt cache: reused \(n) of \(promptTokens) prompt tokens")
            case .promptCache(.saved(let n)):
                printError("prompt cache: saved \(n) prompt tokens to \(cachePath ?? "")")
            case .done(let s):
                reply.stats = s
            }
        }
        print()
        flushStandardOutput()
        return reply
    }

    /// One line of statistics for stderr.
    static func summary(_ reply: StreamedReply) -> String {
        let s = reply.stats
        let ttft = reply.timeToFirstToken.map { "time to first token \(formatted($0 * 1000)) ms; " } ?? ""
        return "prompt: \(s.promptTokens) tokens, \(formatted(s.promptTokensPerSecond)) tok/s; "
            + "generation: \(s.generatedTokens) tokens, \(formatted(s.tokensPerSecond)) tok/s; "
            + ttft + "peak memory \(formatted(Double(s.peakMemory) / 1_048_576)) MiB"
    }
}
