// Mistral: llama's blocks; v0.1 attends within a sliding window on every layer.

enum Mistral: Architecture {
    static let modelTypes = ["mistral"]
    /// llama.cpp usually writes Mistral as "llama"; either way q/k rows are permuted.
    static let gguf = GGUFConventions(architecture: "mistral", className: "MistralForCausalLM", permutedQueryKey: true)

    static func configuration(_ config: ConfigReader) throws -> TransformerConfiguration {
        var c = try Llama.configuration(config)
        if let window = try config.int("sliding_window", default: nil, in: ConfigurationLimits.slidingWindow) {
            c.slidingWindow = window
            c.slidingLayers = Array(repeating: true, count: c.layerCount)
        }
        return c
    }
}
