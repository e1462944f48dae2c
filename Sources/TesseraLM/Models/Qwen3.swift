// Qwen3: llama's blocks, no projection biases, an RMS norm over each head of
// q and k before rope.

enum Qwen3: Architecture {
    static let modelTypes = ["qwen3"]
    static let gguf = GGUFConventions(architecture: "qwen3", className: "Qwen3ForCausalLM")

    static func configuration(_ config: ConfigReader) throws -> TransformerConfiguration {
        var c = try config.transformer()
        c.attentionBias = try config.bool("attention_bias", default: false)
        c.queryKeyNorms = true
        if try config.bool("use_sliding_window", default: false) {
            throw ModelError.invalidConfiguration("qwen3 with use_sliding_window is not supported")
        }
        return c
    }
}
