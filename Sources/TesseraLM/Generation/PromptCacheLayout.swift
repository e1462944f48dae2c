// The tensors a model's KV caches hold, per layer: shape (the positions axis
// aside) and dtype, found by tracing one token through fresh caches. Tessera
// is lazy, so this builds a graph and evaluates nothing. A prompt cache read
// from disk is checked against it tensor by tensor before it is used.

import Tessera

/// Each layer's cache tensors as `model` fills them: `[batch, heads, ·, width]` and dtype.
struct PromptCacheLayout {
    struct Slot: Equatable, CustomStringConvertible {
        /// The shape with the positions axis (2) set to 0.
        var shape: [Int]
        var dtype: DType

        var description: String {
            "\(dtype)\(shape.enumerated().map { $0.offset == 2 ? "positions" : "\($0.element)" })"
        }
    }

    var layers: [[Slot]]

    init(model: any LanguageModel, quantization: KVQuantization?, halfPrecision: Bool = false) {
        let caches = model.makeCache(maxSize: nil, quantization: quantization)
        if halfPrecision { for c in caches where c.maxSize == nil { c.halfPrecision = true } }
        _ = model(Tensor([Int32(0)], shape: [1, 1]), cache: caches)
        layers = caches.map { cache in
            cache.state.map { t in
                var shape = t.shape
                if shape.count > 2 { shape[2] = 0 }
                return Slot(shape: shape, dtype: t.dtype)
            }
        }
    }
}
