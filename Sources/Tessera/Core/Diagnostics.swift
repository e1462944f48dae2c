// Tessera's diagnostics, through swift-log: a backend running an op elsewhere
// (the CUDA fallback to the CPU), a fused kernel that failed to build, a
// compiler missing. A program chooses where they go with
// `LoggingSystem.bootstrap` (swift-log's default writes them to stderr), and
// how many with `Diagnostics.logger.logLevel`.

import Logging

/// The logger Tessera's libraries write their diagnostics to (label "tessera").
public enum Diagnostics {
    private static let shared = Locked<Logger>(Logger(label: "tessera"))

    /// Replace it to send Tessera's diagnostics to another handler or level.
    public static var logger: Logger {
        get { shared.withLock { $0 } }
        set { shared.withLock { $0 = newValue } }
    }

    /// Logs `message` at warning level under `topic` (metadata "topic"), the first
    /// time `topic` comes up in this process only; whether it was logged now.
    @discardableResult
    static func warnOnce(_ topic: String, _ message: @autoclosure () -> String) -> Bool {
        guard warned.withLock({ $0.insert(topic).inserted }) else { return false }
        logger.warning("\(message())", metadata: ["topic": "\(topic)"])
        return true
    }

    private static let warned = Locked<Set<String>>([])
}
