// What a GGUF file's metadata says about its model: the hyper-parameters
// (`<arch>.*` keys) rewritten as a Hugging Face config.json, so the
// architecture files read them as they read a folder's. The tensors'
// names, q/k permutation and norm storage are each architecture's
// `GGUFConventions` (in its file). Metadata conventions read here:
//   - llama 3 rope scaling as a `rope_freqs` tensor of per-pair divisors;
//   - gemma2/gemma3: sliding pattern, local rope base and query scale that
//     llama.cpp fixes per architecture when the file has no key for them;
//   - phi3: partial rotary as `rope.dimension_count`;
//   - tied embeddings: no `output.weight`.

import Tessera

#if canImport(Glibc)
    import Glibc
#endif

struct GGUFModelDescription {
    let architecture: String
    let modelType: String
    /// The hyper-parameters as a Hugging Face config.json.
    let config: JSONValue
    /// How the architecture's tensors are stored.
    let conventions: GGUFConventions
    /// `rope_freqs.weight`: divisors of each rotated pair's frequency (llama 3 scaling).
    var ropeFactors: [Float]?

    init(_ file: GGUFFile) throws {
        let arch = try Self.string(file, "general.architecture") ?? "(none)"
        let architectureType = try ModelRegistry.architecture(gguf: arch)
        guard let modelType = architectureType.modelTypes.first else { throw ModelError.unknownModelType(arch) }
        architecture = arch
        self.modelType = modelType
        conventions = architectureType.gguf
        let gemma = arch.hasPrefix("gemma")
        typealias L = ConfigurationLimits

        // Each key is typed and in range as it is read (ModelError.configurationField naming the GGUF key).
        func value(_ key: String) -> GGUFValue? { file.metadata["\(arch).\(key)"] }
        func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
            guard let v = value(key) else { return nil }
            guard let i = v.int else {
                throw ModelError.configurationField(field: "\(arch).\(key)", value: v.typeName, allowed: "an integer")
            }
            return try L.check("\(arch).\(key)", i, range)
        }
        func required(_ key: String, in range: ClosedRange<Int>) throws -> Int {
            guard let v = try int(key, in: range) else {
                throw ModelError.invalidConfiguration("GGUF metadata has no \(arch).\(key)")
            }
            return v
        }
        func positive(_ key: String, max: Double) throws -> Double? {
            guard let v = value(key) else { return nil }
            guard let d = v.double else {
                throw ModelError.configurationField(field: "\(arch).\(key)", value: v.typeName, allowed: "a number")
            }
            return try L.positive("\(arch).\(key)", d, max: max)
        }

        let hidden = try required("embedding_length", in: L.hidden),
            heads = try required("attention.head_count", in: L.heads)
        let layers = try required("block_count", in: L.layers)
        let headDim = try int("attention.key_length", in: L.headDim) ?? Swift.max(hidden / heads, 1)
        _ = try L.product("\(arch).attention.head_count × key_length", heads, headDim, L.projection)
        if let valueLength = try int("attention.value_length", in: L.headDim), valueLength != headDim {
            throw ModelError.invalidConfiguration("GGUF key length \(headDim) and value length \(valueLength) differ")
        }
        guard let embedding = file.info("token_embd.weight") else {
            throw ModelError.missingTensor("token_embd.weight")
        }
        guard embedding.shape.count == 2 else {
            throw ModelError.tensorShape(name: "token_embd.weight", expected: [-1, hidden], got: embedding.shape)
        }
        let vocabulary = try L.check("token_embd.weight rows (vocabulary)", embedding.shape[0], L.vocabulary)
        let base = try positive("rope.freq_base", max: L.ropeBase) ?? (arch == "gemma3" ? 1_000_000 : 10000)
        var fields: [(String, JSONValue)] = [
            ("architectures", .array([.string(conventions.className)])), ("model_type", .string(modelType)),
            ("hidden_size", .int(hidden)),
            ("intermediate_size", .int(try required("feed_forward_length", in: L.intermediate))),
            ("num_hidden_layers", .int(layers)), ("num_attention_heads", .int(heads)),
            ("num_key_value_heads", .int(try int("attention.head_count_kv", in: 1...heads) ?? heads)),
            ("head_dim", .int(headDim)), ("vocab_size", .int(vocabulary)),
            ("max_position_embeddings", .int(try int("context_length", in: L.context) ?? 4096)),
            (
                "rms_norm_eps",
                .double(try positive("attention.layer_norm_rms_epsilon", max: L.rmsEps) ?? (gemma ? 1e-6 : 1e-5))
            ),
            ("rope_theta", .double(base)), ("tie_word_embeddings", .bool(file.info("output.weight") == nil))
        ]
        // Linear position scaling (gemma3's global layers, some llamas); llama 3 scaling comes as rope_freqs.
        let scalingType: String
        switch value("rope.scaling.type") {
        case nil: scalingType = "none"
        case .string(let s)?: scalingType = s
        case let other?:
            throw ModelError.configurationField(
                field: "\(arch).rope.scaling.type", value: other.typeName, allowed: "a string")
        }
        switch scalingType {
        case "none": break
        case "linear":
            guard let factor = try positive("rope.scaling.factor", max: L.ropeFactor) else {
                throw ModelError.invalidConfiguration("GGUF linear rope scaling without a positive factor")
            }
            fields.append(("rope_scaling", .object(JSONObject([("rope_type", "linear"), ("factor", .double(factor))]))))
        case let other:
            throw ModelError.configurationField(
                field: "\(arch).rope.scaling.type", value: "\"\(other)\"", allowed: "\"none\" or \"linear\"")
        }
        let rotated = try int("rope.dimension_count", in: 1...headDim) ?? headDim
        if arch == "phi3" {
            fields.append(("partial_rotary_factor", .double(Double(rotated) / Double(headDim))))
        } else if rotated != headDim {
            throw ModelError.invalidConfiguration(
                "GGUF \(arch) rotates \(rotated) of \(headDim) head features (not supported)")
        }
        if arch == "llama" || arch == "mistral" {
            fields.append(("attention_bias", .bool(file.info("blk.0.attn_q.bias") != nil)))
        }
        let window = try int("attention.sliding_window", in: 0...L.slidingWindow.upperBound)
        if let window, window > 0 { fields.append(("sliding_window", .int(window))) }
        if gemma {
            for key in ["attn_logit_softcapping", "final_logit_softcapping"] {
                // 0 means none (as llama.cpp writes it).
                if value(key)?.double != 0, let cap = try positive(key, max: L.softcap) {
                    fields.append((key, .double(cap)))
                }
            }
            fields.append(
                (
                    "query_pre_attn_scalar",
                    .double(
                        try Self.gemmaQueryScalar(
                            scale: try positive("attention.scale", max: 1e6), arch: arch, layers: layers,
                            hidden: hidden, heads: heads,
                            headDim: headDim))
                ))
            // llama.cpp: gemma2 slides on even layers, gemma3 on 5 of every 6, unless the file says.
            let pattern =
                try Self.slidingPattern(value("attention.sliding_window_pattern"), layers: layers)
                ?? (0..<layers).map { arch == "gemma2" ? $0 % 2 == 0 : ($0 + 1) % 6 != 0 }
            fields.append(("layer_types", .array(pattern.map { .string($0 ? "sliding_attention" : "full_attention") })))
            if arch == "gemma3" {
                fields.append(
                    ("rope_local_base_freq", .double(try positive("rope.freq_base_swa", max: L.ropeBase) ?? 10000)))
            }
        }
        for (key, name) in [
            ("bos_token_id", "tokenizer.ggml.bos_token_id"), ("eos_token_id", "tokenizer.ggml.eos_token_id")
        ] {
            guard let v = file.metadata[name] else { continue }
            guard let id = v.int else {
                throw ModelError.configurationField(field: name, value: v.typeName, allowed: "an integer token id")
            }
            fields.append((key, .int(try L.check(name, id, 0...(vocabulary - 1)))))
        }
        config = .object(JSONObject(fields))

        if file.info("rope_freqs.weight") != nil {
            let factors = try file.tensor("rope_freqs.weight").dense
            guard factors.shape == [rotated / 2] else {
                throw ModelError.tensorShape(name: "rope_freqs.weight", expected: [rotated / 2], got: factors.shape)
            }
            ropeFactors = factors.asType(.float32).toArray(Float.self)
        } else {
            ropeFactors = nil
        }
        for name in ["rope_factors_long.weight", "rope_factors_short.weight"] where file.info(name) != nil {
            throw ModelError.invalidConfiguration("GGUF \(arch) with LongRoPE factors (\(name)) is not supported")
        }
    }

    /// The string metadata `key` (nil when absent; another type is an error naming the key).
    static func string(_ file: GGUFFile, _ key: String) throws -> String? {
        guard let v = file.metadata[key] else { return nil }
        guard let s = v.string else {
            throw ModelError.configurationField(field: key, value: v.typeName, allowed: "a string")
        }
        return s
    }

    /// The transformer configuration (for the tensors as `WeightSource.gguf` reads them).
    func configuration() throws -> TransformerConfiguration {
        var c = try ModelRegistry.architecture(modelType).configuration(ConfigReader(json: config))
        if let ropeFactors {
            let dims = c.ropeDimensions ?? c.headDim
            let base = Double(c.rope.base)
            c.rope.frequencies = ropeFactors.enumerated().map { i, f in
                Float(Glibc.pow(base, Double(2 * i) / Double(dims)) * Double(f))
            }
        }
        return c
    }

    /// 1/scale², or llama.cpp's fixed choice: √head_dim, except for the 27B
    /// sizes (gemma2 46 layers, gemma3 62), which scale by hidden / heads.
    static func gemmaQueryScalar(scale: Double?, arch: String, layers: Int, hidden: Int, heads: Int, headDim: Int)
        throws -> Double
    {
        if let scale {
            guard scale > 0 else {
                throw ModelError.invalidConfiguration("GGUF \(arch).attention.scale must be positive")
            }
            return 1 / (scale * scale)
        }
        let is27B = (arch == "gemma2" && layers == 46) || (arch == "gemma3" && layers == 62)
        return Double(is27B ? hidden / heads : headDim)
    }

    /// `attention.sliding_window_pattern`: n (every n-th layer global) or one flag per layer.
    static func slidingPattern(_ value: GGUFValue?, layers: Int) throws -> [Bool]? {
        guard let value else { return nil }
        if let n = value.int {
            guard n > 0, n <= ConfigurationLimits.layers.upperBound else {
                throw ModelError.configurationField(
                    field: "sliding_window_pattern", value: String(n),
                    allowed: "an integer in 1...\(ConfigurationLimits.layers.upperBound) or \(layers) flags")
            }
            return (0..<layers).map { ($0 + 1) % n != 0 }
        }
        guard let array = value.array, case let flags = array.compactMap(\.bool), flags.count == array.count,
            flags.count == layers
        else {
            throw ModelError.invalidConfiguration("GGUF sliding_window_pattern must be an integer or \(layers) flags")
        }
        return flags
    }
}
