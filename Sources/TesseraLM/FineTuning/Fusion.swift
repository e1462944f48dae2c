// `tessera fuse` (mlx-lm's mlx_lm.fuse): adapters merged into the weights
// they adapt, LoRA as W + scale·BᵀAᵀ, DoRA with its rows rescaled to the
// learned magnitudes; a quantized base is dequantized, fused and quantized
// again in its own format, or left dense (`dequantize`). The result is
// written as a Hugging Face / MLX safetensors folder (config.json with
// mlx-lm's `quantization`, per layer where layers differ; the base's
// tokenizer files, written from the metadata of a GGUF base), built in a
// temporary folder beside the output and renamed into place.

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

public enum Fusion {
    /// Replaces every LoRA/DoRA layer of `model` with its fused layer (over
    /// a quantized base: quantized again, or dense with `dequantize`);
    /// returns how many were fused.
    @discardableResult
    public static func fuse(_ model: TransformerModel, dequantize: Bool = false) throws -> Int {
        var replacements: [String: Module] = [:]
        for (path, module) in model.namedModules() {
            if let adapter = module as? LoRALinear {
                let fused = adapter.fused(dequantize: dequantize)
                eval(fused)
                replacements[path] = fused
            } else if let adapter = module as? LoRAEmbedding {
                let fused = adapter.fused(dequantize: dequantize)
                eval(fused)
                replacements[path] = fused
            }
        }
        if !replacements.isEmpty { try model.update(modules: replacements) }
        return replacements.count
    }

    /// Replaces every quantized layer of `model` with a dense one holding its
    /// dequantized weight in the dtype of its scales (as MLX's dequantize);
    /// returns how many were replaced.
    @discardableResult
    public static func dequantize(_ model: TransformerModel) throws -> Int {
        var replacements: [String: Module] = [:]
        for (path, module) in model.namedModules() {
            if let q = module as? QuantizedLinear, !(module is LoRALinear) {
                let w = q.denseWeight.asType(q.scales.dtype)
                eval(w)
                replacements[path] = Linear(weight: w, bias: q.bias)
            } else if let q = module as? QuantizedEmbedding, !(module is LoRAEmbedding) {
                let w = Tessera.dequantize(
                    q.weight, scales: q.scales, biases: q.biases, groupSize: q.groupSize, bits: q.bits
                )
                .asType(q.scales.dtype)
                eval(w)
                replacements[path] = Embedding(weight: w)
            }
        }
        if !replacements.isEmpty { try model.update(modules: replacements) }
        return replacements.count
    }

    /// `(groupSize, bits)` of each quantized layer of `model`, by module path.
    static func quantizedLayers(_ model: TransformerModel) -> [String: (groupSize: Int, bits: Int)] {
        var out: [String: (groupSize: Int, bits: Int)] = [:]
        for (path, module) in model.namedModules() {
            if let q = module as? QuantizedLinear { out[path] = (q.groupSize, q.bits) }
            if let q = module as? QuantizedEmbedding { out[path] = (q.groupSize, q.bits) }
        }
        return out
    }

    /// mlx-lm's `quantization` entry for `layers`: the most common format at
    /// the top, a `{group_size, bits}` object for each layer that differs; nil without quantized layers.
    static func quantizationEntry(_ layers: [String: (groupSize: Int, bits: Int)]) -> JSONValue? {
        guard !layers.isEmpty else { return nil }
        var counts: [String: Int] = [:]
        for (_, f) in layers { counts["\(f.groupSize) \(f.bits)", default: 0] += 1 }
        let top = counts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key ?? ""
        let parts = top.split(separator: " ").compactMap { Int($0) }
        guard parts.count == 2 else { return nil }
        var fields: [(String, JSONValue)] = [("group_size", .int(parts[0])), ("bits", .int(parts[1]))]
        for (path, f) in layers.sorted(by: { $0.key < $1.key }) where "\(f.groupSize) \(f.bits)" != top {
            fields.append((path, .object(JSONObject([("group_size", .int(f.groupSize)), ("bits", .int(f.bits))]))))
        }
        return .object(JSONObject(fields))
    }

    /// The base model's config.json and tokenizer files: a folder's own
    /// (copied), or for a GGUF those `tessera convert` writes from its metadata.
    static func baseFiles(_ base: LoadedModel, path: String) throws -> (config: JSONValue, files: [(String, [UInt8])]) {
        if let file = base.gguf {
            let description = try GGUFModelDescription(file)
            let config = try ModelConverter.configWithRopeScaling(description, path: path)
            var files: [(String, [UInt8])] = []
            if file.metadata["tokenizer.ggml.model"] != nil {
                let c = try description.configuration()
                let made = try TokenizerMetadata(gguf: file).huggingFaceFiles(modelMaxLength: c.contextLength)
                files = [
                    ("tokenizer.json", Array(made.tokenizer.compactText.utf8)),
                    ("tokenizer_config.json", Array(made.config.compactText.utf8))
                ]
            }
            return (config, files)
        }
        let folder = base.folder ?? path
        let config = try ModelLoader.readConfig(folder)
        var files: [(String, [UInt8])] = []
        for name in ModelConverter.tokenizerFiles where FileManager.default.fileExists(atPath: folder + "/" + name) {
            files.append((name, try readRegularFile(folder + "/" + name, maxBytes: 1 << 30)))
        }
        return (config, files)
    }

    /// Writes `model` as a safetensors folder at `output` (which must not
    /// exist): its parameters, `baseConfig` with the quantization of its
    /// quantized layers (or none), and `files` (tokenizer files).
    public static func saveFolder(
        _ model: TransformerModel, baseConfig: JSONValue, files: [(String, [UInt8])], to output: String
    ) throws {
        guard !FileManager.default.fileExists(atPath: output) else {
            throw ModelError.invalidConfiguration("\(output) already exists")
        }
        let remaining = model.namedModules().filter { $0.module is LoRALinear || $0.module is LoRAEmbedding }.map(\.key)
        guard remaining.isEmpty else {
            throw ModelError.invalidConfiguration(
                "the model still has unfused adapters at \(remaining.prefix(3).joined(separator: ", "))")
        }
        var fields = (baseConfig.object ?? JSONObject()).filter {
            $0.key != "quantization" && $0.key != "quantization_config"
        }
        .map { ($0.key, $0.value) }
        if let quantization = quantizationEntry(quantizedLayers(model)) {
            fields += [("quantization", quantization), ("quantization_config", quantization)]
        }
        let config = JSONValue.object(JSONObject(fields))
        let tensors = model.parameters().flatDictionary
        let temporary = output + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        do {
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            try Safetensors.save(tensors, metadata: ["format": "mlx"], to: temporary + "/model.safetensors")
            try Data(config.compactText.utf8).write(to: URL(fileURLWithPath: temporary + "/config.json"))
            for (name, bytes) in files { try Data(bytes).write(to: URL(fileURLWithPath: temporary + "/" + name)) }
            guard rename(temporary, output) == 0 else {
                throw ModelError.invalidConfiguration("cannot move the result to \(output): errno \(errno)")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// What `fuse` does, from paths: loads `model`, applies and fuses the
    /// adapter in `adapterPath`, optionally dequantizes, writes the folder
    /// `savePath` and, with `gguf`, a GGUF file of the fused weights. Returns
    /// the fused model and how many layers were fused.
    @discardableResult
    public static func run(
        model path: String, adapterPath: String, savePath: String, dequantize: Bool = false,
        gguf: (path: String, type: GGUFExport.FileType)? = nil
    ) throws -> (model: TransformerModel, fused: Int) {
        let loaded = try ModelLoader.load(path)
        guard let model = loaded.model as? TransformerModel else { throw AdapterError.notAModuleTree }
        try Adapters.load(adapterPath, into: model)
        let count = try fuse(model, dequantize: dequantize)
        if dequantize { try Fusion.dequantize(model) }
        let (config, files) = try baseFiles(loaded, path: path)
        try saveFolder(model, baseConfig: config, files: files, to: savePath)
        if let gguf {
            try GGUFExport.write(
                model, base: loaded, baseConfig: config, basePath: path, type: gguf.type, to: gguf.path)
        }
        return (model, count)
    }
}
