// Llama (Llama 2/3.x, SmolLM2): pre-norm blocks of grouped-query attention with
// rotary embeddings (llama3 frequency scaling included) and a SwiGLU MLP.
// GGUF: q/k rows permuted per head for llama.cpp's rope (undone at load);
// llama 3 scaling comes as a `rope_freqs` tensor (GGUFModel).

enum Llama: Architecture {
    static let modelTypes = ["llama"]
    static let gguf = GGUFConventions(architecture: "llama", className: "LlamaForCausalLM", permutedQueryKey: true)

    static func configuration(_ config: ConfigReader) throws -> TransformerConfiguration {
        var c = try config.transformer()
        c.attentionBias = try config.bool("attention_bias", default: false)
        return c
    }
}
