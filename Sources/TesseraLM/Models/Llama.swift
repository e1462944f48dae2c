// Llama (Llama 2/3.x, SmolLM2): pre-norm blocks of grouped-query attention with
// rotary embeddings (llama3 frequency scaling included) and a SwiGLU MLP.

enum Llama: Architecture {
    static let modelTypes = ["llama"]

    static func configuration(_ config: ConfigReader) throws -> TransformerConfiguration {
        var c = try config.transformer()
        c.attentionBias = try config.bool("attention_bias", default: false)
        return c
    }
}
