// Models with random weights in the shapes of a real one: for speed checks
// where the real file cannot go (the GPU machine cannot receive the 98 MB
// default model), never for anything that judges output quality.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera
import TesseraLM

public enum SyntheticModel {
    /// SmolLM2-135M-Instruct's config.json (the default model's shapes), with `layers` layers (30 in the real one).
    public static func smolLM2Config(layers: Int = 30) -> String {
        """
        {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": \(layers),
         "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152,
         "rms_norm_eps": 1e-05, "rope_theta": 100000, "max_position_embeddings": 8192,
         "tie_word_embeddings": true}
        """
    }

    /// A llama-family model of `config` (config.json text) with random
    /// weights (normal, std `scale`), quantized MLX-affine with
    /// `bits`/`groupSize`, or (`bits` nil) dense in `dtype`.
    public static func llama(
        config: String, bits: Int? = 4, groupSize: Int = 32, dtype: DType = .float16, scale: Double = 0.02,
        seed: UInt64 = 0
    ) throws -> TransformerModel {
        var json: JSONValue
        do { json = try JSONValue(parsing: Array(config.utf8)) } catch {
            throw ModelError.invalidConfiguration("config: \(error)")
        }
        let modelType = json["model_type"]?.string ?? "(none)"
        guard modelType == "llama", case .object(var fields) = json else {
            throw ModelError.unknownModelType(modelType)
        }
        if let bits { fields["quantization"] = ["group_size": .int(groupSize), "bits": .int(bits)] }
        json = .object(fields)
        return try TransformerModel(config: json.compactText) { c in
            var tensors: [String: Tensor] = [:]
            var counter: UInt64 = 0
            func add(_ name: String, _ shape: [Int]) {
                counter += 1
                let w = Random.normal(shape, dtype: dtype, scale: scale, key: Random.key(seed &* 1_000_003 &+ counter))
                if let bits {
                    let (wq, scales, biases) = quantize(w, groupSize: groupSize, bits: bits)
                    tensors[name + ".weight"] = wq
                    tensors[name + ".scales"] = scales
                    tensors[name + ".biases"] = biases
                } else {
                    tensors[name + ".weight"] = w
                }
            }
            func norm(_ name: String) { tensors[name + ".weight"] = Tensor.ones([c.hiddenSize], dtype: dtype) }
            let (h, q, kv) = (c.hiddenSize, c.headCount * c.headDim, c.kvHeadCount * c.headDim)
            add("model.embed_tokens", [c.vocabularySize, h])
            if !c.tiedEmbeddings { add("lm_head", [c.vocabularySize, h]) }
            norm("model.norm")
            for i in 0..<c.layerCount {
                let p = "model.layers.\(i)."
                norm(p + "input_layernorm")
                norm(p + "post_attention_layernorm")
                add(p + "self_attn.q_proj", [q, h])
                add(p + "self_attn.k_proj", [kv, h])
                add(p + "self_attn.v_proj", [kv, h])
                if c.attentionBias {  // "attention_bias": true (Qwen2-style q/k/v biases, float32)
                    for (name, n) in [("q_proj", q), ("k_proj", kv), ("v_proj", kv)] {
                        counter += 1
                        tensors[p + "self_attn.\(name).bias"] = Random.normal(
                            [n], dtype: .float32, scale: scale, key: Random.key(seed &* 1_000_003 &+ counter))
                    }
                }
                add(p + "self_attn.o_proj", [h, q])
                add(p + "mlp.gate_proj", [c.intermediateSize, h])
                add(p + "mlp.up_proj", [c.intermediateSize, h])
                add(p + "mlp.down_proj", [h, c.intermediateSize])
            }
            eval(Array(tensors.values))
            return tensors
        }
    }
}

extension SyntheticModel {
    /// Prefill and decode speed of `model` on the current device: a prompt of
    /// `promptTokens` random ids, then exactly `generate` greedy tokens (no
    /// stop tokens). The returned stats carry both rates.
    public static func measureSpeed(_ model: any LanguageModel, promptTokens: Int = 128, generate: Int = 128) throws
        -> GenerationStats
    {
        var parameters = GenerateParameters()
        parameters.maxTokens = generate
        parameters.sampling.temperature = 0
        let vocabulary = max(1, model.vocabularySize)
        let prompt = (0..<promptTokens).map { ($0 &* 7919 &+ 13) % vocabulary }
        var generator = try TokenGenerator(model: model, prompt: prompt, parameters: parameters)
        while try generator.next() != nil {}
        return generator.stats
    }
}
