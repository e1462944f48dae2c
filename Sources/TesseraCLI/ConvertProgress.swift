// What `tessera convert` shows while it writes: on a terminal, one bar redrawn
// in place (percent of bytes, tensors, bytes, the tensor being written);
// elsewhere (a pipe, a log), a line at each tenth of the bytes.

import TesseraLM

final class ConvertProgress {
    private let write: (String) -> Void
    private let terminal: Bool
    private let clock = ContinuousClock()
    private var lastDraw: ContinuousClock.Instant?
    private var lastTenth = 0
    private var drewLine = false

    /// - Parameters:
    ///   - terminal: redraw one line in place (a TTY) or print a line per tenth.
    ///   - write: where text goes (stderr in the CLI); lines end in "\n", redraws start with "\r".
    init(terminal: Bool, write: @escaping (String) -> Void) {
        self.terminal = terminal
        self.write = write
    }

    func update(_ p: ModelConverter.Progress) {
        let fraction = p.byteCount > 0 ? Double(p.bytesWritten) / Double(p.byteCount) : 1
        if terminal {
            let now = clock.now
            let last = p.tensorsWritten == p.tensorCount
            if !last, let lastDraw, now - lastDraw < .milliseconds(100) { return }
            lastDraw = now
            write("\r\u{1B}[2K" + Self.bar(fraction, width: 24) + "  " + Self.counts(p) + "  " + p.tensor)
            drewLine = true
        } else {
            let tenth = Int(fraction * 10)
            guard tenth > lastTenth || (p.tensorsWritten == p.tensorCount && lastTenth < 10) else { return }
            lastTenth = max(tenth, p.tensorsWritten == p.tensorCount ? 10 : tenth)
            write("converting: " + Self.counts(p) + "\n")
        }
    }

    /// Clears the redrawn line (before the summary is printed).
    func end() {
        if terminal && drewLine { write("\r\u{1B}[2K") }
        drewLine = false
    }

    /// "[##########..............] 42%".
    static func bar(_ fraction: Double, width: Int) -> String {
        let f = min(max(fraction, 0), 1)
        let filled = Int((f * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + "\(Int((f * 100).rounded(.down)))%"
    }

    /// "120/272 tensors, 40.1 MB / 94.0 MB".
    static func counts(_ p: ModelConverter.Progress) -> String {
        "\(p.tensorsWritten)/\(p.tensorCount) tensors, \(megabytes(p.bytesWritten)) / \(megabytes(p.byteCount))"
    }

    static func megabytes(_ n: Int) -> String {
        String(Double((n + 50_000) / 100_000) / 10) + " MB"
    }
}
