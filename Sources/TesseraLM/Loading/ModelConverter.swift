// `tessera convert`: a model (HF/MLX folder or GGUF) rewritten as an
// mlx-community-style quantized folder: every 2-D `.weight` whose rows split
// into groups becomes MLX affine weight/scales/biases, config.json gains
// `quantization`, tokenizer files are copied (from a GGUF: written from its
// tokenizer metadata). Written to a temporary folder
// next to the output, then renamed into place.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera

#if canImport(Glibc)
    import Glibc
#endif

public enum ModelConverter {
    static let tokenizerFiles = [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
        "chat_template.json", "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt"
    ]

    /// Where a conversion is: called after each tensor is written.
    public struct Progress: Sendable {
        /// The tensor just written (its output name).
        public let tensor: String
        /// Tensors written so far, of `tensorCount`.
        public let tensorsWritten: Int
        public let tensorCount: Int
        /// Data bytes written so far, of `byteCount` (model.safetensors' tensor data).
        public let bytesWritten: Int
        public let byteCount: Int

        public init(tensor: String, tensorsWritten: Int, tensorCount: Int, bytesWritten: Int, byteCount: Int) {
            self.tensor = tensor
            self.tensorsWritten = tensorsWritten
            self.tensorCount = tensorCount
            self.bytesWritten = bytesWritten
            self.byteCount = byteCount
        }
    }

    /// What a conversion wrote, and what it could not.
    public struct Report: Sendable {
        /// Tensors and data bytes in model.safetensors.
        public let tensorCount: Int
        public let byteCount: Int
        /// Whether an existing folder at the output was replaced (`replace: true`).
        public let replacedExisting: Bool
        /// What the folder lacks or what was left as it was, one line each
        /// (a GGUF without a tokenizer, a model without a chat template, ...).
        public let warnings: [String]
    }

    /// Converts `model` into a folder `output`, which must not exist yet unless
    /// `replace` (then an existing model folder there is replaced: the new one is
    /// written beside it and swapped in, so `output` is always a whole folder).
    /// Without `groupSize`: 64 for folders, 32 for GGUF files, whose Q4_0/Q4_1/Q8_0
    /// blocks are 32 wide (a coarser group re-quantizes already-quantized weights
    /// visibly worse: SmolLM2-135M Q4_1 at 4 bits, group 64, loses its answers).
    /// `embeddingBits` is the width of `embed_tokens` and `lm_head`; without it,
    /// 8 from a GGUF (whose embedding is commonly Q8_0 or Q6_K: a 4-bit copy
    /// changes SmolLM2's answers) and `bits` from a folder (as mlx-lm writes).
    /// `recipe` is one of mlx-lm's mixed-precision `--quant-predicate` recipes
    /// (its bits replace `bits`). With `dense` (float32, float16 or bfloat16)
    /// nothing is quantized: every float tensor is written in that dtype (as
    /// mlx-lm's `convert --dtype`). Tensors are read, converted and written one
    /// at a time, so memory holds about one tensor beside the (mapped) input.
    @discardableResult
    public static func convert(
        model: String, output: String, bits: Int = 4, groupSize: Int? = nil, dense: DType? = nil,
        embeddingBits: Int? = nil, recipe: QuantizationRecipe? = nil, replace: Bool = false,
        progress: (Progress) -> Void = { _ in }
    ) throws -> Report {
        if let dense, ![DType.float32, .float16, .bfloat16].contains(dense) {
            throw ModelError.invalidConfiguration("a dense folder is float32, float16 or bfloat16, not \(dense)")
        }
        let widths = [2, 3, 4, 5, 6, 8]
        guard widths.contains(bits), widths.contains(embeddingBits ?? bits), [32, 64, 128].contains(groupSize ?? 32)
        else {
            throw ModelError.invalidConfiguration("bits must be 2, 3, 4, 5, 6 or 8 and group size 32, 64 or 128")
        }
        let replacing = try checkOutput(output, replace: replace)
        var info = stat()
        guard stat(model, &info) == 0 else { throw ModelError.modelNotFound("no model at \(model)") }
        let isFolder = (info.st_mode & S_IFMT) == S_IFDIR
        let groupSize = groupSize ?? (isFolder ? 64 : 32)
        var config: JSONValue, tensors: [String: ConversionSource]
        var tokenizerFiles: [(String, JSONValue)] = []
        var warnings: [String] = []
        if isFolder {
            (config, tensors) = try readFolder(model)
            warnings += folderWarnings(model)
        } else {
            var unused: [String]
            (config, tensors, tokenizerFiles, unused) = try readGGUF(model)
            warnings += ggufWarnings(tokenizerFiles)
            unused.removeAll { $0 == "rope_freqs.weight" }  // in config.json's rope_scaling
            if !unused.isEmpty {
                warnings.append(
                    "GGUF tensors with no Hugging Face name were left out: " + unused.sorted().joined(separator: ", "))
            }
        }
        var fields = (config.object ?? JSONObject()).filter {
            $0.key != "quantization" && $0.key != "quantization_config"
        }
        .map { ($0.key, $0.value) }
        fields = withSlidingWindowPattern(withLegacyRopeKeys(fields))
        let plan: ConversionPlan
        if let dense {
            plan = ConversionPlan(dense: tensors, dtype: dense)
            fields = fields.filter { $0.0 != "torch_dtype" } + [("torch_dtype", .string("\(dense)"))]
        } else {
            let choose = LayerBits(
                bits: recipe?.lowBits ?? bits, embeddingBits: embeddingBits ?? (isFolder ? nil : 8), recipe: recipe,
                layerCount: config["num_hidden_layers"]?.int ?? 0)
            plan = ConversionPlan(quantizing: tensors, groupSize: groupSize, bits: choose.bits(for:))
            let parameters = plan.quantizationConfig(groupSize: groupSize, bits: choose.defaultBits)
            fields += [("quantization", parameters), ("quantization_config", parameters)]
            if plan.keptDense > 0 {
                warnings.append(
                    "\(plan.keptDense) 2-D weight(s) kept unquantized: their rows do not split into groups of \(groupSize)"
                )
            }
        }
        tensors = [:]  // the plan holds the (lazy) tensors now; each is released once written
        config = .object(JSONObject(fields))

        removeUnfinished(of: output)
        let temporary = output + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        // POSIX calls, so a failure is IOError.cannotWrite with the path and strerror (not Foundation's text).
        do {
            guard mkdir(temporary, 0o755) == 0 else {
                throw IOError.cannotWrite(path: temporary, reason: String(cString: strerror(errno)))
            }
            let entries = plan.entries
            let total = entries.reduce(0) { $0 + $1.nbytes }
            var count = 0
            try Safetensors.save(
                plan: entries, metadata: ["format": "mlx"], to: temporary + "/model.safetensors", produce: plan.produce,
                written: { entry, bytes in
                    plan.written(entry)
                    // Tensors differ in size, so freed buffers would pile up in the allocator's cache.
                    Memory.clearCache()
                    count += 1
                    progress(
                        Progress(
                            tensor: entry.name, tensorsWritten: count, tensorCount: entries.count, bytesWritten: bytes,
                            byteCount: total))
                })
            try writeFile(temporary + "/config.json", Array(config.compactText.utf8))
            // The folder builds the model (every tensor's shape, the per-layer quantization):
            // checked here, so a folder that would not load is never put in place.
            Memory.clearCache()
            try checkLoads(config: config, safetensors: temporary + "/model.safetensors")
            for (name, json) in tokenizerFiles {
                try writeFile(temporary + "/" + name, Array(json.compactText.utf8))
            }
            if isFolder {
                for name in Self.tokenizerFiles where FileManager.default.fileExists(atPath: model + "/" + name) {
                    try writeFile(temporary + "/" + name, try readRegularFile(model + "/" + name))
                }
            }
            if replacing {
                try swapInto(output, from: temporary)
            } else {
                guard rename(temporary, output) == 0 else {
                    throw IOError.cannotWrite(path: output, reason: String(cString: strerror(errno)))
                }
            }
            return Report(tensorCount: entries.count, byteCount: total, replacedExisting: replacing, warnings: warnings)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Whether `output` exists and may be replaced; throws when it exists and may not.
    static func checkOutput(_ output: String, replace: Bool) throws -> Bool {
        var info = stat()
        guard lstat(output, &info) == 0 else { return false }
        guard replace else {
            throw ModelError.invalidConfiguration("\(output) already exists (replace it with --force)")
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ModelError.invalidConfiguration("\(output) exists and is not a folder; not replacing it")
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        guard entries.isEmpty || entries.contains("config.json") else {
            throw ModelError.invalidConfiguration(
                "\(output) exists and is not a model folder (no config.json); not replacing it")
        }
        return true
    }

    /// Puts the finished folder `temporary` at `output` in place of the folder
    /// there: exchanged in one step (renameat2 RENAME_EXCHANGE) where the
    /// kernel and file system can, else the old folder is moved aside first;
    /// the old folder is then removed.
    static func swapInto(_ output: String, from temporary: String) throws {
        typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        let renameExchange: UInt32 = 2  // RENAME_EXCHANGE (linux/fs.h)
        if let symbol = dlsym(nil, "renameat2") {
            let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
            if renameat2(AT_FDCWD, temporary, AT_FDCWD, output, renameExchange) == 0 {
                // `temporary` now holds the old folder.
                try? FileManager.default.removeItem(atPath: temporary)
                return
            }
            guard errno == EINVAL || errno == ENOSYS || errno == ENOTSUP else {
                throw IOError.cannotWrite(path: output, reason: String(cString: strerror(errno)))
            }
        }
        let aside = output + ".old.partial-\(getpid())"
        guard rename(output, aside) == 0 else {
            throw IOError.cannotWrite(path: output, reason: String(cString: strerror(errno)))
        }
        guard rename(temporary, output) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = rename(aside, output)
            throw IOError.cannotWrite(path: output, reason: reason)
        }
        try? FileManager.default.removeItem(atPath: aside)
    }

    /// What a folder conversion copies without: a tokenizer, a chat template.
    static func folderWarnings(_ folder: String) -> [String] {
        let has = { FileManager.default.fileExists(atPath: folder + "/" + $0) }
        if !has("tokenizer.json") && !has("tokenizer.model") && !(has("vocab.json") && has("merges.txt")) {
            return [
                "\(folder) has no tokenizer (tokenizer.json, tokenizer.model or vocab.json + merges.txt): "
                    + "the converted folder cannot tokenize; copy the original model's tokenizer files into it"
            ]
        }
        if has("chat_template.jinja") || has("chat_template.json") { return [] }
        let config = (try? readRegularFile(folder + "/tokenizer_config.json", maxBytes: 64 << 20))
            .flatMap { try? JSONValue(parsing: $0) }
        return config?["chat_template"] != nil
            ? [] : ["\(folder) has no chat template: chat and the server's chat endpoints will refuse the folder"]
    }

    /// What a GGUF conversion writes without: a tokenizer, a chat template.
    static func ggufWarnings(_ tokenizerFiles: [(String, JSONValue)]) -> [String] {
        guard let config = tokenizerFiles.first(where: { $0.0 == "tokenizer_config.json" })?.1 else {
            return [
                "the GGUF has no tokenizer (no tokenizer.ggml.model): the converted folder has no tokenizer.json; "
                    + "copy the original model's tokenizer files into it"
            ]
        }
        return config["chat_template"] != nil
            ? []
            : [
                "the GGUF has no chat template (tokenizer.chat_template): chat and the server's chat endpoints will refuse the folder"
            ]
    }

    /// `fields` with `rope_theta` (and `rope_scaling`, `partial_rotary_factor`, gemma3's `rope_local_base_freq`)
    /// written beside transformers 5's `rope_parameters`, which older readers
    /// (mlx-lm among them) do not look at; keys already there are kept.
    static func withLegacyRopeKeys(_ fields: [(String, JSONValue)]) -> [(String, JSONValue)] {
        guard let parameters = fields.first(where: { $0.0 == "rope_parameters" })?.1, parameters.object != nil else {
            return fields
        }
        var fields = fields
        let has = { (key: String) in fields.contains { $0.0 == key } }
        // Flat ({rope_theta, rope_type, ...}) or per layer type ({full_attention: {...}, sliding_attention: {...}}).
        let global = parameters["rope_theta"] != nil ? parameters : parameters["full_attention"]
        if let global, let theta = global["rope_theta"], !has("rope_theta") {
            fields.append(("rope_theta", theta))
        }
        if let global, let type = global["rope_type"]?.string, type != "default", !has("rope_scaling"),
            let object = global.object
        {
            fields.append(
                (
                    "rope_scaling",
                    .object(JSONObject(object.filter { $0.key != "rope_theta" }.map { ($0.key, $0.value) }))
                ))
        }
        if let global, let partial = global["partial_rotary_factor"], !has("partial_rotary_factor") {
            fields.append(("partial_rotary_factor", partial))
        }
        if let local = parameters["sliding_attention"]?["rope_theta"], !has("rope_local_base_freq") {
            fields.append(("rope_local_base_freq", local))
        }
        return fields
    }

    /// `fields` with `sliding_window_pattern` (every p-th layer global, as gemma
    /// configs before transformers 5 said) when `layer_types` mixes sliding and
    /// full attention in that period; mlx-lm's gemma3 reads only the pattern.
    static func withSlidingWindowPattern(_ fields: [(String, JSONValue)]) -> [(String, JSONValue)] {
        guard !fields.contains(where: { $0.0 == "sliding_window_pattern" }),
            let types = fields.first(where: { $0.0 == "layer_types" })?.1.array?.compactMap(\.string),
            types.contains("sliding_attention"), types.contains("full_attention")
        else { return fields }
        for period in 2...max(2, types.count) {
            let fits = types.indices.allSatisfy { (types[$0] == "full_attention") == (($0 + 1) % period == 0) }
            if fits { return fields + [("sliding_window_pattern", .int(period))] }
        }
        return fields
    }

    /// Writes `bytes` to a new file at `path` (inside the temporary folder).
    private static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw IOError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// `NAME.partial-PID`: a writer's temporary output (see `removeUnfinished`).
    public static func isPartialName(_ name: String) -> Bool {
        guard let range = name.range(of: ".partial-", options: .backwards) else { return false }
        let pid = name[range.upperBound...]
        return !pid.isEmpty && pid.allSatisfy(\.isNumber)
    }

    /// Removes what an interrupted conversion to `output` left (`output.partial-PID`
    /// folders whose process is gone); a live conversion's folder is kept.
    static func removeUnfinished(of output: String) {
        let url = URL(fileURLWithPath: output)
        let folder = url.deletingLastPathComponent().path, name = url.lastPathComponent
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for entry in entries where isPartialName(entry) {
            // The temporary output, or an old folder `swapInto` moved aside.
            let prefix = [name + ".partial-", name + ".old.partial-"].first { entry.hasPrefix($0) }
            guard let prefix, let pid = Int32(entry.dropFirst(prefix.count)) else { continue }
            if pid != getpid(), kill(pid, 0) == 0 || errno == EPERM { continue }  // still running
            try? FileManager.default.removeItem(atPath: folder + "/" + entry)
        }
    }

    /// Dense weights by Hugging Face name (already-quantized layers dequantized,
    /// whole or a block of rows at a time).
    static func readFolder(_ path: String) throws -> (JSONValue, [String: ConversionSource]) {
        let config = try ModelLoader.readConfig(path)
        let modelType = config["model_type"]?.string ?? "(none)"
        _ = try ModelRegistry.architecture(modelType).configuration(ConfigReader(json: config))
        let quantization = config["quantization"] ?? config["quantization_config"]
        let tensors = try ModelLoader.readTensors(path)
        var sources = tensors.mapValues(ConversionSource.init)
        for name in tensors.keys where name.hasSuffix(".scales") {
            let base = String(name.dropLast(".scales".count))
            guard let w = tensors[base + ".weight"] else { throw ModelError.missingTensor(base + ".weight") }
            let (group, bits) = try WeightSource.quantizationParameters(quantization, layer: base)
            guard let scales = tensors[name] else { continue }
            let q = try WeightSource.checkedQuantized(
                base, weight: w, scales: scales, biases: tensors[base + ".biases"], groupSize: group, bits: bits)
            let whole = dequantize(q.weight, scales: q.scales, biases: q.biases, groupSize: group, bits: bits)
            sources[base + ".weight"] = ConversionSource(
                shape: whole.shape, dtype: whole.dtype, make: { whole },
                open: {
                    { rows in
                        dequantize(
                            q.weight[rows], scales: q.scales[rows], biases: q.biases[rows], groupSize: group, bits: bits
                        )
                    }
                },
                release: {
                    for t in [q.weight, q.scales, q.biases] { t.releaseMappedPages() }
                })
            sources[name] = nil
            sources[base + ".biases"] = nil
        }
        return (config, sources)
    }

    /// A GGUF's tensors under Hugging Face names and conventions (as the
    /// model loads them: `WeightSource.gguf`), each read and made dense float32
    /// only when asked for (the file stays mapped), a config.json from its
    /// metadata, tokenizer.json + tokenizer_config.json from its tokenizer
    /// metadata (if any), and the file's tensors no Hugging Face name maps to.
    static func readGGUF(_ path: String) throws -> (
        JSONValue, [String: ConversionSource], tokenizerFiles: [(String, JSONValue)], unused: [String]
    ) {
        let file = try GGUFFile.load(path)
        let description = try GGUFModelDescription(file)
        let folderConfig = try configWithRopeScaling(description, path: path)
        let c = try ModelRegistry.architecture(description.modelType).configuration(ConfigReader(json: folderConfig))
        let conventions = description.conventions
        let stored = WeightSource.gguf(file, conventions, c)
        // Every Hugging Face name the conventions map (the model's own names), kept where the file has it.
        // An override's name first: where it maps a tensor another name would (phi3's fused
        // gate_up_proj is ffn_up), the file's tensor belongs to the override.
        let overrides = conventions.layerNameOverrides.keys.sorted()
        let locals = overrides + GGUFConventions.layerNames.keys.sorted().filter { !overrides.contains($0) }
        var bases = Array(GGUFConventions.modelNames.keys)
        for i in 0..<c.layerCount { bases += locals.map { "model.layers.\(i).\($0)" } }
        var sources: [String: ConversionSource] = [:]
        var used: Set<String> = []
        for base in bases {
            for suffix in [".weight", ".bias"] {
                let stored_name = conventions.ggufName(base) + suffix
                guard !used.contains(stored_name), let info = file.info(stored_name) else { continue }
                used.insert(stored_name)
                let fetch = { () throws -> StoredWeight in
                    guard let w = try stored.fetch(base, suffix) else { throw ModelError.missingTensor(stored_name) }
                    return w
                }
                sources[base + suffix] = ConversionSource(
                    shape: info.shape, dtype: .float32, make: { try fetch().dense.asType(.float32) },
                    open: {
                        // The stored (compressed) tensor once; each block of rows dequantized from it.
                        let w = try fetch()
                        return { rows in w.mapRows { $0[rows] }.dense.asType(.float32) }
                    })
            }
        }
        var tokenizerFiles: [(String, JSONValue)] = []
        if file.metadata["tokenizer.ggml.model"] != nil {
            let files = try TokenizerMetadata(gguf: file).huggingFaceFiles(modelMaxLength: c.contextLength)
            tokenizerFiles = [("tokenizer.json", files.tokenizer), ("tokenizer_config.json", files.config)]
        }
        let unused = file.tensorInfos.map(\.name).filter { !used.contains($0) }
        return (folderConfig, sources, tokenizerFiles, unused)
    }

    /// Builds the model `config` describes from the written safetensors file
    /// (mapped), as loading the folder will: a missing tensor, a wrong shape or a
    /// bad quantization entry is a typed error here.
    static func checkLoads(config: JSONValue, safetensors path: String) throws {
        let modelType = config["model_type"]?.string ?? "(none)"
        let c = try ModelRegistry.architecture(modelType).configuration(ConfigReader(json: config))
        let tensors = try Safetensors.load(path).tensors
        let quantization = config["quantization"]
        _ = try TransformerModel(
            configuration: c, weights: WeightSource.safetensors(tensors, quantization: quantization))
    }

    /// The GGUF's config.json; with a `rope_freqs` tensor, plus the llama3
    /// `rope_scaling` that gives those factors (fitted: the factors between 1
    /// and `factor` lie on 1/f = (1 - s)/factor + s with s linear in
    /// 1/wavelength, which fixes the ratios of low/high_freq_factor and
    /// original_max_position_embeddings; low_freq_factor is taken as 1). The
    /// frequencies the fitted config gives must equal the GGUF's, else a typed error.
    static func configWithRopeScaling(_ description: GGUFModelDescription, path: String) throws -> JSONValue {
        guard let factors = description.ropeFactors else { return description.config }
        let refuse = ModelError.invalidConfiguration(
            "\(path): its rope_freqs factors are not llama3 rope scaling, which a config.json cannot express; load the GGUF directly"
        )
        let stored = try description.configuration()
        let dims = stored.ropeDimensions ?? stored.headDim
        let base = Double(stored.rope.base)
        let factor = Double(factors.max() ?? 1)
        guard factor > 1 else { return description.config }  // all 1: no scaling
        // (1 / wavelength, s) of the interpolated pairs.
        var points: [(x: Double, s: Double)] = []
        for (i, f) in factors.enumerated() where Double(f) > 1 + 1e-6 && Double(f) < factor * (1 - 1e-6) {
            let wavelength = 2 * Double.pi * Glibc.pow(base, Double(2 * i) / Double(dims))
            points.append((1 / wavelength, (1 / Double(f) - 1 / factor) / (1 - 1 / factor)))
        }
        guard points.count >= 2, let first = points.first, let last = points.last, first.x != last.x else {
            throw refuse
        }
        let slope = (last.s - first.s) / (last.x - first.x)
        let intercept = first.s - slope * first.x
        guard intercept < 0, slope > 0 else { throw refuse }
        let high = 1 - 1 / intercept, original = -slope / intercept
        // Round values float32 factors blurred (original_max_position_embeddings is an integer in every config).
        let candidates = [((high * 1e4).rounded() / 1e4, original.rounded()), (high, original)]
        for (high, original) in candidates {
            var fields = (description.config.object ?? JSONObject()).filter { $0.key != "rope_scaling" }.map {
                ($0.key, $0.value)
            }
            fields.append(
                (
                    "rope_scaling",
                    .object(
                        JSONObject([
                            ("rope_type", "llama3"), ("factor", .double(factor)), ("low_freq_factor", 1.0),
                            ("high_freq_factor", .double(high)),
                            (
                                "original_max_position_embeddings",
                                original == original.rounded() ? .int(Int(original)) : .double(original)
                            )
                        ]))
                ))
            let config = JSONValue.object(JSONObject(fields))
            let fitted = try ModelRegistry.architecture(description.modelType).configuration(ConfigReader(json: config))
            if let want = stored.rope.frequencies, let got = fitted.rope.frequencies, want.count == got.count,
                zip(want, got).allSatisfy({ abs($0 - $1) <= 1e-5 * abs($0) })
            {
                return config
            }
        }
        throw refuse
    }
}
