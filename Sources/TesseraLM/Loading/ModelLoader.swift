// Loading a model from a path: a GGUF file (weights, hyper-parameters from its
// metadata) or a Hugging Face / mlx-community folder (config.json and
// safetensors shards, quantized layers as MLX's weight/scales/biases).

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tessera

#if canImport(Glibc)
import Glibc
#endif

/// A loaded model and what came with it.
public struct LoadedModel: Sendable {
    public let model: any LanguageModel
    public let modelType: String
    /// The GGUF file, when the model came from one (tokenizer and chat template live in its metadata).
    public let gguf: GGUFFile?
    /// The folder, when the model came from one.
    public let folder: String?
}

public enum ModelLoader {
    public static func load(_ path: String) throws -> LoadedModel {
        var info = stat()
        guard stat(path, &info) == 0 else { throw ModelError.modelNotFound("no model at \(path)") }
        if (info.st_mode & S_IFMT) == S_IFDIR { return try loadFolder(path) }
        return try loadGGUF(path)
    }

    static func loadGGUF(_ path: String) throws -> LoadedModel {
        let file = try GGUFFile.load(path)
        let arch = file.metadata["general.architecture"]?.string ?? "(none)"
        guard ModelRegistry.supportedTypes.contains(arch) else { throw ModelError.unknownModelType(arch) }
        func int(_ key: String) throws -> Int {
            guard let v = file.metadata["\(arch).\(key)"]?.int else {
                throw ModelError.invalidConfiguration("GGUF metadata has no \(arch).\(key)")
            }
            return v
        }
        let hidden = try int("embedding_length")
        let heads = try int("attention.head_count")
        let vocab = try file.metadata["tokenizer.ggml.tokens"]?.array?.count ?? int("vocab_size")
        let configuration = LlamaConfiguration(
            hiddenSize: hidden, layerCount: try int("block_count"), intermediateSize: try int("feed_forward_length"),
            headCount: heads, kvHeadCount: file.metadata["\(arch).attention.head_count_kv"]?.int ?? heads,
            headDim: file.metadata["\(arch).attention.key_length"]?.int ?? hidden / Swift.max(heads, 1),
            vocabularySize: vocab, contextLength: file.metadata["\(arch).context_length"]?.int ?? 4096,
            ropeTheta: Float(file.metadata["\(arch).rope.freq_base"]?.double ?? 10000),
            rmsNormEps: Float(file.metadata["\(arch).attention.layer_norm_rms_epsilon"]?.double ?? 1e-5),
            ropeTraditional: true,  // llama.cpp stores q/k rows permuted for interleaved rotation
            tiedEmbeddings: file.info("output.weight") == nil)
        let model = try LlamaModel(configuration: configuration, weights: .gguf(file))
        return LoadedModel(model: model, modelType: arch, gguf: file, folder: nil)
    }

    static func loadFolder(_ path: String) throws -> LoadedModel {
        let configPath = path + "/config.json"
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw ModelError.modelNotFound("\(path) has no config.json")
        }
        let config: JSONValue
        do { config = try JSONValue(parsing: Array(data)) } catch {
            throw ModelError.invalidConfiguration("config.json: \(error)")
        }
        let modelType = config["model_type"]?.string ?? "(none)"
        guard ModelRegistry.supportedTypes.contains(modelType) else { throw ModelError.unknownModelType(modelType) }
        func int(_ key: String) throws -> Int {
            guard let v = config[key]?.int else { throw ModelError.invalidConfiguration("config.json has no \(key)") }
            return v
        }
        let hidden = try int("hidden_size"), heads = try int("num_attention_heads")
        let configuration = LlamaConfiguration(
            hiddenSize: hidden, layerCount: try int("num_hidden_layers"), intermediateSize: try int("intermediate_size"),
            headCount: heads, kvHeadCount: config["num_key_value_heads"]?.int ?? heads,
            headDim: config["head_dim"]?.int ?? hidden / Swift.max(heads, 1), vocabularySize: try int("vocab_size"),
            contextLength: config["max_position_embeddings"]?.int ?? 4096,
            ropeTheta: Float(config["rope_theta"]?.double ?? 10000), rmsNormEps: Float(config["rms_norm_eps"]?.double ?? 1e-5),
            ropeTraditional: false, tiedEmbeddings: config["tie_word_embeddings"]?.bool ?? false)
        var tensors: [String: Tensor] = [:]
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path))?.filter { $0.hasSuffix(".safetensors") }.sorted() ?? []
        guard !files.isEmpty else { throw ModelError.modelNotFound("\(path) has no .safetensors files") }
        for file in files { tensors.merge(try Safetensors.load(path + "/" + file).tensors) { a, _ in a } }
        let quantization = config["quantization"] ?? config["quantization_config"]
        let model = try LlamaModel(
            configuration: configuration,
            weights: .safetensors(tensors, groupSize: quantization?["group_size"]?.int, bits: quantization?["bits"]?.int))
        return LoadedModel(model: model, modelType: modelType, gguf: nil, folder: path)
    }
}
