// Gemma 2: embeddings scaled by √hidden, RMS norms applied as (1 + w), a
// GELU-tanh gated MLP, norms before and after attention and MLP, attention and
// final logit soft-capping, sliding-window layers alternating with global ones,
// scores scaled by 1/√query_pre_attn_scalar.

enum Gemma2: Architecture {
    static let modelTypes = ["gemma2"]
    static let gguf = Gemma.gguf(architecture: "gemma2", className: "Gemma2ForCausalLM")

    static func configuration(_ config: ConfigReader) throws -> TransformerConfiguration {
        var c = try Gemma.common(config)
        c.attentionSoftcap = try config.positive(
            "attn_logit_softcapping", default: nil, max: ConfigurationLimits.softcap)
        c.finalSoftcap = try config.positive("final_logit_softcapping", default: nil, max: ConfigurationLimits.softcap)
        // Even layers slide, odd ones are global.
        c.slidingLayers = try config.slidingLayers(count: c.layerCount) { $0 % 2 == 0 }
        return c
    }
}

/// What gemma 2 and 3 share.
enum Gemma {
    /// GGUF: norms stored as 1 + w; the sandwich norms under their own names.
    static func gguf(architecture: String, className: String) -> GGUFConventions {
        GGUFConventions(
            architecture: architecture, className: className, normsIncludeOne: true,
            layerNameOverrides: [
                "post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
                "post_feedforward_layernorm": "post_ffw_norm"
            ])
    }

    static func common(_ config: ConfigReader) throws -> TransformerConfiguration {
        var c = try config.transformer()
        c.tiedEmbeddings = try config.bool("tie_word_embeddings", default: true)
        c.rmsNormEps = try config.positive("rms_norm_eps", default: 1e-6, max: ConfigurationLimits.rmsEps)!
        c.normLayout = .sandwich
        c.normWeightOffset = 1
        c.activation = .geluTanh
        c.embeddingScale = Float(c.hiddenSize).squareRoot()
        c.attentionBias = try config.bool("attention_bias", default: false)
        let scalar = try config.positive("query_pre_attn_scalar", default: Double(c.headDim), max: 1e9)!
        c.attentionScale = 1 / scalar.squareRoot()
        c.slidingWindow = try config.int("sliding_window", default: 4096, in: ConfigurationLimits.slidingWindow)
        let activation =
            try ConfigReader.string(config.json, "hidden_activation", path: "hidden_activation")
            ?? ConfigReader.string(config.json, "hidden_act", path: "hidden_act") ?? "gelu_pytorch_tanh"
        guard ["gelu_pytorch_tanh", "gelu"].contains(activation) else {
            throw ModelError.invalidConfiguration("gemma activation \(activation) is not supported")
        }
        return c
    }
}
