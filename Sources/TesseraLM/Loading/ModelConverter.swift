// `tessera convert`: a model (HF/MLX folder or llama GGUF) rewritten as an
// mlx-community-style quantized folder: every 2-D `.weight` whose rows split
// into groups becomes MLX affine weight/scales/biases, config.json gains
// `quantization`, tokenizer files are copied. Written to a temporary folder
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
        "chat_template.json", "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt",
    ]

    /// Converts `model` into a new folder `output` (which must not exist yet).
    public static func convert(model: String, output: String, bits: Int = 4, groupSize: Int = 64) throws {
        guard [2, 3, 4, 5, 6, 8].contains(bits), [32, 64, 128].contains(groupSize) else {
            throw ModelError.invalidConfiguration("bits must be 2, 3, 4, 5, 6 or 8 and group size 32, 64 or 128")
        }
        guard !FileManager.default.fileExists(atPath: output) else {
            throw ModelError.invalidConfiguration("\(output) already exists")
        }
        var info = stat()
        guard stat(model, &info) == 0 else { throw ModelError.modelNotFound("no model at \(model)") }
        let isFolder = (info.st_mode & S_IFMT) == S_IFDIR
        var (config, tensors) = isFolder ? try readFolder(model) : try readGGUF(model)
        tensors = requantized(tensors, groupSize: groupSize, bits: bits)
        let parameters: JSONValue = ["group_size": .int(groupSize), "bits": .int(bits)]
        var fields = (config.object ?? JSONObject()).filter { $0.key != "quantization" && $0.key != "quantization_config" }
            .map { ($0.key, $0.value) }
        fields += [("quantization", parameters), ("quantization_config", parameters)]
        config = .object(JSONObject(fields))

        let temporary = output + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        do {
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            try Safetensors.save(tensors, metadata: ["format": "mlx"], to: temporary + "/model.safetensors")
            try Data(config.compactText.utf8).write(to: URL(fileURLWithPath: temporary + "/config.json"))
            if isFolder {
                for name in tokenizerFiles where FileManager.default.fileExists(atPath: model + "/" + name) {
                    try FileManager.default.copyItem(atPath: model + "/" + name, toPath: temporary + "/" + name)
                }
            }
            guard rename(temporary, output) == 0 else {
                throw ModelError.invalidConfiguration("cannot move the result to \(output): errno \(errno)")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Dense weights by Hugging Face name (already-quantized layers dequantized).
    static func readFolder(_ path: String) throws -> (JSONValue, [String: Tensor]) {
        let config = try ModelLoader.readConfig(path)
        let modelType = config["model_type"]?.string ?? "(none)"
        _ = try ModelRegistry.architecture(modelType).configuration(ConfigReader(json: config))
        let quantization = config["quantization"] ?? config["quantization_config"]
        var tensors = try ModelLoader.readTensors(path)
        for name in tensors.keys where name.hasSuffix(".scales") {
            let base = String(name.dropLast(".scales".count))
            guard let w = tensors[base + ".weight"] else { throw ModelError.missingTensor(base + ".weight") }
            let (group, bits) = try WeightSource.quantizationParameters(quantization, layer: base)
            let scales = tensors[name]!
            let biases = tensors[base + ".biases"] ?? Tensor.zerosLike(scales)
            guard w.dtype == .uint32, scales.shape == Array(w.shape.dropLast()) + [w.dim(-1) * 32 / bits / group],
                biases.shape == scales.shape
            else { throw ModelError.tensorShape(name: name, expected: Array(w.shape.dropLast()) + [w.dim(-1) * 32 / bits / group], got: scales.shape) }
            tensors[base + ".weight"] = dequantize(w, scales: scales, biases: biases, groupSize: group, bits: bits)
            tensors[name] = nil
            tensors[base + ".biases"] = nil
        }
        return (config, tensors)
    }

    /// A llama GGUF's tensors under Hugging Face names (q/k rows un-permuted for
    /// the half-rotation rope) and a config.json from its metadata.
    static func readGGUF(_ path: String) throws -> (JSONValue, [String: Tensor]) {
        let loaded = try ModelLoader.loadGGUF(path)
        guard let model = loaded.model as? TransformerModel, let file = loaded.gguf else {
            throw ModelError.invalidConfiguration("\(path) is not a GGUF model")
        }
        let c = model.configuration
        var tensors: [String: Tensor] = [:]
        func add(_ role: WeightRole, permutedHeads: Int? = nil) throws {
            guard file.info(role.ggufName + ".weight") != nil else { throw ModelError.missingTensor(role.ggufName + ".weight") }
            var w = try file.tensor(role.ggufName + ".weight").dense.asType(.float32)
            if let heads = permutedHeads {
                // llama.cpp interleaves each head's two rotation halves; put them back.
                let columns = w.dim(1)
                w = w.reshaped([heads, c.headDim / 2, 2, columns]).swappedAxes(1, 2).reshaped([heads * c.headDim, columns])
            }
            tensors[role.huggingFaceName + ".weight"] = w
        }
        try add(.embedding)
        try add(.finalNorm)
        if !c.tiedEmbeddings { try add(.head) }
        for i in 0..<c.layerCount {
            try add(.q(i), permutedHeads: c.headCount)
            try add(.k(i), permutedHeads: c.kvHeadCount)
            for role in [WeightRole.attentionNorm(i), .v(i), .o(i), .postAttentionNorm(i), .gate(i), .up(i), .down(i)] {
                try add(role)
            }
        }
        let config: JSONValue = .object(
            JSONObject([
                ("architectures", ["LlamaForCausalLM"]), ("model_type", "llama"),
                ("hidden_size", .int(c.hiddenSize)), ("intermediate_size", .int(c.intermediateSize)),
                ("num_hidden_layers", .int(c.layerCount)), ("num_attention_heads", .int(c.headCount)),
                ("num_key_value_heads", .int(c.kvHeadCount)), ("head_dim", .int(c.headDim)),
                ("vocab_size", .int(c.vocabularySize)), ("max_position_embeddings", .int(c.contextLength)),
                ("rms_norm_eps", .double(Double(c.rmsNormEps))), ("rope_theta", .double(Double(c.rope.base))),
                ("tie_word_embeddings", .bool(c.tiedEmbeddings)),
                ("bos_token_id", file.metadata["tokenizer.ggml.bos_token_id"]?.int.map { .int($0) } ?? .null),
                ("eos_token_id", file.metadata["tokenizer.ggml.eos_token_id"]?.int.map { .int($0) } ?? .null),
            ]))
        return (config, tensors)
    }

    /// Quantizes every 2-D `.weight` whose rows split into groups; keeps the rest.
    static func requantized(_ tensors: [String: Tensor], groupSize: Int, bits: Int) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, t) in tensors.sorted(by: { $0.key < $1.key }) {
            guard name.hasSuffix(".weight"), t.ndim == 2, t.dtype.isFloatingPoint, t.dim(1) % groupSize == 0 else {
                out[name] = t
                continue
            }
            let base = String(name.dropLast(".weight".count))
            let (wq, scales, biases) = quantize(t, groupSize: groupSize, bits: bits)
            eval(wq, scales, biases)
            out[name] = wq
            out[base + ".scales"] = scales
            out[base + ".biases"] = biases
        }
        return out
    }
}
