// The decoder every supported architecture is an instance of: embedding,
// layers of attention + gated MLP with pre-norms (or gemma's sandwich norms),
// final norm, LM head. Architecture files only read their config into a
// `TransformerConfiguration`.

import Tessera

public struct TransformerModel: LanguageModel {
    struct Layer: Sendable {
        let attentionNorm: Tensor
        let attention: Attention
        /// Pre-norm: the MLP's input norm. Sandwich: the norm of the attention output.
        let postAttentionNorm: Tensor
        /// Sandwich only: the MLP's input and output norms.
        let preFeedForwardNorm, postFeedForwardNorm: Tensor?
        let mlp: MLP
    }

    public let configuration: TransformerConfiguration
    let embedding: Weight
    let layers: [Layer]
    let norm: Tensor
    let head: Weight

    public var vocabularySize: Int { configuration.vocabularySize }
    public var contextLength: Int { configuration.contextLength }

    init(configuration c: TransformerConfiguration, weights w: WeightSource) throws {
        try c.validate()
        configuration = c
        func normWeight(_ role: WeightRole) throws -> Tensor { try w.vector(role, size: c.hiddenSize) + c.normWeightOffset }
        embedding = try w.weight(.embedding, shape: [c.vocabularySize, c.hiddenSize])
        layers = try (0..<c.layerCount).map { i in
            let sandwich = c.normLayout == .sandwich
            return Layer(
                attentionNorm: try normWeight(.attentionNorm(i)), attention: try Attention(w, layer: i, c),
                postAttentionNorm: try normWeight(.postAttentionNorm(i)),
                preFeedForwardNorm: sandwich ? try normWeight(.preFeedForwardNorm(i)) : nil,
                postFeedForwardNorm: sandwich ? try normWeight(.postFeedForwardNorm(i)) : nil, mlp: try MLP(w, layer: i, c))
        }
        norm = try normWeight(.finalNorm)
        head = c.tiedEmbeddings ? embedding : try w.weight(.head, shape: [c.vocabularySize, c.hiddenSize])
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

    public func callAsFunction(_ tokens: Tensor, cache: [KVCache]) -> Tensor {
        let c = configuration
        var h = embedding.rows(tokens)
        if let scale = c.embeddingScale { h = h * scale }
        func rmsNorm(_ x: Tensor, _ w: Tensor) -> Tensor { Fast.rmsNorm(x, weight: w, eps: c.rmsNormEps) }
        for (layer, cache) in zip(layers, cache) {
            let attended = layer.attention(rmsNorm(h, layer.attentionNorm), cache: cache, c)
            switch c.normLayout {
            case .preNorm:
                h = h + attended
                h = h + layer.mlp(rmsNorm(h, layer.postAttentionNorm), c.activation)
            case .sandwich:
                h = h + rmsNorm(attended, layer.postAttentionNorm)
                let y = layer.mlp(rmsNorm(h, layer.preFeedForwardNorm!), c.activation)
                h = h + rmsNorm(y, layer.postFeedForwardNorm!)
            }
        }
        let logits = head.apply(rmsNorm(h, norm))
        guard let cap = c.finalSoftcap else { return logits }
        return tanh(logits / cap) * cap
    }
}
