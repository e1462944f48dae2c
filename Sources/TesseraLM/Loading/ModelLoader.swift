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
    /// Names the model for prompt caches: its type, sizes, file name and a
    /// content fingerprint of its weight files (`fingerprintRegularFile`), so
    /// another model of the same name and sizes is told apart.
    public let identity: String
}

public enum ModelLoader {
    /// The model at `path`; with `tensorParallel` of more than one rank, this
    /// rank's block of every layer (TensorParallel.swift), the rest dropped at load.
    public static func load(_ path: String, tensorParallel: TensorParallel? = nil) throws -> LoadedModel {
        let (isFolder, parallel) = try source(path, tensorParallel)
        if isFolder { return try loadFolder(path, parallel: parallel) }
        return try loadGGUF(path, parallel: parallel)
    }

    /// What `load` and `loadWithTokenizer` check first: not a writer's
    /// unfinished output, something at `path` (a folder or a file), and the
    /// tensor-parallel group when it has more than one rank.
    private static func source(_ path: String, _ tensorParallel: TensorParallel?) throws -> (
        isFolder: Bool, parallel: TensorParallel?
    ) {
        try refuseUnfinished(path)
        var info = stat()
        guard stat(path, &info) == 0 else { throw ModelError.modelNotFound("no model at \(path)") }
        return ((info.st_mode & S_IFMT) == S_IFDIR, tensorParallel.flatMap { $0.group.size > 1 ? $0 : nil })
    }

    /// The model at `path` with its tokenizer. From a GGUF file the tokenizer is
    /// built before the weights come in (after the configuration is checked):
    /// its parse's temporaries and the metadata it reads (the vocabulary and
    /// merges as parsed values) are gone by then, so that they do not add up
    /// with the weights at the peak of resident memory; the returned model's
    /// file keeps no tokenizer metadata (`GGUFFile.droppingMetadata`).
    public static func loadWithTokenizer(_ path: String, tensorParallel: TensorParallel? = nil) throws -> (
        LoadedModel, Tokenizer
    ) {
        let (isFolder, parallel) = try source(path, tensorParallel)
        if isFolder {
            // A folder's tokenizer.json is read after its weights, so that a bad
            // config or weight reports before a missing tokenizer (as `load`).
            let loaded = try loadFolder(path, parallel: parallel)
            return (loaded, try Tokenizer(directory: path))
        }
        var tokenizer: Tokenizer?
        let loaded = try loadGGUF(path, parallel: parallel) { file in
            tokenizer = try Tokenizer(gguf: file)
            return file.droppingMetadata()
        }
        guard let tokenizer else { throw ModelError.modelNotFound("the model has no tokenizer") }
        return (loaded, tokenizer)
    }

    /// A writer's unfinished output (`NAME.partial-PID`, from `convert` or a
    /// prompt cache killed before its rename) is never loaded as a model.
    static func refuseUnfinished(_ path: String) throws {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        if ModelConverter.isPartialName(name) { throw ModelError.unfinishedOutput(path) }
    }

    /// `beforeWeights` sees the parsed file before any weight is read, and
    /// returns the file the weights are read from and the model keeps.
    static func loadGGUF(
        _ path: String, parallel: TensorParallel? = nil, beforeWeights: (GGUFFile) throws -> GGUFFile = { $0 }
    ) throws -> LoadedModel {
        var file = try GGUFFile.load(path)
        let description = try GGUFModelDescription(file)
        let configuration = try description.configuration()
        try configuration.checkFits(weightBytes: file.byteCount)
        file = try beforeWeights(file)
        var weights = WeightSource.gguf(file, description.conventions, configuration)
        weights.parallel = parallel
        let model = try TransformerModel(configuration: configuration, weights: weights)
        // What stays resident of the file: the pages its float tensors view.
        file.releaseUnviewedPages()
        return LoadedModel(
            model: model, modelType: description.modelType, gguf: file, folder: nil,
            identity: try identity(description.modelType, configuration, path, files: [path]))
    }

    /// A folder's config.json.
    static func readConfig(_ path: String) throws -> JSONValue {
        let file = path + "/config.json"
        guard FileManager.default.fileExists(atPath: file) else {
            throw ModelError.modelNotFound("\(path) has no config.json")
        }
        // A FIFO or folder named config.json is refused before open() could block on it.
        let data = try readRegularFile(file, maxBytes: 64 << 20)
        do { return try JSONValue(parsing: data) } catch {
            throw ModelError.invalidConfiguration("config.json: \(error)")
        }
    }

    /// Every tensor of a folder's safetensors shards, with a multimodal
    /// checkpoint's `language_model.` prefix dropped.
    static func readTensors(_ path: String) throws -> [String: Tensor] {
        let files =
            (try? FileManager.default.contentsOfDirectory(atPath: path))?.filter { $0.hasSuffix(".safetensors") }
            .sorted() ?? []
        guard !files.isEmpty else { throw ModelError.modelNotFound("\(path) has no .safetensors files") }
        var tensors: [String: Tensor] = [:]
        for file in files { tensors.merge(try Safetensors.load(path + "/" + file).tensors) { a, _ in a } }
        let prefix = "language_model."
        if tensors["model.embed_tokens.weight"] == nil, tensors[prefix + "model.embed_tokens.weight"] != nil {
            tensors = Dictionary(
                tensors.compactMap {
                    $0.key.hasPrefix(prefix) ? (String($0.key.dropFirst(prefix.count)), $0.value) : nil
                }
            ) { a, _ in a }
        }
        return tensors
    }

    static func loadFolder(_ path: String, parallel: TensorParallel? = nil) throws -> LoadedModel {
        let config = try readConfig(path)
        let modelType = config["model_type"]?.string ?? "(none)"
        let configuration = try ModelRegistry.architecture(modelType).configuration(ConfigReader(json: config))
        try configuration.checkFits(weightBytes: try weightFiles(path).reduce(0) { $0 + fileSize($1) })
        let quantization = config["quantization"] ?? config["quantization_config"]
        var weights = WeightSource.safetensors(try readTensors(path), quantization: quantization)
        weights.parallel = parallel
        let model = try TransformerModel(configuration: configuration, weights: weights)
        return LoadedModel(
            model: model, modelType: modelType, gguf: nil, folder: path,
            identity: try identity(modelType, configuration, path, files: [path + "/config.json"] + weightFiles(path)))
    }

    /// A folder's safetensors shards, sorted.
    static func weightFiles(_ path: String) throws -> [String] {
        let names =
            (try? FileManager.default.contentsOfDirectory(atPath: path))?.filter { $0.hasSuffix(".safetensors") } ?? []
        return names.sorted().map { path + "/" + $0 }
    }

    static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    static func identity(_ type: String, _ c: TransformerConfiguration, _ path: String, files: [String]) throws
        -> String
    {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        var content: UInt64 = 0xcbf2_9ce4_8422_2325
        for file in files { content = try fingerprintRegularFile(file, seed: content) }
        let hex = String(content, radix: 16)
        return
            "\(type) \(name) layers=\(c.layerCount) hidden=\(c.hiddenSize) kv_heads=\(c.kvHeadCount) head_dim=\(c.headDim) vocab=\(c.vocabularySize) content=\(String(repeating: "0", count: 16 - hex.count) + hex)"
    }
}
