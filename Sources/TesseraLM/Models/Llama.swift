// Llama (Llama 2/3.x, SmolLM2, Mistral): pre-norm decoder blocks of grouped-
// query attention with rotary embeddings and a SwiGLU MLP, RMSNorm, optional
// tied embeddings.

import Tessera

public struct LlamaConfiguration: Sendable, Equatable {
    public var hiddenSize: Int
    public var layerCount: Int
    public var intermediateSize: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabularySize: Int
    public var contextLength: Int
    public var ropeTheta: Float
    public var rmsNormEps: Float
    /// Rotate interleaved pairs (GGUF stores q/k rows permuted for it) or halves (Hugging Face layout).
    public var ropeTraditional: Bool
    public var tiedEmbeddings: Bool

    func validate() throws {
        guard hiddenSize > 0, layerCount > 0, headCount > 0, kvHeadCount > 0, headDim > 0, vocabularySize > 0 else {
            throw ModelError.invalidConfiguration("sizes must be positive: \(self)")
        }
        guard headCount % kvHeadCount == 0 else {
            throw ModelError.invalidConfiguration("\(headCount) heads is not a multiple of \(kvHeadCount) key/value heads")
        }
    }
}

public struct LlamaModel: LanguageModel {
    struct Layer: Sendable {
        let attentionNorm: Tensor
        let q, k, v, o: Weight
        let mlpNorm: Tensor
        let gate, up, down: Weight
    }

    public let configuration: LlamaConfiguration
    let embedding: Weight
    let layers: [Layer]
    let norm: Tensor
    let head: Weight

    public var vocabularySize: Int { configuration.vocabularySize }
    public var contextLength: Int { configuration.contextLength }

    /// Builds the model from tensors named as `names` maps them (GGUF or Hugging Face names).
    init(configuration c: LlamaConfiguration, weights: WeightSource) throws {
        try c.validate()
        configuration = c
        let qOut = c.headCount * c.headDim, kvOut = c.kvHeadCount * c.headDim
        embedding = try weights.weight(.embedding, shape: [c.vocabularySize, c.hiddenSize])
        layers = try (0..<c.layerCount).map { i in
            Layer(
                attentionNorm: try weights.vector(.attentionNorm(i), size: c.hiddenSize),
                q: try weights.weight(.q(i), shape: [qOut, c.hiddenSize]),
                k: try weights.weight(.k(i), shape: [kvOut, c.hiddenSize]),
                v: try weights.weight(.v(i), shape: [kvOut, c.hiddenSize]),
                o: try weights.weight(.o(i), shape: [c.hiddenSize, qOut]),
                mlpNorm: try weights.vector(.mlpNorm(i), size: c.hiddenSize),
                gate: try weights.weight(.gate(i), shape: [c.intermediateSize, c.hiddenSize]),
                up: try weights.weight(.up(i), shape: [c.intermediateSize, c.hiddenSize]),
                down: try weights.weight(.down(i), shape: [c.hiddenSize, c.intermediateSize]))
        }
        norm = try weights.vector(.finalNorm, size: c.hiddenSize)
        head = c.tiedEmbeddings ? embedding : try weights.weight(.head, shape: [c.vocabularySize, c.hiddenSize])
    }

    public func makeCache(maxSize: Int?) -> [KVCache] { layers.map { _ in KVCache(maxSize: maxSize) } }

    public func callAsFunction(_ tokens: Tensor, cache: [KVCache]) -> Tensor {
        let c = configuration
        let (b, l) = (tokens.dim(0), tokens.dim(1))
        var h = embedding.rows(tokens)
        let scale = 1 / Float(c.headDim).squareRoot()
        for (layer, cache) in zip(layers, cache) {
            let x = Fast.rmsNorm(h, weight: layer.attentionNorm, eps: c.rmsNormEps)
            func heads(_ t: Tensor, _ n: Int) -> Tensor { t.reshaped([b, l, n, c.headDim]).transposed(axes: [0, 2, 1, 3]) }
            var q = heads(layer.q.apply(x), c.headCount)
            var k = heads(layer.k.apply(x), c.kvHeadCount)
            let v = heads(layer.v.apply(x), c.kvHeadCount)
            q = Fast.rope(q, dimensions: c.headDim, traditional: c.ropeTraditional, base: c.ropeTheta, offset: cache.offset)
            k = Fast.rope(k, dimensions: c.headDim, traditional: c.ropeTraditional, base: c.ropeTheta, offset: cache.offset)
            let (keys, values) = cache.update(keys: k, values: v)
            let attended = Fast.scaledDotProductAttention(
                queries: q, keys: keys, values: values, scale: scale, mask: l > 1 ? .causal : .none)
            h = h + layer.o.apply(attended.transposed(axes: [0, 2, 1, 3]).reshaped([b, l, c.headCount * c.headDim]))
            let y = Fast.rmsNorm(h, weight: layer.mlpNorm, eps: c.rmsNormEps)
            let g = layer.gate.apply(y)
            h = h + layer.down.apply(g * sigmoid(g) * layer.up.apply(y))
        }
        return head.apply(Fast.rmsNorm(h, weight: norm, eps: c.rmsNormEps))
    }
}
