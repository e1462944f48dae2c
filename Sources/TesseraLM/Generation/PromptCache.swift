// Saving a model's KV caches to a safetensors file and reading them back, so
// a long shared prompt is processed once. Tensors are `layer.<i>.<j>` (the
// cache's storage, quantized or not); metadata records offsets, sizes,
// quantization and the model the caches belong to.

import Tessera

public enum PromptCache {
    static let format = "tessera.prompt_cache.v1"

    /// Writes `caches` (after evaluating them) to `path`, tagged with `modelIdentity`
    /// (see `LoadedModel.identity`) and `metadata` of the caller's.
    public static func save(
        _ caches: [KVCache], to path: String, modelIdentity: String, metadata: [String: String] = [:]
    ) throws {
        var tensors: [String: Tensor] = [:]
        var info = metadata
        info["format"] = format
        info["model"] = modelIdentity
        info["layers"] = String(caches.count)
        for (i, cache) in caches.enumerated() {
            for (j, t) in cache.state.enumerated() { tensors["layer.\(i).\(j)"] = t }
            info["layer.\(i).offset"] = String(cache.offset)
            info["layer.\(i).tensors"] = String(cache.state.count)
            if let maxSize = cache.maxSize { info["layer.\(i).max_size"] = String(maxSize) }
            if let q = cache.quantization {
                info["layer.\(i).kv_bits"] = String(q.bits)
                info["layer.\(i).kv_group_size"] = String(q.groupSize)
            }
        }
        eval(Array(tensors.values))
        try Safetensors.save(tensors, metadata: info, to: path)
    }

    /// The caches saved at `path`, and the metadata saved with them. With
    /// `modelIdentity`, a file saved for another model is refused.
    public static func load(_ path: String, modelIdentity: String? = nil) throws -> (caches: [KVCache], metadata: [String: String]) {
        let (tensors, info) = try Safetensors.load(path)
        func fail(_ why: String) -> ModelError { .invalidConfiguration("prompt cache \(path): \(why)") }
        guard info["format"] == format else { throw fail("not a Tessera prompt cache (format \(info["format"] ?? "none"))") }
        if let modelIdentity, info["model"] != modelIdentity {
            throw fail("saved for model \(info["model"] ?? "?"), not \(modelIdentity)")
        }
        func int(_ key: String) throws -> Int? {
            guard let text = info[key] else { return nil }
            guard let v = Int(text), v >= 0 else { throw fail("\(key) is not a count: \(text)") }
            return v
        }
        guard let layers = try int("layers") else { throw fail("no layer count") }
        let caches = try (0..<layers).map { i -> KVCache in
            guard let offset = try int("layer.\(i).offset"), let count = try int("layer.\(i).tensors") else {
                throw fail("layer \(i) has no offset")
            }
            var quantization: KVQuantization?
            if let bits = try int("layer.\(i).kv_bits") {
                quantization = try KVQuantization(bits: bits, groupSize: try int("layer.\(i).kv_group_size") ?? 64)
            }
            let storage = try (0..<count).map { j -> Tensor in
                guard let t = tensors["layer.\(i).\(j)"] else { throw ModelError.missingTensor("layer.\(i).\(j)") }
                return t
            }
            // Full precision: keys, values; quantized: three tensors each. All [B, H, length, ·].
            guard [0, 2, 6].contains(count), storage.allSatisfy({ $0.ndim == 4 && $0.dim(2) == storage[0].dim(2) }),
                storage.isEmpty || storage[0].dim(2) <= offset, count != 6 || quantization != nil
            else { throw fail("layer \(i)'s tensors do not form a cache") }
            return KVCache(storage: storage, offset: offset, maxSize: try int("layer.\(i).max_size"), quantization: quantization)
        }
        return (caches, info)
    }
}
