// Phi-3: llama's blocks with fused qkv_proj and gate_up_proj, optionally a
// partial rotary factor. LongRoPE ("su"/"longrope") scaling is not supported.

enum Phi3: Architecture {
    static let modelTypes = ["phi3"]
    /// GGUF: fused `attn_qkv` and `ffn_up` (gate rows first, as gate_up_proj).
    static let gguf = GGUFConventions(
        architecture: "phi3", className: "Phi3ForCausalLM",
        layerNameOverrides: ["self_attn.qkv_proj": "attn_qkv", "mlp.gate_up_proj": "ffn_up"])

    static func configuration(_ config: ConfigReader) throws -> TransformerConfiguration {
        for key in ["rope_scaling", "rope_parameters"] {
            if let type = try ConfigReader.string(config.json[key], "type", path: key + ".type")
                ?? ConfigReader.string(config.json[key], "rope_type", path: key + ".rope_type"),
                ["su", "longrope"].contains(type)
            {
                throw ModelError.invalidConfiguration("phi3 rope scaling \"\(type)\" (LongRoPE) is not supported")
            }
        }
        var c = try config.transformer()
        c.fusedQKV = true
        c.fusedGateUp = true
        let limit = ConfigurationLimits.partialRotary
        let factor =
            try ConfigReader.positive(
                config.json["rope_parameters"], "partial_rotary_factor", path: "rope_parameters.partial_rotary_factor",
                max: limit)
            ?? ConfigReader.positive(config.json, "partial_rotary_factor", path: "partial_rotary_factor", max: limit)
            ?? 1
        c.ropeDimensions = Int(Double(c.headDim) * factor)
        if let window = try config.int("sliding_window", default: nil, in: ConfigurationLimits.slidingWindow),
            window < c.contextLength
        {
            throw ModelError.invalidConfiguration("phi3 with a sliding window of \(window) is not supported")
        }
        return c
    }
}
