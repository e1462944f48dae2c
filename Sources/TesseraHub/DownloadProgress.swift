// What a download shows: on a terminal, one line redrawn in place (files done,
// bytes, rate, time left, the file being fetched); elsewhere (a pipe, a log),
// one line per file when it lands, and a line for each retry.

import Foundation

/// Collects download events from concurrent tasks and renders them through `write`.
public final class DownloadProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let write: @Sendable (String) -> Void
    private let terminal: Bool
    private let label: String
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    private var lastDraw: ContinuousClock.Instant?
    private var totals: [String: Int64] = [:]
    private var received: [String: Int64] = [:]
    private var resumed: [String: Int64] = [:]
    private var fileStart: [String: ContinuousClock.Instant] = [:]
    private var order: [String] = []
    private var finished = 0
    private var drewLine = false

    /// - Parameters:
    ///   - label: what is being fetched (the repo id), shown on each line.
    ///   - terminal: redraw one line in place (a TTY) or print a line per file.
    ///   - write: where text goes (stderr in the CLI); lines end in "\n", redraws start with "\r".
    public init(label: String, terminal: Bool, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.terminal = terminal
        self.write = write
        started = clock.now
    }

    /// A file's transfer starts (`resumedFrom` bytes already there). Public, as
    /// `advance` and `finish`, for downloads made elsewhere (the default model's, by pip).
    public func begin(file: String, total: Int64?, resumedFrom: Int64) {
        lock.withLock {
            if totals[file] == nil { order.append(file) }
            totals[file] = total ?? 0
            received[file] = resumedFrom
            resumed[file] = resumedFrom
            fileStart[file] = clock.now
            if !terminal && resumedFrom > 0 {
                emitLine("\(label): resuming \(file) at \(Self.bytes(resumedFrom))")
            }
            drawIfDue(force: true)
        }
    }

    public func advance(file: String, bytes: Int64) {
        lock.withLock {
            received[file, default: 0] += bytes
            drawIfDue(force: false)
        }
    }

    /// The server ignored the Range request and sends the file from its start.
    func restart(file: String) {
        lock.withLock {
            received[file] = 0
            resumed[file] = 0
        }
    }

    func retry(file: String, attempt: Int, reason: String) {
        lock.withLock { emitLine("\(label): \(file): \(reason); retrying (attempt \(attempt))") }
    }

    /// A file that landed in the cache (`downloaded`: fetched now rather than found there;
    /// files found in the cache show nothing).
    public func finish(file: String, downloaded: Bool) {
        guard downloaded else { return }
        lock.withLock {
            finished += 1
            let size = received[file] ?? 0
            let seconds = fileStart[file].map { (clock.now - $0).seconds } ?? 0
            let fetched = size - (resumed[file] ?? 0)
            let rate = seconds > 0 ? " at \(Self.bytes(Int64(Double(fetched) / seconds)))/s" : ""
            if terminal {
                drawIfDue(force: true)
            } else {
                emitLine("\(label): fetched \(file) (\(Self.bytes(size))\(rate))")
            }
        }
    }

    /// Ends the display: clears the redrawn line and, after a download that completed,
    /// prints a summary line.
    public func end(completed: Bool = true) {
        lock.withLock {
            let fetched = order.reduce(Int64(0)) { $0 + (received[$1] ?? 0) - (resumed[$1] ?? 0) }
            if terminal && drewLine {
                write("\r\u{1B}[2K")
                drewLine = false
            }
            guard completed, !order.isEmpty else { return }
            let seconds = (clock.now - started).seconds
            emitLine(
                "\(label): \(order.count) file\(order.count == 1 ? "" : "s"), \(Self.bytes(fetched)) in "
                    + String(format: "%.1f", seconds) + " s")
        }
    }

    // MARK: - Rendering (under the lock)

    private func emitLine(_ text: String) {
        if terminal && drewLine {
            write("\r\u{1B}[2K")
            drewLine = false
        }
        write(text + "\n")
    }

    private func drawIfDue(force: Bool) {
        guard terminal else { return }
        let now = clock.now
        if !force, let last = lastDraw, now - last < .milliseconds(100) { return }
        lastDraw = now
        write("\r\u{1B}[2K" + statusLine(now: now))
        drewLine = true
    }

    /// "ORG/NAME  2/5 files  45.2 MB / 270.1 MB  12.3 MB/s  ETA 0:18  model.safetensors".
    func statusLine(now: ContinuousClock.Instant) -> String {
        let total = totals.values.reduce(0, +)
        let have = received.values.reduce(0, +)
        let fetched = have - resumed.values.reduce(0, +)
        let seconds = (now - started).seconds
        let rate = seconds > 0 ? Double(fetched) / seconds : 0
        var line = "\(label)  \(finished)/\(order.count) files  \(Self.bytes(have))"
        if total > 0 { line += " / \(Self.bytes(total))" }
        line += "  \(Self.bytes(Int64(rate)))/s"
        if total > have, rate > 0 { line += "  ETA " + Self.clockTime(Double(total - have) / rate) }
        if let current = order.last(where: { (received[$0] ?? 0) < (totals[$0] ?? 0) }) { line += "  " + current }
        return line
    }

    /// "93.2 MB"-style (decimal units, as the hub shows sizes).
    static func bytes(_ n: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(max(n, 0)), unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(max(n, 0)) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// "1:05" or "1:02:03".
    static func clockTime(_ seconds: Double) -> String {
        let s = Int(min(seconds, 359_999).rounded())
        let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, sec) : String(format: "%d:%02d", m, sec)
    }
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
