// Stop strings matched across token boundaries: text that might be the start
// of a stop string is held back until the next tokens decide it.

/// Feeds decoded text through, passing on only what cannot be (the start
/// of) a stop string; stops at the first complete one.
public struct StopStringMatcher: Sendable {
    public let stops: [String]
    /// Text received but not passed on: at most a stop string's length.
    private var pending = ""
    /// The stop string found, once one is.
    public private(set) var matched: String?

    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
    }

    /// Takes `piece`; returns the text now safe to send. After a stop
    /// string is found (`matched`), returns the text before it and then nothing.
    public mutating func append(_ piece: String) -> String {
        guard matched == nil else { return "" }
        pending += piece
        guard !stops.isEmpty else {
            defer { pending = "" }
            return pending
        }
        // The earliest complete stop string ends the text.
        var earliest: (String.Index, String)?
        for stop in stops {
            if let range = pending.firstRange(of: stop), earliest.map({ range.lowerBound < $0.0 }) ?? true {
                earliest = (range.lowerBound, stop)
            }
        }
        if let (at, stop) = earliest {
            matched = stop
            defer { pending = "" }
            return String(pending[..<at])
        }
        // Hold back the longest end of the text that begins some stop string.
        var hold = 0
        for stop in stops {
            var n = min(stop.count - 1, pending.count)
            while n > hold {
                if pending.hasSuffix(stop.prefix(n)) {
                    hold = n
                    break
                }
                n -= 1
            }
        }
        let cut = pending.index(pending.endIndex, offsetBy: -hold)
        defer { pending = String(pending[cut...]) }
        return String(pending[..<cut])
    }

    /// The text held back, at the end of the sequence (no stop string followed).
    public mutating func finish() -> String {
        guard matched == nil else { return "" }
        defer { pending = "" }
        return pending
    }
}
