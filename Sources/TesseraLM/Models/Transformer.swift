// The decoder every supported architecture is an instance of, as a TesseraNN
// module tree whose parameter keys are the Hugging Face / mlx-lm names:
//   model.embed_tokens, model.layers.<i>.{input_layernorm, self_attn.*, mlp.*,
//   post_attention_layernorm[, pre_feedforward_layernorm, post_feedforward_layernorm]},
//   model.norm, lm_head (absent when tied to the embeddings).
// So `parameters()`, `update(parameters:)`, `freeze`, `valueAndGrad(model:)`
// and `quantize(model:)` work on a language model as on any module.
// Architecture files only read their config into a `TransformerConfiguration`.

import Tessera
import TesseraNN

/// A decoder-only transformer language model.
///
/// ```swift
/// let model = try ModelLoader.load(path).model as! TransformerModel
/// model.parameters()["model.layers.3.self_attn.q_proj.weight"]
/// let loss = valueAndGrad(model: model) { m, x, y in crossEntropy(m(x), y, reduction: .mean) }
/// ```
/// Mutable like every module (`update(parameters:)`): callers that train a
/// model do not decode with it on another task at the same time.
public final class TransformerModel: Module, LanguageModel, @unchecked Sendable {
    public let configuration: TransformerConfiguration
    @ModuleInfo(key: "model") var model: TransformerBody
    @ModuleInfo(key: "lm_head") var lmHead: Linear? = nil

    /// Recompute each block in the backward pass instead of keeping its
    /// intermediates (mlx-lm's `--grad-checkpoint`): less memory for the same gradients.
    public var gradientCheckpointing: Bool {
        get { model.gradientCheckpointing }
        set { model.gradientCheckpointing = newValue }
    }

    public var vocabularySize: Int { configuration.vocabularySize }
    public var contextLength: Int { configuration.contextLength }

    init(configuration c: TransformerConfiguration, weights w: WeightSource) throws {
        try c.validate()
        configuration = c
        super.init()
        model = try TransformerBody(w, c)
        if !c.tiedEmbeddings { lmHead = try w.linear("lm_head", inputs: c.hiddenSize, outputs: c.vocabularySize) }
    }

    public func makeCache(maxSize: Int?, quantization: KVQuantization?) -> [KVCache] {
        let c = configuration
        return c.slidingLayers.map { sliding in
            // A sliding layer never needs more than its window.
            let window = sliding ? c.slidingWindow : nil
            let size = [maxSize, window].compactMap { $0 }.min()
            return KVCache(maxSize: size, quantization: quantization)
        }
    }

    public func callAsFunction(_ tokens: Tensor, cache: [KVCache]) -> Tensor { logits(tokens, cache: cache) }

    /// Logits `[B, L, vocab]` for `tokens` `[B, L]` with causal attention and
    /// no cache: what a training loss differentiates.
    public func callAsFunction(_ tokens: Tensor) -> Tensor { logits(tokens, cache: nil) }

    /// The head (lm_head or the tied embeddings) on the last position only:
    /// a prefill's other positions need no logits (at 2,000 tokens the head
    /// over every position was a fifth of the work and a 393 MB result).
    public func lastLogits(_ tokens: Tensor, cache: [KVCache]) -> Tensor {
        let h = model(tokens, cache: cache)
        return head(h[0..., (h.dim(1) - 1)...])
    }

    private func logits(_ tokens: Tensor, cache: [KVCache]?) -> Tensor { head(model(tokens, cache: cache)) }

    private func head(_ h: Tensor) -> Tensor {
        let logits = lmHead.map { $0(h) } ?? model.embedTokens.asLinear(h)
        guard let cap = configuration.finalSoftcap else { return logits }
        return tanh(logits / cap) * cap
    }
}

/// `model.*`: embeddings, layers, final norm (transformers' `LlamaModel`).
final class TransformerBody: Module {
    @ModuleInfo(key: "embed_tokens") var embedTokens: Embedding
    @ModuleInfo var layers: [DecoderLayer]
    @ModuleInfo var norm: RMSNorm
    let embeddingScale: Float?
    var gradientCheckpointing = false

    init(_ w: WeightSource, _ c: TransformerConfiguration) throws {
        embeddingScale = c.embeddingScale
        let embedding = try w.embedding("model.embed_tokens", count: c.vocabularySize, dimensions: c.hiddenSize)
        let layers = try (0..<c.layerCount).map { try DecoderLayer(w, layer: $0, c) }
        let norm = try w.norm("model.norm", size: c.hiddenSize, c)
        self.layers = layers
        self.norm = norm
        super.init()
        embedTokens = embedding
    }

    /// The final hidden states `[B, L, hidden]`, float32.
    func callAsFunction(_ tokens: Tensor, cache: [KVCache]?) -> Tensor {
        var h = embedTokens.rows(tokens)
        if let embeddingScale { h = h * embeddingScale }
        if let cache {
            for (layer, cache) in zip(layers, cache) { h = layer(h, cache: cache) }
        } else if gradientCheckpointing {
            for layer in layers { h = checkpointed(layer, h) }
        } else {
            for layer in layers { h = layer(h, cache: nil) }
        }
        return norm(h)
    }

    /// `layer(h)` as a checkpoint over h and the layer's trainable parameters:
    /// the backward pass runs the block again. The implicit random state is
    /// put back to where the forward began for that rerun (dropout draws the
    /// same masks), and then to where it was, so later draws are unchanged.
    private func checkpointed(_ layer: DecoderLayer, _ h: Tensor) -> Tensor {
        let trainable = layer.trainableParameters().flattened()
        let keys = trainable.map(\.key)
        let start = Random.state.innerState
        final class Calls: @unchecked Sendable { var count = 0 }
        let calls = Calls()
        let f: ([Tensor]) -> [Tensor] = { inputs in
            calls.count += 1
            let entry = Random.state.innerState
            Random.state.innerState = start
            layer.assign(Dictionary(uniqueKeysWithValues: zip(keys, inputs.dropFirst())))
            let out = layer(inputs[0], cache: nil)
            if calls.count > 1 { Random.state.innerState = entry }
            return [out]
        }
        return checkpoint(f)([h] + trainable.map(\.value))[0]
    }
}

extension Embedding {
    /// Rows `ids` (any shape) as float32 vectors; a quantized table's rows
    /// dequantize in float32 whatever the dtype of its scales.
    func rows(_ ids: Tensor) -> Tensor {
        guard let q = self as? QuantizedEmbedding else { return self(ids).asType(.float32) }
        return dequantize(
            q.weight.take(ids, axis: 0), scales: q.scales.take(ids, axis: 0).asType(.float32),
            biases: q.biases.take(ids, axis: 0).asType(.float32), groupSize: q.groupSize, bits: q.bits
        ).asType(.float32)
    }
}

/// `model.layers.<i>`: attention and MLP with pre-norms (llama, qwen, phi3), or
/// gemma's sandwich norms, which add a norm after each block.
final class DecoderLayer: Module {
    @ModuleInfo(key: "self_attn") var selfAttention: Attention
    @ModuleInfo var mlp: MLP
    @ModuleInfo(key: "input_layernorm") var inputLayerNorm: RMSNorm
    /// Pre-norm: the MLP's input norm. Sandwich: the norm of the attention output.
    @ModuleInfo(key: "post_attention_layernorm") var postAttentionLayerNorm: RMSNorm
    /// Sandwich only: the MLP's input and output norms.
    @ModuleInfo(key: "pre_feedforward_layernorm") var preFeedForwardLayerNorm: RMSNorm? = nil
    @ModuleInfo(key: "post_feedforward_layernorm") var postFeedForwardLayerNorm: RMSNorm? = nil
    let configuration: TransformerConfiguration
    let sandwich: Bool

    init(_ w: WeightSource, layer i: Int, _ c: TransformerConfiguration) throws {
        configuration = c
        sandwich = c.normLayout == .sandwich
        let prefix = "model.layers.\(i)"
        let inputNorm = try w.norm(prefix + ".input_layernorm", size: c.hiddenSize, c)
        let attention = try Attention(w, prefix: prefix + ".self_attn", layer: i, c)
        let postAttentionNorm = try w.norm(prefix + ".post_attention_layernorm", size: c.hiddenSize, c)
        var sandwichNorms: (RMSNorm, RMSNorm)?
        if sandwich {
            sandwichNorms = (
                try w.norm(prefix + ".pre_feedforward_layernorm", size: c.hiddenSize, c),
                try w.norm(prefix + ".post_feedforward_layernorm", size: c.hiddenSize, c)
            )
        }
        mlp = try MLP(w, prefix: prefix + ".mlp", c)
        super.init()
        selfAttention = attention
        inputLayerNorm = inputNorm
        postAttentionLayerNorm = postAttentionNorm
        if let (pre, post) = sandwichNorms {
            preFeedForwardLayerNorm = pre
            postFeedForwardLayerNorm = post
        }
    }

    func callAsFunction(_ h: Tensor, cache: KVCache?) -> Tensor {
        let attended = selfAttention(inputLayerNorm(h), cache: cache, configuration)
        guard sandwich, let preFeedForward = preFeedForwardLayerNorm, let postFeedForward = postFeedForwardLayerNorm
        else {
            let h = h + attended
            return h + mlp(postAttentionLayerNorm(h))
        }
        let mid = h + postAttentionLayerNorm(attended)
        return mid + postFeedForward(mlp(preFeedForward(mid)))
    }
}
