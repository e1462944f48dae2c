// `tessera generate`, `chat` and `tokenize`: parse options, call TesseraLM, print.

#if canImport(Glibc)
import Glibc
#endif
import Tessera
import TesseraLM

enum LanguageCommands {
    static let samplingOptions: Set<String> = [
        "model", "max-tokens", "temp", "top-p", "top-k", "min-p", "seed", "max-kv-size", "kv-bits", "kv-group-size",
        "repetition-penalty", "system", "precision",
    ]

    static func loadModel(_ options: Options) throws -> TextGenerator { try load(options).generator }

    /// `--precision highest|high` (default high): the CPU's quantized decode
    /// products round x to 24 or 16 bits (`QuantizedMatmulPrecision`).
    static func setPrecision(_ options: Options) throws {
        switch options.string("precision") ?? "high" {
        case "high": QuantizedMatmulPrecision.current = .high
        case "highest": QuantizedMatmulPrecision.current = .highest
        case let other: throw UsageError("--precision must be high or highest, got \(other)")
        }
    }

    static func load(_ options: Options) throws -> (generator: TextGenerator, identity: String) {
        try setPrecision(options)
        let path = try options.string("model") ?? DefaultModel.locateOrFetch(log: printError)
        let loaded = try ModelLoader.load(path)
        return (try TextGenerator(loaded: loaded), loaded.identity)
    }

    static func parameters(_ options: Options) throws -> GenerateParameters {
        var p = GenerateParameters()
        p.maxTokens = try options.int("max-tokens") ?? 256
        if let t = try options.float("temp") { p.sampling.temperature = t }
        if let v = try options.float("top-p") { p.sampling.topP = v }
        if let v = try options.int("top-k") { p.sampling.topK = v }
        if let v = try options.float("min-p") { p.sampling.minP = v }
        if let v = try options.float("repetition-penalty") { p.sampling.repetitionPenalty = v }
        if let v = try options.int("seed") { p.sampling.seed = UInt64(truncatingIfNeeded: v) }
        p.maxKVSize = try options.int("max-kv-size")
        if let bits = try options.int("kv-bits") {
            p.kvQuantization = try KVQuantization(bits: bits, groupSize: try options.int("kv-group-size") ?? 64)
        }
        return p
    }

    /// Streams one generation to stdout; returns its stats.
    static func stream(
        _ generator: TextGenerator, prompt: [Int], parameters: GenerateParameters, promptCache: PromptCacheFile? = nil
    ) async throws -> GenerationStats {
        var stats = GenerationStats()
        for try await event in generator.generate(prompt: prompt, parameters: parameters, promptCache: promptCache) {
            switch event {
            case .text(let piece):
                print(piece, terminator: "")
                flushStandardOutput()
            case .token: break
            case .promptCache(.reused(let n)): printError("prompt cache: reused \(n) of \(prompt.count) prompt tokens")
            case .promptCache(.saved(let n)): printError("prompt cache: saved \(n) prompt tokens to \(promptCache?.path ?? "")")
            case .done(let s): stats = s
            }
        }
        print()
        flushStandardOutput()
        return stats
    }

    static func report(_ s: GenerationStats) {
        printError(
            "prompt: \(s.promptTokens) tokens, \(format(s.promptTokensPerSecond)) tok/s; "
                + "generation: \(s.generatedTokens) tokens, \(format(s.tokensPerSecond)) tok/s; "
                + "peak memory \(format(Double(s.peakMemory) / 1_048_576)) MiB")
    }

    static func format(_ x: Double) -> String {
        let scaled = (x * 10).rounded() / 10
        return String(scaled)
    }

    static func generate(_ args: ArraySlice<String>) async throws {
        let options = try Options(
            args, valued: samplingOptions.union(["prompt", "prompt-cache"]), switches: ["no-chat-template"])
        guard let prompt = options.string("prompt") else { throw UsageError("generate needs --prompt TEXT") }
        let (generator, identity) = try load(options)
        let tokens: [Int]
        if options.flag("no-chat-template") {
            tokens = generator.tokenizer.encode(prompt, addSpecialTokens: true)
        } else {
            var messages: [ChatMessage] = []
            if let system = options.string("system") { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: prompt))
            tokens = try generator.promptTokens(messages: messages)
        }
        let promptCache = options.string("prompt-cache").map { PromptCacheFile(path: $0, modelIdentity: identity) }
        report(try await stream(generator, prompt: tokens, parameters: try parameters(options), promptCache: promptCache))
    }

    static func chat(_ args: ArraySlice<String>) async throws {
        let options = try Options(args, valued: samplingOptions, switches: [])
        let generator = try loadModel(options)
        let parameters = try parameters(options)
        var history: [ChatMessage] = []
        if let system = options.string("system") { history.append(ChatMessage(role: "system", content: system)) }
        printError("chat: type a message, /reset to forget the conversation, /exit or Ctrl-D to leave")
        while true {
            print("> ", terminator: "")
            flushStandardOutput()
            guard let line = readLine() else { break }
            if line == "/exit" { break }
            if line == "/reset" {
                history.removeAll { $0.role != "system" }
                continue
            }
            if line.isEmpty { continue }
            history.append(ChatMessage(role: "user", content: line))
            var reply = ""
            var stats = GenerationStats()
            for try await event in generator.generate(prompt: try generator.promptTokens(messages: history), parameters: parameters) {
                switch event {
                case .text(let piece):
                    reply += piece
                    print(piece, terminator: "")
                    flushStandardOutput()
                case .token, .promptCache: break
                case .done(let s): stats = s
                }
            }
            print()
            flushStandardOutput()
            report(stats)
            history.append(ChatMessage(role: "assistant", content: reply))
        }
    }

    static func convert(_ args: ArraySlice<String>) throws {
        let options = try Options(args, valued: ["model", "output", "bits", "group-size"], switches: [])
        guard let model = options.string("model"), let output = options.string("output") else {
            throw UsageError("convert needs --model PATH and --output DIR")
        }
        try ModelConverter.convert(
            model: model, output: output, bits: try options.int("bits") ?? 4, groupSize: try options.int("group-size"))
        print("wrote \(output)")
    }

    static func tokenize(_ args: ArraySlice<String>) throws {
        let options = try Options(args, valued: ["model", "text", "ids"], switches: ["add-special"])
        let generator = try loadModel(options)
        if let text = options.string("text") {
            let ids = generator.tokenizer.encode(text, addSpecialTokens: options.flag("add-special"))
            print(ids.map(String.init).joined(separator: " "))
        } else if let idText = options.string("ids") {
            let ids = try idText.split(whereSeparator: { $0 == " " || $0 == "," }).map { part -> Int in
                guard let id = Int(part), id >= 0, id < generator.tokenizer.vocabularySize else {
                    throw UsageError("--ids: \(part) is not a token id of this vocabulary")
                }
                return id
            }
            print(generator.tokenizer.decode(ids))
        } else {
            throw UsageError("tokenize needs --text TEXT or --ids \"1 2 3\"")
        }
    }
}

extension LanguageCommands {
    /// `tessera selftest --bench`: the GPU op timings, then prefill/decode of a
    /// model with SmolLM2-135M's shapes and random 4-bit weights (the real
    /// file cannot travel to the GPU machine; speed does not depend on values).
    static func gpuBench(quick: Bool) throws {
        switch GPUBench.run(quick: quick) {
        case .failure(let error):
            print("selftest --bench: no GPU (\(error))")
            return
        case .success(let rows):
            for row in rows { print(row) }
        }
        let config = SyntheticModel.smolLM2Config(layers: quick ? 2 : 30)
        func rate(_ x: Double) -> String { "\((x * 10).rounded() / 10)" }
        for device in [Device.gpu(0), .cpu] {
            let stats = try withDevice(device) { () throws -> GenerationStats in
                let model = try SyntheticModel.llama(config: config, bits: 4, groupSize: 32)
                return try SyntheticModel.measureSpeed(model, promptTokens: quick ? 8 : 128, generate: quick ? 4 : 128)
            }
            print(
                "SmolLM2-135M-shaped 4-bit model (random weights, \(quick ? 2 : 30) layers) on \(device): "
                    + "prefill \(rate(stats.promptTokensPerSecond)) tok/s, decode \(rate(stats.tokensPerSecond)) tok/s")
        }
    }
}
