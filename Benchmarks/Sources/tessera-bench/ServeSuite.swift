// The serve suite: the batched engine (TesseraLM's BatchedEngine, what
// `tessera serve` runs) at 1, 4, 8 and 16 concurrent requests, each a
// 64-token prompt (distinct per request, no prefix cache) and 128 generated
// tokens (greedy, no stop tokens). Reported per concurrency: aggregate
// generated tok/s (all requests' tokens over the wall time from submitting
// them to the last one finishing), and the median and 99th percentile time
// to first token over all requests of all repetitions; beside them the
// plain single-stream decode (`TokenGenerator`, as `tessera generate`) of the
// same model in the same run (with its replayed decode step, as `tessera
// generate`), and each aggregate's ratio to both single-stream figures:
// TokenGenerator's and the engine's own at 1. Quantized products at .high,
// as `tessera generate`.
//
//   swift run -c release --package-path Benchmarks tessera-bench serve
//   TESSERA_BENCH_MODEL  the GGUF (default: the cached default model)
//   TESSERA_BENCH_REPS   repetitions per concurrency (default 3)
//   TESSERA_BENCH_SERVE_CONCURRENCY  comma-separated concurrencies (default 1,4,8,16;
//                        e.g. 8 alone, to profile one batch size)
//   TESSERA_BENCH_LLAMA_PYTHON  a python with llama_cpp[server]: the peer, llama-cpp-python's
//                        server over HTTP (Tools/bench_serve.py --skip-tessera, fair settings,
//                        2 threads, the same GGUF) at 1 and 8 concurrent, after the engine
//                        in the same run (TESSERA_BENCH_NO_PEERS skips it)
//   TESSERA_BENCH_SERVE_GRAPH=1  decode passes build their graphs (BatchedEngine's
//                        replayDecode off), for a before/after of the replayed step

import Foundation
import Tessera
import TesseraLM

private let servePromptLength = 64
private let serveTokens = 128

/// Per request: seconds to its first token; and the wall time of the batch.
private func serveRound(_ engine: BatchedEngine, prompts: [[Int]]) async throws -> (
    ttft: [Double], wall: Double, tokens: Int
) {
    let start = DispatchTime.now().uptimeNanoseconds
    let streams = try prompts.map { try engine.submit(EngineRequest(promptTokens: $0, maxTokens: serveTokens)) }
    return try await withThrowingTaskGroup(of: (Double, Int).self) { group in
        for stream in streams {
            group.addTask {
                var first: Double?
                var count = 0
                for try await event in stream {
                    if case .token = event {
                        count += 1
                        if first == nil { first = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }
                    }
                }
                return (first ?? .infinity, count)
            }
        }
        var ttft: [Double] = []
        var tokens = 0
        for try await (t, n) in group {
            ttft.append(t)
            tokens += n
        }
        return (ttft, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9, tokens)
    }
}

private func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s[min(s.count - 1, Int((p * Double(s.count - 1)).rounded()))]
}

func runServeSuite() {
    let env = ProcessInfo.processInfo.environment
    guard let path = env["TESSERA_BENCH_MODEL"] ?? DefaultModel.cachedPath() else {
        print("serve suite: no model (set TESSERA_BENCH_MODEL, or fetch the default with `swift run tessera generate`)")
        return
    }
    let reps = max(1, Int(env["TESSERA_BENCH_REPS"] ?? "") ?? 3)
    let levels = (env["TESSERA_BENCH_SERVE_CONCURRENCY"] ?? "1,4,8,16").split(separator: ",")
        .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { (1...16).contains($0) }
    let concurrencies = levels.isEmpty ? [1, 4, 8, 16] : levels
    let loaded: LoadedModel
    let base: [Int]
    do {
        loaded = try ModelLoader.load(path)
        base = promptIDs(try loaded.tokenizer(), count: servePromptLength + 32)
    } catch {
        print("serve suite: cannot load \(path): \(error)")
        return
    }
    QuantizedMatmulPrecision.current = .high
    // Distinct prompts: windows of the text at different starts.
    let prompts = (0..<16).map { Array(base[($0 * 2)..<($0 * 2 + servePromptLength)]) }
    print("serve suite: \(path)")
    print(
        "\(servePromptLength)-token prompts, \(serveTokens) greedy tokens each (no stop), prefix cache off, \(reps) repetitions;"
            + " Tessera \(_CPUKernels.threadCount) threads")
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var lines: [String] = []
    nonisolated(unsafe) var failure: (any Error)?
    nonisolated(unsafe) var ourRateAt8: Double?
    Task {
        defer { done.signal() }
        do {
            var configuration = BatchedEngine.Configuration()
            configuration.prefixCacheBytes = 0
            configuration.maxConcurrency = 16
            configuration.replayDecode = env["TESSERA_BENCH_SERVE_GRAPH"] != "1"
            let engine = try BatchedEngine(model: loaded.model, configuration: configuration)
            _ = try await serveRound(engine, prompts: [Array(prompts[0].prefix(8))])  // warm-up
            // Single-stream decode through the plain generation loop, for the ratio.
            var single: [Double] = []
            var parameters = GenerateParameters()
            parameters.sampling = .greedy
            parameters.maxTokens = serveTokens
            var byConcurrency: [Int: (rates: [Double], ttft: [Double])] = [:]
            for _ in 0..<reps {
                var generator = try TokenGenerator(model: loaded.model, prompt: prompts[0], parameters: parameters)
                let t0 = DispatchTime.now().uptimeNanoseconds
                var n = 0
                while try generator.next() != nil { n += 1 }
                single.append(Double(n) / (Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9))
                for c in concurrencies {
                    let round = try await serveRound(engine, prompts: Array(prompts.prefix(c)))
                    byConcurrency[c, default: ([], [])].rates.append(Double(round.tokens) / round.wall)
                    byConcurrency[c, default: ([], [])].ttft += round.ttft
                }
            }
            await engine.shutdown()
            let singleRate = median(single)
            lines.append(String(format: "single-stream decode (TokenGenerator): %.1f tok/s", singleRate))
            lines.append("")
            // Two single-stream figures for the ratio: TokenGenerator (the replayed decode step) and the engine at 1.
            let engineAt1 = byConcurrency[1].map { median($0.rates) }
            lines.append(
                "| concurrent | aggregate tok/s | × single-stream (TokenGenerator) | × engine at 1 | TTFT p50 | TTFT p99 |"
            )
            lines.append("|---|---|---|---|---|---|")
            for c in concurrencies {
                guard let figures = byConcurrency[c] else { continue }
                let rate = median(figures.rates)
                if c == 8 { ourRateAt8 = rate }
                let perEngine = engineAt1.map { String(format: "%.2f×", rate / $0) } ?? "-"
                lines.append(
                    String(format: "| %d | %.1f | %.2f× | ", c, rate, rate / singleRate) + perEngine
                        + String(
                            format: " | %.0f ms | %.0f ms |", percentile(figures.ttft, 0.5) * 1000,
                            percentile(figures.ttft, 0.99) * 1000))
            }
        } catch {
            failure = error
        }
    }
    done.wait()
    if let failure { print("serve suite: failed: \(failure)") }
    for line in lines { print(line) }
    guard env["TESSERA_BENCH_NO_PEERS"] == nil, let python = env["TESSERA_BENCH_LLAMA_PYTHON"] else { return }
    let peer = llamaServerPeer(python: python, model: path)
    print(peer.output, terminator: "")
    if let theirs = peer.rateAt8, let ours = ourRateAt8 {
        print(String(format: "engine at 8 / llama-cpp-python server at 8: %.2f×", ours / theirs))
    }
}

/// llama-cpp-python's server (fair settings) at 1 and 8 concurrent, through
/// Tools/bench_serve.py: its report, and its aggregate tok/s at 8.
private func llamaServerPeer(python: String, model: String) -> (output: String, rateAt8: Double?) {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Tools/bench_serve.py")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
        "python3", script.path, "--skip-tessera", "--llama-python", python, "--model", model, "--concurrency", "1,8",
        "--rounds", "1", "--max-tokens", String(serveTokens), "--llama-settings", "fair"
    ]
    let pipe = Pipe()
    process.standardOutput = pipe
    do { try process.run() } catch { return ("llama-cpp-python server: \(error)\n", nil) }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let output = String(decoding: data, as: UTF8.self)
    // "llama-cpp  concurrency  8:   105.8 tok/s aggregate, ..."
    let rate = output.split(separator: "\n").first { $0.contains("concurrency  8:") }
        .flatMap { line in line.split(separator: ":").dropFirst().first }
        .flatMap { Double($0.split(separator: " ").first ?? "") }
    return (output, rate)
}
