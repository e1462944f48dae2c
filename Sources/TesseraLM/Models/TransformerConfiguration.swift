// The knobs of a decoder-only transformer that the supported architectures
// differ by, and the reading of the config.json fields they share.

#if canImport(Glibc)
    import Glibc
#endif
import Tessera

/// Everything `TransformerModel` needs to know about one architecture instance.
public struct TransformerConfiguration: Sendable, Equatable {
    public enum Activation: Sendable { case silu, geluTanh }
    /// How the norms sit around each block.
    public enum NormLayout: Sendable {
        /// `h + attn(norm(h))`, `h + mlp(norm(h))` (llama, qwen, phi3).
        case preNorm
        /// Gemma: `h + norm(attn(norm(h)))`, `h + norm(mlp(norm(h)))`.
        case sandwich
    }

    public var hiddenSize: Int
    public var layerCount: Int
    public var intermediateSize: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabularySize: Int
    public var contextLength: Int
    public var rmsNormEps: Float
    public var tiedEmbeddings: Bool

    /// Rotary embedding of full-attention layers (and of all layers without a local one).
    public var rope: RopeParameters
    /// Rotary embedding of sliding-window layers, when it differs (gemma3's local base).
    public var localRope: RopeParameters?
    /// Rotate interleaved pairs, or halves (the Hugging Face layout, which GGUF llama q/k rows are un-permuted to).
    public var ropeTraditional = false
    /// Features of each head that rotate (phi's partial rotary factor); nil: all.
    public var ropeDimensions: Int?

    public var activation = Activation.silu
    public var normLayout = NormLayout.preNorm
    /// Norm weights are stored as `w - 1` and applied as `1 + w` (gemma).
    public var normWeightOffset: Float = 0
    public var attentionBias = false
    /// RMS norms over each head of q and k before rope (qwen3, gemma3).
    public var queryKeyNorms = false
    /// Fused projections (phi3): one qkv_proj, one gate_up_proj.
    public var fusedQKV = false
    public var fusedGateUp = false
    /// Embeddings are multiplied by this (gemma: √hidden).
    public var embeddingScale: Float?
    /// Scores are `q·k * attentionScale` (1/√headDim unless the model says otherwise).
    public var attentionScale: Float
    /// `tanh(x / cap) * cap` on attention scores and on the final logits (gemma2).
    public var attentionSoftcap: Float?
    public var finalSoftcap: Float?
    /// Layers that attend only to the last `slidingWindow` positions.
    public var slidingWindow: Int?
    public var slidingLayers: [Bool]

    /// Every size in its `ConfigurationLimits` range and every float finite
    /// (configurations built in code pass through here as well as read ones).
    func validate() throws {
        typealias L = ConfigurationLimits
        _ = try L.check("hidden_size", hiddenSize, L.hidden)
        _ = try L.check("num_hidden_layers", layerCount, L.layers)
        _ = try L.check("intermediate_size", intermediateSize, L.intermediate)
        _ = try L.check("num_attention_heads", headCount, L.heads)
        _ = try L.check("num_key_value_heads", kvHeadCount, 1...headCount)
        _ = try L.check("head_dim", headDim, L.headDim)
        _ = try L.product("num_attention_heads × head_dim", headCount, headDim, L.projection)
        _ = try L.check("vocab_size", vocabularySize, L.vocabulary)
        _ = try L.check("max_position_embeddings", contextLength, L.context)
        _ = try L.positive("rms_norm_eps", Double(rmsNormEps), max: L.rmsEps)
        guard headCount % kvHeadCount == 0 else {
            throw ModelError.invalidConfiguration(
                "\(headCount) heads is not a multiple of \(kvHeadCount) key/value heads")
        }
        let rotated = ropeDimensions ?? headDim
        guard rotated > 0, rotated % 2 == 0, rotated <= headDim else {
            throw ModelError.configurationField(
                field: "rotary dimensions (head_dim × partial_rotary_factor)", value: String(rotated),
                allowed: "an even number in 2...\(headDim) (head_dim)")
        }
        guard slidingLayers.count == layerCount else {
            throw ModelError.invalidConfiguration("\(slidingLayers.count) layer types for \(layerCount) layers")
        }
        if let slidingWindow { _ = try L.check("sliding_window", slidingWindow, L.slidingWindow) }
        for (name, cap) in [("attn_logit_softcapping", attentionSoftcap), ("final_logit_softcapping", finalSoftcap)] {
            if let cap { _ = try L.positive(name, Double(cap), max: L.softcap) }
        }
        _ = try L.positive("attention scale", Double(attentionScale), max: 1e6)
        if let embeddingScale { _ = try L.positive("embedding scale", Double(embeddingScale), max: 1e6) }
        for (name, r) in [("rope", rope), ("local rope", localRope)] {
            guard let r else { continue }
            _ = try L.positive("\(name) base", Double(r.base), max: L.ropeBase)
            _ = try L.positive("\(name) scale", Double(r.scale), max: L.ropeFactor)
            if let f = r.frequencies {
                guard f.count == rotated / 2, f.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                    throw ModelError.configurationField(
                        field: "\(name) frequencies", value: "\(f.count) values",
                        allowed: "\(rotated / 2) finite positive values")
                }
            }
        }
    }
}

/// Rotary embedding frequencies: a base (with a linear position scale) or explicit per-pair frequencies.
public struct RopeParameters: Sendable, Equatable {
    public var base: Float
    public var scale: Float = 1
    /// Wavelengths per rotated pair (Fast.rope's `freqs`), for llama3-style scaling.
    public var frequencies: [Float]?

    func apply(_ x: Tensor, dimensions: Int, traditional: Bool, offset: Int) -> Tensor {
        if let frequencies {
            return Fast.rope(
                x, dimensions: dimensions, traditional: traditional, base: nil, scale: scale, offset: offset,
                freqs: Tensor(frequencies))
        }
        return Fast.rope(x, dimensions: dimensions, traditional: traditional, base: base, scale: scale, offset: offset)
    }
}

/// Typed reads of a Hugging Face config.json: a field of the wrong type or
/// outside its range is `ModelError.configurationField` naming it.
struct ConfigReader {
    let json: JSONValue

    private func wrongType(_ key: String, _ v: JSONValue, _ allowed: String) -> ModelError {
        .configurationField(field: key, value: v.compactText, allowed: allowed)
    }

    func int(_ key: String) throws -> Int {
        guard let v = json[key], !v.isNull else {
            throw ModelError.invalidConfiguration("config.json has no integer \(key)")
        }
        guard let i = v.int else { throw wrongType(key, v, "an integer") }
        return i
    }

    /// `key`, required, in `range`.
    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int {
        try ConfigurationLimits.check(key, try int(key), range)
    }

    /// `key`, or `fallback` when absent or null; a value of another type is an error.
    func int(_ key: String, default fallback: Int?) throws -> Int? {
        guard let v = json[key], !v.isNull else { return fallback }
        guard let i = v.int else { throw wrongType(key, v, "an integer") }
        return i
    }

    /// `key` (or `fallback`) in `range`.
    func int(_ key: String, default fallback: Int?, in range: ClosedRange<Int>) throws -> Int? {
        try int(key, default: fallback).map { try ConfigurationLimits.check(key, $0, range) }
    }

    func float(_ key: String, default fallback: Float?) throws -> Float? {
        guard let v = json[key], !v.isNull else { return fallback }
        guard let d = v.double else { throw wrongType(key, v, "a number") }
        return Float(d)
    }

    /// `key` (or `fallback`), finite, positive and at most `max`.
    func positive(_ key: String, default fallback: Double?, max: Double) throws -> Float? {
        guard let v = json[key], !v.isNull else { return fallback.map(Float.init) }
        guard let d = v.double else { throw wrongType(key, v, "a number") }
        return Float(try ConfigurationLimits.positive(key, d, max: max))
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let v = json[key], !v.isNull else { return fallback }
        guard let b = v.bool else { throw wrongType(key, v, "true or false") }
        return b
    }

    /// The string `key` of `object` (nil when absent or null); another type is an error naming `path`.
    static func string(_ object: JSONValue?, _ key: String, path: String) throws -> String? {
        guard let v = object?[key], !v.isNull else { return nil }
        guard let s = v.string else {
            throw ModelError.configurationField(field: path, value: v.compactText, allowed: "a string")
        }
        return s
    }

    /// The number `key` of `object`, finite, positive and at most `max` (nil when absent).
    static func positive(_ object: JSONValue?, _ key: String, path: String, max: Double) throws -> Double? {
        guard let v = object?[key], !v.isNull else { return nil }
        guard let d = v.double else {
            throw ModelError.configurationField(field: path, value: v.compactText, allowed: "a number")
        }
        return try ConfigurationLimits.positive(path, d, max: max)
    }

    /// The rotary embedding of `layerType` ("full_attention" / "sliding_attention"), from
    /// transformers 5's `rope_parameters` (flat or per layer type) or the older
    /// `rope_theta` + `rope_scaling` (+ `legacyBaseKey`, e.g. gemma3's `rope_local_base_freq`).
    func rope(layerType: String, headDim: Int, legacyBaseKey: String = "rope_theta", defaultBase: Float = 10000)
        throws -> RopeParameters
    {
        var parameters = json["rope_parameters"].flatMap { $0.isNull ? nil : $0 }
        var section = "rope_parameters"
        if let perType = parameters?[layerType], perType.object != nil {
            parameters = perType
            section += ".\(layerType)"
        }
        let legacyScaling = json["rope_scaling"].flatMap { $0.isNull ? nil : $0 }
        for (name, value) in [(section, parameters), ("rope_scaling", legacyScaling)] {
            if let value, value.object == nil {
                throw ModelError.configurationField(field: name, value: value.compactText, allowed: "an object")
            }
        }
        let scaling = parameters ?? legacyScaling
        let scalingName = parameters != nil ? section : "rope_scaling"
        let legacyBase = try positive(legacyBaseKey, default: Double(defaultBase), max: ConfigurationLimits.ropeBase)!
        let base =
            try Self.positive(
                parameters, "rope_theta", path: section + ".rope_theta", max: ConfigurationLimits.ropeBase
            )
            .map(Float.init) ?? legacyBase
        let type =
            try Self.string(scaling, "rope_type", path: scalingName + ".rope_type")
            ?? Self.string(scaling, "type", path: scalingName + ".type") ?? "default"
        switch type {
        case "default": return RopeParameters(base: base)
        case "linear":
            guard
                let factor = try Self.positive(
                    scaling, "factor", path: scalingName + ".factor", max: ConfigurationLimits.ropeFactor)
            else { throw ModelError.invalidConfiguration("linear rope scaling needs a positive factor") }
            return RopeParameters(base: base, scale: Float(1 / factor))
        case "llama3":
            return RopeParameters(
                base: base,
                frequencies: try llama3Wavelengths(scaling!, name: scalingName, base: base, headDim: headDim))
        default:
            throw ModelError.configurationField(
                field: scalingName + ".rope_type", value: "\"\(type)\"",
                allowed: "\"default\", \"linear\" or \"llama3\"")
        }
    }

    /// Llama 3.1's frequency scaling: long wavelengths slow down by `factor`,
    /// short ones stay, the band between is interpolated.
    private func llama3Wavelengths(_ s: JSONValue, name: String, base: Float, headDim: Int) throws -> [Float] {
        let limit = ConfigurationLimits.ropeFactor
        guard let factor = try Self.positive(s, "factor", path: name + ".factor", max: limit),
            let low = try Self.positive(s, "low_freq_factor", path: name + ".low_freq_factor", max: limit),
            let high = try Self.positive(s, "high_freq_factor", path: name + ".high_freq_factor", max: limit),
            let original = try Self.positive(
                s, "original_max_position_embeddings", path: name + ".original_max_position_embeddings",
                max: Double(ConfigurationLimits.context.upperBound)),
            high > low
        else {
            throw ModelError.invalidConfiguration(
                "llama3 rope scaling needs factor, low/high_freq_factor (high > low), original_max_position_embeddings")
        }
        _ = try ConfigurationLimits.check("head_dim", headDim, ConfigurationLimits.headDim)
        let lowWavelength = original / low, highWavelength = original / high
        return (0..<headDim / 2).map { i in
            let inverse = 1 / Glibc.pow(Double(base), Double(2 * i) / Double(headDim))
            let wavelength = 2 * Double.pi / inverse
            var scaled = wavelength > lowWavelength ? inverse / factor : inverse
            if wavelength >= highWavelength && wavelength <= lowWavelength {
                let smooth = (original / wavelength - low) / (high - low)
                scaled = (1 - smooth) * scaled / factor + smooth * scaled
            }
            return Float(1 / scaled)
        }
    }

    /// The fields every architecture shares, with llama defaults for the rest.
    func transformer() throws -> TransformerConfiguration {
        typealias L = ConfigurationLimits
        let hidden = try int("hidden_size", in: L.hidden), heads = try int("num_attention_heads", in: L.heads)
        let layers = try int("num_hidden_layers", in: L.layers)
        let headDim = try int("head_dim", default: Swift.max(hidden / heads, 1), in: L.headDim)!
        _ = try L.product("num_attention_heads × head_dim", heads, headDim, L.projection)
        let kvHeads = try int("num_key_value_heads", default: heads, in: 1...heads)!
        return TransformerConfiguration(
            hiddenSize: hidden, layerCount: layers, intermediateSize: try int("intermediate_size", in: L.intermediate),
            headCount: heads, kvHeadCount: kvHeads, headDim: headDim,
            vocabularySize: try int("vocab_size", in: L.vocabulary),
            contextLength: try int("max_position_embeddings", default: 4096, in: L.context)!,
            rmsNormEps: try positive("rms_norm_eps", default: 1e-5, max: L.rmsEps)!,
            tiedEmbeddings: try bool("tie_word_embeddings", default: false),
            rope: try rope(layerType: "full_attention", headDim: headDim),
            attentionScale: 1 / Float(headDim).squareRoot(), slidingLayers: Array(repeating: false, count: layers))
    }

    /// `layer_types` as sliding flags, or `fallback(i)` per layer when absent.
    func slidingLayers(count: Int, fallback: (Int) -> Bool) throws -> [Bool] {
        guard let value = json["layer_types"], !value.isNull else { return (0..<count).map(fallback) }
        guard let types = value.array, types.count == count else {
            throw ModelError.configurationField(
                field: "layer_types", value: value.array.map { "\($0.count) entries" } ?? value.compactText,
                allowed: "one entry per layer (\(count))")
        }
        return try types.map {
            switch $0.string {
            case "sliding_attention": return true
            case "full_attention": return false
            default: throw ModelError.invalidConfiguration("unknown layer type \($0.compactText)")
            }
        }
    }
}
