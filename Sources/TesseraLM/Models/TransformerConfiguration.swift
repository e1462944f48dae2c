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

    func validate() throws {
        guard hiddenSize > 0, layerCount > 0, intermediateSize > 0, headCount > 0, kvHeadCount > 0, headDim > 0,
            vocabularySize > 0, contextLength > 0
        else { throw ModelError.invalidConfiguration("sizes must be positive: \(self)") }
        guard rmsNormEps > 0 else { throw ModelError.invalidConfiguration("rms_norm_eps must be positive, got \(rmsNormEps)") }
        guard headCount % kvHeadCount == 0 else {
            throw ModelError.invalidConfiguration("\(headCount) heads is not a multiple of \(kvHeadCount) key/value heads")
        }
        let rotated = ropeDimensions ?? headDim
        guard rotated > 0, rotated % 2 == 0, rotated <= headDim else {
            throw ModelError.invalidConfiguration("rotary dimensions \(rotated) must be even and at most head_dim \(headDim)")
        }
        guard slidingLayers.count == layerCount else {
            throw ModelError.invalidConfiguration("\(slidingLayers.count) layer types for \(layerCount) layers")
        }
        if let slidingWindow, slidingWindow <= 0 {
            throw ModelError.invalidConfiguration("sliding_window must be positive, got \(slidingWindow)")
        }
        for cap in [attentionSoftcap, finalSoftcap].compactMap({ $0 }) where !(cap > 0) {
            throw ModelError.invalidConfiguration("soft-capping values must be positive, got \(cap)")
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

/// Typed reads of a Hugging Face config.json.
struct ConfigReader {
    let json: JSONValue

    func int(_ key: String) throws -> Int {
        guard let v = json[key]?.int else { throw ModelError.invalidConfiguration("config.json has no integer \(key)") }
        return v
    }

    /// `key`, or `fallback` when absent or null; a value of another type is an error.
    func int(_ key: String, default fallback: Int?) throws -> Int? {
        guard let v = json[key], !v.isNull else { return fallback }
        guard let i = v.int else { throw ModelError.invalidConfiguration("config.json: \(key) must be an integer") }
        return i
    }

    func float(_ key: String, default fallback: Float?) throws -> Float? {
        guard let v = json[key], !v.isNull else { return fallback }
        guard let d = v.double else { throw ModelError.invalidConfiguration("config.json: \(key) must be a number") }
        return Float(d)
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let v = json[key], !v.isNull else { return fallback }
        guard let b = v.bool else { throw ModelError.invalidConfiguration("config.json: \(key) must be true or false") }
        return b
    }

    /// The rotary embedding of `layerType` ("full_attention" / "sliding_attention"), from
    /// transformers 5's `rope_parameters` (flat or per layer type) or the older
    /// `rope_theta` + `rope_scaling` (+ `legacyBaseKey`, e.g. gemma3's `rope_local_base_freq`).
    func rope(layerType: String, headDim: Int, legacyBaseKey: String = "rope_theta", defaultBase: Float = 10000)
        throws -> RopeParameters
    {
        var parameters = json["rope_parameters"]
        if let perType = parameters?[layerType], perType.object != nil { parameters = perType }
        let legacyScaling = json["rope_scaling"].flatMap { $0.isNull ? nil : $0 }
        let scaling = parameters ?? legacyScaling
        let legacyBase = try float(legacyBaseKey, default: defaultBase)!
        let base = parameters?["rope_theta"]?.double.map(Float.init) ?? legacyBase
        guard base > 0 else { throw ModelError.invalidConfiguration("rope base must be positive, got \(base)") }
        let type = scaling?["rope_type"]?.string ?? scaling?["type"]?.string ?? "default"
        switch type {
        case "default": return RopeParameters(base: base)
        case "linear":
            guard let factor = scaling?["factor"]?.double, factor > 0 else {
                throw ModelError.invalidConfiguration("linear rope scaling needs a positive factor")
            }
            return RopeParameters(base: base, scale: Float(1 / factor))
        case "llama3":
            return RopeParameters(base: base, frequencies: try llama3Wavelengths(scaling!, base: base, headDim: headDim))
        default:
            throw ModelError.invalidConfiguration("rope scaling \"\(type)\" is not supported")
        }
    }

    /// Llama 3.1's frequency scaling: long wavelengths slow down by `factor`,
    /// short ones stay, the band between is interpolated.
    private func llama3Wavelengths(_ s: JSONValue, base: Float, headDim: Int) throws -> [Float] {
        guard let factor = s["factor"]?.double, let low = s["low_freq_factor"]?.double,
            let high = s["high_freq_factor"]?.double, let original = s["original_max_position_embeddings"]?.double,
            factor > 0, high > low
        else { throw ModelError.invalidConfiguration("llama3 rope scaling needs factor, low/high_freq_factor, original_max_position_embeddings") }
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
        let hidden = try int("hidden_size"), heads = try int("num_attention_heads")
        let layers = try int("num_hidden_layers")
        let headDim = try int("head_dim", default: hidden / Swift.max(heads, 1))!
        return TransformerConfiguration(
            hiddenSize: hidden, layerCount: layers, intermediateSize: try int("intermediate_size"), headCount: heads,
            kvHeadCount: try int("num_key_value_heads", default: heads)!, headDim: headDim,
            vocabularySize: try int("vocab_size"), contextLength: try int("max_position_embeddings", default: 4096)!,
            rmsNormEps: try float("rms_norm_eps", default: 1e-5)!,
            tiedEmbeddings: try bool("tie_word_embeddings", default: false),
            rope: try rope(layerType: "full_attention", headDim: headDim),
            attentionScale: 1 / Float(headDim).squareRoot(), slidingLayers: Array(repeating: false, count: layers))
    }

    /// `layer_types` as sliding flags, or `fallback(i)` per layer when absent.
    func slidingLayers(count: Int, fallback: (Int) -> Bool) throws -> [Bool] {
        guard let types = json["layer_types"]?.array else { return (0..<count).map(fallback) }
        return try types.map {
            switch $0.string {
            case "sliding_attention": return true
            case "full_attention": return false
            default: throw ModelError.invalidConfiguration("unknown layer type \($0.compactText)")
            }
        }
    }
}
