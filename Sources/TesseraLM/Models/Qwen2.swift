// Qwen2 / Qwen2.5: llama's blocks with biases on the q, k and v projections.

enum Qwen2: Architecture {
    static let modelTypes = ["qwen2"]
    static let gguf = GGUFConventions(architecture: "qwen2", className: "Qwen2ForCausalLM")

    static func configuration(_ config: ConfigReader) throws -> TransformerConfiguration {
        var c = try config.transformer()
        c.attentionBias = true
        if try config.bool("use_sliding_window", default: false) {
            throw ModelError.invalidConfiguration("qwen2 with use_sliding_window is not supported")
        }
        return c
    }
}
