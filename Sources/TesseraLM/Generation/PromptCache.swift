// Saving a model's KV caches to a safetensors file and reading them back, so
// a long shared prompt is processed once. Tensors are `layer.<i>.<j>` (the
// cache's storage, quantized or not); metadata records offsets, sizes,
// quantization, the cache type (f16 / f32, `layer.<i>.kv_cache_type`) and the
// model the caches belong to. A file without a cache type (written before
// float16 caches were the default) loads as float32 caches; `generate` then
// recomputes and replaces it when the run asks for another cache type.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif
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
            info["layer.\(i).kv_cache_type"] = (cache.halfPrecision ? KVCacheType.f16 : .f32).rawValue
            if let q = cache.quantization {
                info["layer.\(i).kv_bits"] = String(q.bits)
                info["layer.\(i).kv_group_size"] = String(q.groupSize)
            }
        }
        try checkedEval(Array(tensors.values))
        try Safetensors.save(tensors, metadata: info, to: path)
    }

    /// Bounds on counts read from a file, checked before they size anything.
    static let maxLayers = 1 << 14, maxOffset = Int(Int32.max)

    /// The caches saved at `path`, and the metadata saved with them. With
    /// `modelIdentity`, a file saved for another model is refused; with `model`,
    /// every tensor must have the shape and dtype that model's caches hold
    /// (layer count, tensors per layer, batch, heads and head size).
    public static func load(
        _ path: String, modelIdentity: String? = nil, model: (any LanguageModel)? = nil
    ) throws -> (caches: [KVCache], metadata: [String: String]) {
        func fail(_ why: String) -> ModelError { .corruptPromptCache(path: path, reason: why) }
        let tensors: [String: Tensor], info: [String: String]
        do { (tensors, info) = try Safetensors.load(path) } catch let error as IOError {
            // Truncated or corrupt bytes: reported, and the file is left for the user to look at.
            if case .notRegularFile = error { throw error }
            if case .cannotOpen = error { throw error }
            throw fail("\(error)")
        }
        guard info["format"] == format else {
            throw fail("not a Tessera prompt cache (format \(info["format"] ?? "none"))")
        }
        if let modelIdentity, info["model"] != modelIdentity {
            throw ModelError.promptCacheForAnotherModel(
                path: path, saved: info["model"] ?? "no model recorded", model: modelIdentity)
        }
        func int(_ key: String, max: Int) throws -> Int? {
            guard let text = info[key] else { return nil }
            guard let v = Int(text), v >= 0, v <= max else { throw fail("\(key) is not a count up to \(max): \(text)") }
            return v
        }
        guard let layers = try int("layers", max: maxLayers) else { throw fail("no layer count") }
        // Layouts by quantization (bits, group size) and cache type, traced once each.
        var layouts: [[Int]: PromptCacheLayout] = [:]
        if let model {
            let expected = model.makeCache(maxSize: nil, quantization: nil).count
            guard layers == expected else { throw fail("\(layers) layers, but the model has \(expected)") }
        }
        var caches: [KVCache] = []
        for i in 0..<layers {
            guard let offset = try int("layer.\(i).offset", max: maxOffset),
                let count = try int("layer.\(i).tensors", max: 6)
            else { throw fail("layer \(i) has no offset or tensor count") }
            var quantization: KVQuantization?
            if let bits = try int("layer.\(i).kv_bits", max: 64) {
                quantization = try KVQuantization(
                    bits: bits, groupSize: try int("layer.\(i).kv_group_size", max: 1 << 16) ?? 64)
            }
            // Files without the key were written by float32 caches.
            let typeName = info["layer.\(i).kv_cache_type"] ?? KVCacheType.f32.rawValue
            guard let type = KVCacheType(rawValue: typeName) else {
                throw fail("layer \(i) has the unknown cache type \"\(typeName)\"")
            }
            // Full precision: keys, values; quantized: three tensors each. All [B, H, length, ·].
            guard [0, 2, 6].contains(count), count != 6 || quantization != nil else {
                throw fail("layer \(i) has \(count) tensors, which do not form a cache")
            }
            var storage: [Tensor] = []
            for j in 0..<count {
                guard let t = tensors["layer.\(i).\(j)"] else { throw fail("no tensor layer.\(i).\(j)") }
                storage.append(t)
            }
            guard storage.allSatisfy({ $0.ndim == 4 && $0.dim(2) == storage[0].dim(2) }),
                storage.isEmpty || storage[0].dim(2) <= offset
            else { throw fail("layer \(i)'s tensors do not form a cache") }
            let maxSize = try int("layer.\(i).max_size", max: maxOffset)
            if let maxSize, let length = storage.first?.dim(2), length > maxSize {
                throw fail("layer \(i) holds \(length) positions, more than its size \(maxSize)")
            }
            // A growing full-precision cache's tensors are of its recorded type.
            let half = type == .f16 && maxSize == nil
            if count == 2, quantization == nil, maxSize == nil,
                !storage.allSatisfy({ $0.dtype == type.dtype })
            {
                throw fail("layer \(i) holds \(storage.map(\.dtype)) tensors, but its cache type is \(typeName)")
            }
            if let model, !storage.isEmpty {
                let key = (quantization.map { [$0.bits, $0.groupSize] } ?? []) + [half ? 1 : 0]
                let layout =
                    layouts[key] ?? PromptCacheLayout(model: model, quantization: quantization, halfPrecision: half)
                layouts[key] = layout
                let expected = layout.layers[i]
                let found = storage.map { t in
                    PromptCacheLayout.Slot(
                        shape: t.shape.enumerated().map { $0.offset == 2 ? 0 : $0.element }, dtype: t.dtype)
                }
                guard found == expected else {
                    throw fail(
                        "layer \(i) holds \(found.map(\.description)), but the model's cache holds \(expected.map(\.description))"
                    )
                }
            }
            caches.append(
                KVCache(
                    storage: storage, offset: offset, maxSize: maxSize, quantization: quantization, halfPrecision: half)
            )
        }
        return (caches, info)
    }
}

/// A prompt cache on disk for `generate`: reused when the prompt starts with
/// the tokens it holds, written (replacing it) otherwise.
public struct PromptCacheFile: Sendable {
    public var path: String
    /// `LoadedModel.identity` of the model generating: a file of another model is refused.
    public var modelIdentity: String

    public init(path: String, modelIdentity: String) {
        self.path = path
        self.modelIdentity = modelIdentity
    }
}

/// What `generate` did with a prompt cache file.
public enum PromptCacheUse: Sendable, Equatable {
    /// The file held the first `tokens` prompt tokens; only the rest was computed.
    case reused(tokens: Int)
    /// The file was written (or replaced) with the first `tokens` prompt tokens.
    case saved(tokens: Int)
}

extension PromptCache {
    /// A generator for `prompt` that uses `file`: with a file whose tokens start
    /// the prompt (and whose caches have the requested size and quantization),
    /// only the rest of the prompt is computed; otherwise the prompt but its last
    /// token is computed and saved (the last token stays out so that a later run
    /// of the same prompt still has a token to compute the first logits from).
    /// Also returns the prefill seconds spent outside the generator (on the
    /// first `n` tokens when the use is `.saved(n)`). A file of
    /// another model, or a corrupt one, is an error and is left alone.
    static func generator(
        model: any LanguageModel, prompt: [Int], parameters: GenerateParameters, file: PromptCacheFile
    ) throws -> (TokenGenerator, PromptCacheUse, extraPrefillSeconds: Double) {
        guard prompt.count >= 2 else {
            throw ModelError.invalidConfiguration("a prompt cache needs a prompt of at least 2 tokens")
        }
        let fresh = parameters.makeCache(for: model)
        if FileManager.default.fileExists(atPath: file.path) {
            let (caches, metadata) = try load(file.path, modelIdentity: file.modelIdentity, model: model)
            let cached = try tokens(metadata["tokens"], path: file.path)
            let compatible =
                caches.count == fresh.count
                && zip(caches, fresh).allSatisfy { saved, new in
                    // A file saved past quantizedKVStart holds the quantization the fresh caches switch to.
                    // Another cache type (a float32 file under the float16 default): recomputed.
                    saved.maxSize == new.maxSize && saved.halfPrecision == new.halfPrecision
                        && (saved.quantization == new.quantization
                            || (parameters.quantizedKVStart > 0 && saved.quantization == parameters.kvQuantization))
                }
                && caches.allSatisfy { $0.offset == cached.count }
            if compatible, prompt.count > cached.count, prompt.starts(with: cached) {
                let generator = try TokenGenerator(
                    model: model, prompt: Array(prompt[cached.count...]), parameters: parameters, cache: caches)
                return (generator, .reused(tokens: cached.count), 0)
            }
        }
        let head = Array(prompt.dropLast())
        let prefill = try TokenGenerator(model: model, prompt: head, parameters: parameters, cache: fresh)
        try saveAtomically(fresh, tokens: head, file: file)
        let generator = try TokenGenerator(
            model: model, prompt: Array(prompt.suffix(1)), parameters: parameters, cache: fresh)
        return (generator, .saved(tokens: head.count), prefill.stats.prefillSeconds)
    }

    static func tokens(_ text: String?, path: String) throws -> [Int] {
        guard let text else { throw ModelError.corruptPromptCache(path: path, reason: "it does not list its tokens") }
        return try text.split(separator: " ").map {
            guard let id = Int($0), id >= 0 else {
                throw ModelError.corruptPromptCache(path: path, reason: "\"\($0)\" is not a token id")
            }
            return id
        }
    }

    /// Writes next to `file.path`, then renames over it.
    static func saveAtomically(_ caches: [KVCache], tokens: [Int], file: PromptCacheFile) throws {
        let temporary = file.path + ".partial-\(getpid())"
        do {
            try save(
                caches, to: temporary, modelIdentity: file.modelIdentity,
                metadata: ["tokens": tokens.map(String.init).joined(separator: " ")])
            guard rename(temporary, file.path) == 0 else {
                throw ModelError.invalidConfiguration("cannot write the prompt cache \(file.path): errno \(errno)")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }
}
