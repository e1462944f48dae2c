// Options for one generation (length, sampling, key/value cache), checked at
// parse time, before any model loads, each error naming the option and its range.
// The numbers take the next argument whatever it looks like (`--max-tokens -5`
// is -5, refused by its range, not a missing value).

import ArgumentParser
import TesseraLM

struct SamplingOptions: ParsableArguments {
    @Option(name: [.customShort("n"), .long], parsing: .unconditional, help: "The most tokens to generate (≥ 1).")
    var maxTokens: Int = 256

    @Option(
        name: [.customLong("temp"), .customLong("temperature")], parsing: .unconditional,
        help: ArgumentHelp(
            "Sampling temperature (≥ 0; 0 is greedy: always the most likely token). "
                + "Default: the model's generation_config.json, else 0.7."))
    var temp: Float?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Nucleus sampling: keep the most likely tokens holding this much probability (in (0, 1]). "
                + "Default: generation_config.json, else 0.9."))
    var topP: Float?

    @Option(
        parsing: .unconditional,
        help: "Keep only the k most likely tokens (≥ 0; 0 keeps all). Default: generation_config.json, else 0.")
    var topK: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Drop tokens less likely than this fraction of the most likely one (in [0, 1]). "
                + "Default: generation_config.json, else 0."))
    var minP: Float?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Divides the logits of recently seen tokens (> 0; 1 is none). "
                + "Default: generation_config.json, else 1.1 when sampling, 1 when greedy."))
    var repetitionPenalty: Float?

    @Option(help: "Random seed, for reproducible sampling.")
    var seed: UInt64?

    @Option(
        parsing: .unconditional,
        help: "Keep at most this many positions in the key/value cache (≥ 1; a rotating cache).")
    var maxKVSize: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Store keys and values quantized to this many bits (\(listed(KVQuantization.supportedBits))).",
            valueName: "bits"))
    var kvBits: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Group size of the quantized key/value cache (\(listed(KVQuantization.supportedGroupSizes))).",
            valueName: "n"))
    var kvGroupSize: Int = 64

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "With --kv-bits: keep the cache in full precision until it holds more than this many positions (≥ 0).",
            valueName: "n"))
    var quantizedKVStart = 5000

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "How the key/value cache stores keys and values: f16 (half the bytes a step reads, as llama.cpp's default) or f32.",
            valueName: "type"))
    var kvCacheType: KVCacheType = .f16

    @Option(help: "A system message placed before the conversation.")
    var system: String?

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1, got \(maxTokens)") }
        if let temp, !(temp >= 0 && temp.isFinite) {
            throw ValidationError("--temp must be a number ≥ 0 (0 is greedy), got \(temp)")
        }
        if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1], got \(topP)") }
        if let topK, topK < 0 { throw ValidationError("--top-k must be ≥ 0 (0 keeps every token), got \(topK)") }
        if let minP, !(minP >= 0 && minP <= 1) { throw ValidationError("--min-p must be in [0, 1], got \(minP)") }
        if let repetitionPenalty, !(repetitionPenalty > 0 && repetitionPenalty.isFinite) {
            throw ValidationError("--repetition-penalty must be a number > 0 (1 is none), got \(repetitionPenalty)")
        }
        if let maxKVSize, maxKVSize < 1 { throw ValidationError("--max-kv-size must be at least 1, got \(maxKVSize)") }
        if let kvBits, !KVQuantization.supportedBits.contains(kvBits) {
            throw ValidationError("--kv-bits must be one of \(listed(KVQuantization.supportedBits)), got \(kvBits)")
        }
        guard KVQuantization.supportedGroupSizes.contains(kvGroupSize) else {
            throw ValidationError(
                "--kv-group-size must be one of \(listed(KVQuantization.supportedGroupSizes)), got \(kvGroupSize)")
        }
        guard quantizedKVStart >= 0 else {
            throw ValidationError("--quantized-kv-start must be ≥ 0, got \(quantizedKVStart)")
        }
    }

    /// The generation parameters: these options over `defaults` (the model's or the built-in ones).
    func parameters(defaults: SamplingDefaults) throws -> GenerateParameters {
        var p = GenerateParameters()
        p.maxTokens = maxTokens
        let temperature = temp ?? defaults.temperature
        p.sampling.temperature = temperature
        p.sampling.topP = topP ?? defaults.topP
        p.sampling.topK = topK ?? defaults.topK
        p.sampling.minP = minP ?? defaults.minP
        // Greedy decoding (--temp 0) stays plain argmax unless a penalty is asked for.
        let unnamedPenalty = temperature > 0 ? SamplingDefaults.samplingRepetitionPenalty : 1
        p.sampling.repetitionPenalty = repetitionPenalty ?? defaults.repetitionPenalty ?? unnamedPenalty
        p.sampling.seed = seed
        p.maxKVSize = maxKVSize
        if let kvBits { p.kvQuantization = try KVQuantization(bits: kvBits, groupSize: kvGroupSize) }
        p.quantizedKVStart = quantizedKVStart
        p.kvCacheType = kvCacheType
        return p
    }
}

extension KVCacheType: ExpressibleByArgument {}

/// "2, 3, 4" for help and error messages.
func listed(_ values: [Int]) -> String {
    values.map(String.init).joined(separator: ", ")
}
