// /metrics in the Prometheus text format (0.0.4), written by hand: request
// counts by route and status, time-to-first-token and inter-token
// histograms, and the engine's counters from its snapshot.

import Synchronization
import TesseraLM

/// A cumulative histogram with fixed upper bounds (seconds).
struct Histogram: Sendable {
    let bounds: [Double]
    var counts: [Int]
    var sum = 0.0
    var count = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    mutating func observe(_ value: Double) {
        for (i, bound) in bounds.enumerated() where value <= bound { counts[i] += 1 }
        sum += value
        count += 1
    }

    func render(name: String, help: String) -> String {
        var out = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (bound, n) in zip(bounds, counts) { out += "\(name)_bucket{le=\"\(bound)\"} \(n)\n" }
        out += "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(sum)\n\(name)_count \(count)\n"
        return out
    }
}

/// The server's counters, shared by every request.
public final class ServerMetrics: Sendable {
    struct State {
        var requests: [String: Int] = [:]  // "route|status"
        var timeToFirstToken = Histogram(bounds: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
        var interToken = Histogram(bounds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5])
        var streamsCancelled = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// The routes counted by name; anything else is "other" (bounded labels).
    static let routes: Set<String> = [
        "/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/messages", "/v1/messages/count_tokens", "/health",
        "/metrics"
    ]

    func recordRequest(route: String, status: Int) {
        let label = Self.routes.contains(route) ? route : "other"
        state.withLock { $0.requests["\(label)|\(status)", default: 0] += 1 }
    }

    func observeTimeToFirstToken(_ seconds: Double) { state.withLock { $0.timeToFirstToken.observe(seconds) } }
    func observeInterToken(_ seconds: Double) { state.withLock { $0.interToken.observe(seconds) } }
    func recordCancelledStream() { state.withLock { $0.streamsCancelled += 1 } }

    /// Requests answered with `status` so far, all routes together.
    public func requests(status: Int) -> Int {
        state.withLock { s in s.requests.filter { $0.key.hasSuffix("|\(status)") }.values.reduce(0, +) }
    }

    /// The exposition text, with the engine's `snapshot`.
    public func render(_ snapshot: EngineSnapshot) -> String {
        let s = state.withLock { $0 }
        var out = "# HELP tessera_requests_total HTTP requests answered, by route and status.\n"
        out += "# TYPE tessera_requests_total counter\n"
        for key in s.requests.keys.sorted() {
            let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
            guard parts.count == 2, let n = s.requests[key] else { continue }
            out += "tessera_requests_total{route=\"\(parts[0])\",status=\"\(parts[1])\"} \(n)\n"
        }
        func gauge(_ name: String, _ help: String, _ value: Int, type: String = "gauge") {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        gauge("tessera_active_sequences", "Sequences generating now.", snapshot.activeSequences)
        gauge("tessera_queued_sequences", "Sequences waiting for the engine.", snapshot.queuedSequences)
        gauge("tessera_kv_cache_bytes", "Bytes of key/value caches of the active sequences.", snapshot.kvCacheBytes)
        gauge("tessera_prefix_cache_bytes", "Bytes held by the prefix cache.", snapshot.prefixCacheBytes)
        gauge(
            "tessera_prefix_cache_hit_tokens_total", "Prompt tokens whose keys/values came from the prefix cache.",
            snapshot.prefixCacheHitTokens, type: "counter")
        gauge("tessera_prompt_tokens_total", "Prompt tokens prefilled.", snapshot.promptTokensTotal, type: "counter")
        gauge("tessera_generated_tokens_total", "Tokens generated.", snapshot.generatedTokensTotal, type: "counter")
        gauge(
            "tessera_replayed_steps_total",
            "Batched-engine passes that replayed the captured decode step (no graph built; 0 for --engine serial).",
            snapshot.replayedDecodeSteps, type: "counter")
        gauge(
            "tessera_cancelled_streams_total", "Requests (streamed or not) whose client went away before the end.",
            s.streamsCancelled,
            type: "counter")
        out += s.timeToFirstToken.render(
            name: "tessera_time_to_first_token_seconds", help: "From the request to its first generated token.")
        out += s.interToken.render(
            name: "tessera_inter_token_seconds", help: "Between consecutive tokens of a sequence.")
        return out
    }
}
