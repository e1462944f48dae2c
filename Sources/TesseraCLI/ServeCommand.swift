// `tessera serve`: the OpenAI- and Anthropic-compatible HTTP server over one
// model (TesseraServer), on loopback unless --host says otherwise.

import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import TesseraLM
import TesseraServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over HTTP with OpenAI- and Anthropic-compatible APIs.",
        discussion: """
            Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models (OpenAI); \
            POST /v1/messages, POST /v1/messages/count_tokens (Anthropic); GET /health; GET /metrics \
            (Prometheus). Listens on 127.0.0.1 unless --host says otherwise; SIGTERM or Ctrl-C ends \
            the open streams and exits 0. The model is served under its file or folder name.

            \(EnvironmentVariables.help)
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var adapter: AdapterOptions

    @Option(help: "The address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0: any free port, printed at start).")
    var port = 8080

    @Option(help: "The engine: batched (continuous batching, prefix cache) or serial (one sequence at a time).")
    var engine: EngineKind = .batched

    @Option(help: "Sequences generated at once by the batched engine (the serial engine runs 1).")
    var maxConcurrency = 8

    @Option(help: "Requests waiting beyond the running ones before the server answers 429 (≥ 0).")
    var maxQueue = 64

    @Option(help: "At most this many positions (prompt + reply) per request (default: the model's context).")
    var maxContext: Int?

    @Option(help: "Require this key (Authorization: Bearer KEY, or x-api-key: KEY) on every route but /health.")
    var apiKey: String?

    @Option(help: ArgumentHelp("Allow browsers from this origin (CORS; * for any).", valueName: "origin"))
    var corsOrigin: String?

    @Option(help: "Bytes kept by the prefix cache (batched engine; 0: none; the serial engine keeps none).")
    var promptCacheBytes = 512 << 20

    @Option(help: "Bytes of key/value cache the running sequences may reserve (batched engine).")
    var kvCacheBytes = 2 << 30

    @Option(
        help: ArgumentHelp(
            "How the key/value cache stores keys and values: f16 (half the bytes a step reads, as llama.cpp's default) or f32.",
            valueName: "type"))
    var kvCacheType: KVCacheType = .f16

    @Option(help: "The largest request body accepted, in bytes (larger: 413).")
    var maxBodyBytes = 4 << 20

    @Option(help: "The name the model is served under (default: its file or folder name).")
    var modelName: String?

    init() {}

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard maxConcurrency >= 1 else {
            throw ValidationError("--max-concurrency must be at least 1, got \(maxConcurrency)")
        }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must be ≥ 0, got \(maxQueue)") }
        if let maxContext, maxContext < 2 {
            throw ValidationError("--max-context must be at least 2, got \(maxContext)")
        }
        guard kvCacheBytes >= 1 << 20 else {
            throw ValidationError("--kv-cache-bytes must be at least 1048576, got \(kvCacheBytes)")
        }
        guard promptCacheBytes >= 0 else {
            throw ValidationError("--prompt-cache-bytes must be ≥ 0, got \(promptCacheBytes)")
        }
        guard maxBodyBytes >= 1024 else {
            throw ValidationError("--max-body-bytes must be at least 1024, got \(maxBodyBytes)")
        }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
        if let corsOrigin, corsOrigin.isEmpty { throw ValidationError("--cors-origin must not be empty") }
        if let modelName, modelName.isEmpty { throw ValidationError("--model-name must not be empty") }
    }

    func run() async throws {
        // Under `tessera launch -n N`: the model split over the ranks; rank 0 serves (LaunchedRanks.swift).
        let ranks = try LaunchedRanks.start()
        try ranks.refuse(adapter: adapter.adapterPath, promptCache: nil)
        let (generator, loaded, path) = try await modelOptions.load(tensorParallel: ranks.tensorParallel)
        _ = try adapter.apply(to: loaded, verbose: modelOptions.verbose)
        guard
            let leader = try ranks.serve(
                model: generator.model, batched: self.engine == .batched, cacheType: kvCacheType)
        else { return }
        defer { leader?.stop() }
        let engine: any GenerationEngine
        switch self.engine {
        case .serial:
            engine = SerialEngine(
                model: generator.model, maxQueue: maxQueue, maxContext: maxContext, kvCacheType: kvCacheType)
        case .batched:
            var configuration = BatchedEngine.Configuration()
            configuration.maxConcurrency = maxConcurrency
            configuration.maxQueue = maxQueue
            configuration.maxContext = maxContext
            configuration.prefixCacheBytes = leader == nil ? promptCacheBytes : 0  // no prefix cache when split
            configuration.kvCacheBytes = kvCacheBytes
            configuration.kvCacheType = kvCacheType
            engine = try BatchedEngine(model: generator.model, configuration: configuration)
        }
        let name = modelName ?? Self.servedName(path)
        let model = ServedModel(name: name, engine: engine, tokenizer: generator.tokenizer, modelType: loaded.modelType)
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.apiKey = apiKey
        configuration.corsOrigin = corsOrigin
        configuration.maxBodyBytes = maxBodyBytes
        var logger = Logger(label: "tessera.serve")
        logger.logLevel = modelOptions.verbose ? .info : .warning
        let server = Server(model: model, configuration: configuration, logger: logger)
        let engineName = self.engine.rawValue
        try await server.run { address in
            printError(
                "serving \(name) on http://\(address) (context \(engine.contextLength) tokens, \(engineName) engine)")
        }
        printError("stopped")
    }

    enum EngineKind: String, ExpressibleByArgument, CaseIterable {
        case batched, serial
    }

    /// "SmolLM2-135M-Instruct.Q4_1" for ".../SmolLM2-135M-Instruct.Q4_1.gguf"; a folder's own name.
    static func servedName(_ path: String) -> String {
        var name = path.split(separator: "/").last.map(String.init) ?? path
        if name.hasSuffix(".gguf") { name.removeLast(".gguf".count) }
        return name.isEmpty ? "model" : name
    }
}
