// A language model written as a GGUF file llama.cpp loads (`tessera fuse
// --export-gguf`): the inverse of `WeightSource.gguf`. Tensors go under the
// architecture's llama.cpp names (its `GGUFConventions`), q/k rows permuted
// back for llama.cpp's rope where the architecture says so, gemma norms
// stored as 1 + w, quantized layers dequantized first; 2-D weights are
// stored as F16, Q8_0 or Q4_1 (F16 where a row is not whole blocks of 32),
// everything else F32. Metadata: a GGUF base's own (hyper-parameters,
// tokenizer, chat template) with `general.file_type` replaced; for a folder
// base, the hyper-parameters from its configuration (llama, mistral, qwen2,
// qwen3) and the vocabulary from its byte-level BPE tokenizer.json.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera
import TesseraNN

#if canImport(Glibc)
    import Glibc
#endif

public enum GGUFExport {
    /// The stored type of the 2-D weights.
    public enum FileType: String, Sendable, CaseIterable {
        case f16, q8_0, q4_1

        var tensorType: GGMLType {
            switch self {
            case .f16: return .f16
            case .q8_0: return .q8_0
            case .q4_1: return .q4_1
            }
        }

        /// llama.cpp's `general.file_type` (LLAMA_FTYPE_MOSTLY_*).
        var fileType: UInt32 {
            switch self {
            case .f16: return 1
            case .q8_0: return 7
            case .q4_1: return 3
            }
        }
    }

    /// Writes `model` (adapters fused) to `path` as a GGUF of `type`.
    public static func write(
        _ model: TransformerModel, base: LoadedModel, baseConfig: JSONValue, basePath: String, type: FileType,
        to path: String
    ) throws {
        let adapters = model.namedModules().filter { $0.module is LoRALinear || $0.module is LoRAEmbedding }.map(\.key)
        guard adapters.isEmpty else {
            throw ModelError.invalidConfiguration(
                "fuse the adapters before exporting a GGUF (\(adapters.prefix(3).joined(separator: ", ")))")
        }
        let architecture = try ModelRegistry.architecture(base.modelType)
        let conventions = architecture.gguf
        let c = model.configuration
        var metadata: [(String, GGUFValue)]
        var extra: [GGUFWriter.Entry] = []
        if let file = base.gguf {
            metadata = [("general.architecture", .string(conventions.architecture))]
            let skipped: Set = [
                "general.architecture", "general.alignment", "general.file_type", "general.quantization_version"
            ]
            for key in file.metadata.keys.sorted() where !skipped.contains(key) {
                if let value = file.metadata[key] { metadata.append((key, value)) }
            }
            if file.info("rope_freqs.weight") != nil {
                extra.append(
                    GGUFWriter.Entry(
                        name: "rope_freqs.weight", tensor: try file.tensor("rope_freqs.weight").dense.asType(.float32),
                        type: .f32))
            }
        } else {
            metadata = try hyperParameters(c, modelType: base.modelType, conventions: conventions, name: basePath)
            metadata += try tokenizerMetadata(
                folder: base.folder ?? basePath, config: baseConfig, vocabularySize: c.vocabularySize)
            if let frequencies = c.rope.frequencies {
                // Per-pair divisors of the base frequency (llama 3 scaling), as llama.cpp's rope_freqs.
                let dims = c.ropeDimensions ?? c.headDim
                let factors = frequencies.enumerated().map { i, f in
                    Float(Double(f) / Glibc.pow(Double(c.rope.base), Double(2 * i) / Double(dims)))
                }
                extra.append(GGUFWriter.Entry(name: "rope_freqs.weight", tensor: Tensor(factors), type: .f32))
            }
        }
        metadata.append(("general.file_type", .uint32(type.fileType)))
        metadata.append(("general.quantization_version", .uint32(2)))
        let tensors = try entries(model, conventions: conventions, type: type.tensorType) + extra
        try GGUFWriter.write(metadata: metadata, tensors: tensors, to: path)
    }

    /// The model's tensors, dense, under llama.cpp's names and conventions.
    static func entries(_ model: TransformerModel, conventions: GGUFConventions, type: GGMLType) throws -> [GGUFWriter
        .Entry]
    {
        let c = model.configuration
        let parameters = model.parameters().flatDictionary
        var modules: [String: Module] = [:]
        for (path, module) in model.namedModules() { modules[path] = module }
        var out: [GGUFWriter.Entry] = []
        for (name, stored) in parameters.sorted(by: { $0.key < $1.key }) {
            guard let dot = name.lastIndex(of: ".") else { continue }
            let base = String(name[..<dot]), suffix = String(name[name.index(after: dot)...])
            let quantized = parameters[base + ".scales"] != nil
            if suffix == "scales" || (suffix == "biases" && quantized) { continue }
            var value = stored
            if quantized, suffix == "weight" {
                let format: (Int, Int)
                if let q = modules[base] as? QuantizedLinear {
                    format = (q.groupSize, q.bits)
                } else if let q = modules[base] as? QuantizedEmbedding {
                    format = (q.groupSize, q.bits)
                } else {
                    throw ModelError.invalidConfiguration("\(base) has scales but is not a quantized layer")
                }
                guard let scales = parameters[base + ".scales"] else {
                    throw ModelError.missingTensor(base + ".scales")
                }
                let biases = parameters[base + ".biases"] ?? Tensor.zerosLike(scales)
                value = Tessera.dequantize(stored, scales: scales, biases: biases, groupSize: format.0, bits: format.1)
            }
            value = value.asType(.float32)
            if conventions.permutedQueryKey {
                if base.hasSuffix("self_attn.q_proj") {
                    value = permuted(value, heads: c.headCount, headDim: c.headDim)
                }
                if base.hasSuffix("self_attn.k_proj") {
                    value = permuted(value, heads: c.kvHeadCount, headDim: c.headDim)
                }
            }
            if conventions.normsIncludeOne, base.hasSuffix("norm"), suffix == "weight" { value = value + 1 }
            try checkedEval([value])
            let columns = value.shape.last ?? 1
            let stored: GGMLType = value.ndim == 2 ? (type == .f16 || columns % 32 != 0 ? .f16 : type) : .f32
            out.append(GGUFWriter.Entry(name: conventions.ggufName(base) + "." + suffix, tensor: value, type: stored))
        }
        return out
    }

    /// Hugging Face q/k rows (each head's rotation halves) interleaved per
    /// head as llama.cpp's "normal" rope wants them (the inverse of the loader's un-permutation).
    static func permuted(_ t: Tensor, heads: Int, headDim: Int) -> Tensor {
        guard t.shape.first == heads * headDim, headDim % 2 == 0 else { return t }
        let columns = t.ndim == 2 ? [t.dim(1)] : []
        return t.reshaped([heads, 2, headDim / 2] + columns).swappedAxes(1, 2).reshaped(t.shape)
    }

    /// `<arch>.*` keys for a folder's configuration (the keys GGUFModelDescription reads back).
    static func hyperParameters(
        _ c: TransformerConfiguration, modelType: String, conventions: GGUFConventions, name: String
    ) throws -> [(String, GGUFValue)] {
        guard ["llama", "mistral", "qwen2", "qwen3"].contains(modelType) else {
            throw ModelError.invalidConfiguration(
                "a GGUF from a \(modelType) folder is not supported (llama, mistral, qwen2, qwen3); fuse from a GGUF base instead"
            )
        }
        let arch = conventions.architecture
        let title = name.split(separator: "/").last.map(String.init) ?? name
        var fields: [(String, GGUFValue)] = [
            ("general.architecture", .string(arch)), ("general.name", .string(title)),
            ("\(arch).context_length", .uint32(UInt32(clamping: c.contextLength))),
            ("\(arch).embedding_length", .uint32(UInt32(clamping: c.hiddenSize))),
            ("\(arch).block_count", .uint32(UInt32(clamping: c.layerCount))),
            ("\(arch).feed_forward_length", .uint32(UInt32(clamping: c.intermediateSize))),
            ("\(arch).attention.head_count", .uint32(UInt32(clamping: c.headCount))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(clamping: c.kvHeadCount))),
            ("\(arch).attention.key_length", .uint32(UInt32(clamping: c.headDim))),
            ("\(arch).attention.value_length", .uint32(UInt32(clamping: c.headDim))),
            ("\(arch).rope.dimension_count", .uint32(UInt32(clamping: c.ropeDimensions ?? c.headDim))),
            ("\(arch).rope.freq_base", .float32(c.rope.base)),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(c.rmsNormEps)),
            ("\(arch).vocab_size", .uint32(UInt32(clamping: c.vocabularySize)))
        ]
        if c.rope.scale != 1 {
            fields.append(("\(arch).rope.scaling.type", .string("linear")))
            fields.append(("\(arch).rope.scaling.factor", .float32(1 / c.rope.scale)))
        }
        if let window = c.slidingWindow, c.slidingLayers.contains(true) {
            throw ModelError.invalidConfiguration(
                "a GGUF of a \(modelType) with a sliding window of \(window) is not supported")
        }
        return fields
    }

    /// `tokenizer.*` keys from a folder's byte-level BPE tokenizer.json (and
    /// tokenizer_config.json for the chat template and BOS/EOS tokens).
    static func tokenizerMetadata(folder: String, config: JSONValue, vocabularySize: Int) throws -> [(
        String, GGUFValue
    )] {
        let path = folder + "/tokenizer.json"
        guard FileManager.default.fileExists(atPath: path) else {
            throw ModelError.invalidConfiguration("\(folder) has no tokenizer.json for the GGUF's vocabulary")
        }
        let json: JSONValue
        do { json = try JSONValue(parsing: try readRegularFile(path, maxBytes: 1 << 30)) } catch {
            throw ModelError.invalidConfiguration("tokenizer.json: \(error)")
        }
        let model = json["model"]
        guard model?["type"]?.string == "BPE", case .object(let vocab)? = model?["vocab"] else {
            throw ModelError.invalidConfiguration(
                "a GGUF vocabulary needs a BPE tokenizer.json (model.type BPE with a vocab)")
        }
        let byteLevel =
            json["pre_tokenizer"]?.compactText.contains("ByteLevel") == true
            || json["decoder"]?.compactText.contains("ByteLevel") == true
        guard byteLevel else {
            throw ModelError.invalidConfiguration("only byte-level BPE tokenizers are written to a GGUF from a folder")
        }
        var tokens = [String?](repeating: nil, count: vocabularySize)
        var types = [Int32](repeating: 1, count: vocabularySize)
        func place(_ token: String, _ id: Int?, type: Int32) throws {
            guard let id, id >= 0, id < vocabularySize else {
                throw ModelError.invalidConfiguration(
                    "tokenizer.json: token \(token) has an id outside the \(vocabularySize) embeddings")
            }
            tokens[id] = token
            types[id] = type
        }
        for (token, id) in vocab { try place(token, id.int, type: 1) }
        for added in json["added_tokens"]?.array ?? [] {
            guard let content = added["content"]?.string else { continue }
            try place(content, added["id"]?.int, type: added["special"]?.bool == true ? 3 : 4)
        }
        // Rows with no token (embeddings padded past the vocabulary): unused placeholders.
        let names: [GGUFValue] = tokens.enumerated().map { i, t in
            if let t { return .string(t) }
            types[i] = 5
            return .string("[PAD\(i)]")
        }
        var merges: [GGUFValue] = []
        for merge in model?["merges"]?.array ?? [] {
            if let s = merge.string {
                merges.append(.string(s))
            } else if let pair = merge.array?.compactMap(\.string), pair.count == 2 {
                merges.append(.string(pair[0] + " " + pair[1]))
            }
        }
        var fields: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", .array(names)),
            ("tokenizer.ggml.token_type", .array(types.map { .int32($0) }))
        ]
        if !merges.isEmpty { fields.append(("tokenizer.ggml.merges", .array(merges))) }
        let tokenizerConfig = try? JSONValue(
            parsing: try readRegularFile(folder + "/tokenizer_config.json", maxBytes: 64 << 20))
        func id(_ key: String) -> Int? {
            if let i = config[key + "_id"]?.int { return i }
            if let first = config[key + "_id"]?.array?.first?.int { return first }
            let token = tokenizerConfig?[key]?.string ?? tokenizerConfig?[key]?["content"]?.string
            return token.flatMap { t in tokens.firstIndex(of: t) }
        }
        for (key, name) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id")] {
            if let i = id(key), i >= 0, i < vocabularySize {
                fields.append(("tokenizer.ggml." + name, .uint32(UInt32(i))))
            }
        }
        if let add = tokenizerConfig?["add_bos_token"]?.bool {
            fields.append(("tokenizer.ggml.add_bos_token", .bool(add)))
        }
        var template = tokenizerConfig?["chat_template"]?.string
        if template == nil, let bytes = try? readRegularFile(folder + "/chat_template.jinja", maxBytes: 1 << 20) {
            template = String(decoding: bytes, as: UTF8.self)
        }
        if let template { fields.append(("tokenizer.chat_template", .string(template))) }
        return fields
    }
}
