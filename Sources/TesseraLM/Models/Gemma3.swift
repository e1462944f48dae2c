// Gemma 3 (text): gemma 2's blocks without soft-capping, with q/k norms, five
// sliding-window layers per global one, and a separate rope base for the
// sliding layers (`rope_local_base_freq`). Multimodal "gemma3" configs keep
// the text model under `text_config`.

enum Gemma3: Architecture {
    static let modelTypes = ["gemma3_text", "gemma3"]
    static let gguf = Gemma.gguf(architecture: "gemma3", className: "Gemma3ForCausalLM")

    static func configuration(_ outer: ConfigReader) throws -> TransformerConfiguration {
        let config = outer.json["text_config"].map(ConfigReader.init) ?? outer
        var c = try Gemma.common(config)
        c.queryKeyNorms = true
        c.attentionSoftcap = try config.positive(
            "attn_logit_softcapping", default: nil, max: ConfigurationLimits.softcap)
        c.finalSoftcap = try config.positive("final_logit_softcapping", default: nil, max: ConfigurationLimits.softcap)
        let pattern = try config.int(
            "sliding_window_pattern",
            default: config.int("_sliding_window_pattern", default: 6, in: 0...ConfigurationLimits.layers.upperBound),
            in: 0...ConfigurationLimits.layers.upperBound)!
        c.slidingLayers = try config.slidingLayers(count: c.layerCount) { pattern <= 0 || ($0 + 1) % pattern != 0 }
        c.rope = try config.rope(layerType: "full_attention", headDim: c.headDim, defaultBase: 1_000_000)
        c.localRope = try config.rope(
            layerType: "sliding_attention", headDim: c.headDim, legacyBaseKey: "rope_local_base_freq",
            defaultBase: 10000)
        // The legacy rope_scaling (e.g. linear ×8) applies to the global layers only.
        if config.json["rope_parameters"] == nil, let scale = c.localRope?.scale, scale != 1 { c.localRope?.scale = 1 }
        return c
    }
}
