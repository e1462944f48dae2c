// Adapters on a language model, as mlx-lm's tuner/utils.py has them:
// `applyAdapters` swaps the chosen Linear layers of the last N transformer
// blocks for LoRA/DoRA layers (mlx-lm's `linear_to_lora_layers`), and an
// adapter folder holds `adapters.safetensors` (the trainable parameters, by
// their full dotted names) and `adapter_config.json` (`fine_tune_type`,
// `num_layers`, `lora_parameters`), readable by mlx-lm's `load_adapters`.

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

/// What is trained: low-rank adapters, DoRA adapters, or every float weight.
public enum FineTuneType: String, Sendable, Codable, CaseIterable {
    case lora, dora, full
}

/// Errors from adapters and adapter folders.
public enum AdapterError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case invalidConfig(String)
    case noLayersMatched(keys: [String])
    case notAModuleTree

    public var description: String {
        switch self {
        case .unreadable(let why): return "cannot read the adapter: \(why)"
        case .invalidConfig(let why): return "invalid adapter_config.json: \(why)"
        case .noLayersMatched(let keys):
            return "no linear layer matched the adapter keys \(keys.joined(separator: ", "))"
        case .notAModuleTree: return "adapters need a model built as a module tree (TransformerModel)"
        }
    }
}

/// The adapter settings written to and read from `adapter_config.json`
/// (mlx-lm's field names; other fields mlx-lm writes are kept as training notes).
public struct AdapterConfig: Sendable, Equatable {
    public var fineTuneType: FineTuneType
    public var numLayers: Int
    public var parameters: LoRAParameters
    /// Module paths inside a block (`self_attn.q_proj`); nil: every Linear of the block.
    public var keys: [String]?
    /// Other fields to record (the training flags, as mlx-lm writes them).
    public var extra: JSONObject

    public init(
        fineTuneType: FineTuneType = .lora, numLayers: Int = 16, parameters: LoRAParameters = LoRAParameters(),
        keys: [String]? = nil, extra: JSONObject = JSONObject()
    ) {
        (self.fineTuneType, self.numLayers, self.parameters, self.keys, self.extra) =
            (fineTuneType, numLayers, parameters, keys, extra)
    }
}

public enum Adapters {
    public static let weightsFile = "adapters.safetensors"
    public static let configFile = "adapter_config.json"

    /// Freezes `model` and replaces the Linear layers at `keys` (default: all
    /// of them, i.e. the attention and MLP projections) in the last
    /// `numLayers` blocks (-1 or more than the model has: all) with LoRA or
    /// DoRA layers, whose parameters are then the only trainable ones. For
    /// `.full` it unfreezes those blocks instead, as mlx-lm (quantized layers
    /// stay frozen). Returns the dotted paths of the replaced layers.
    @discardableResult
    public static func apply(
        to model: TransformerModel, _ config: AdapterConfig, seed: UInt64 = 0
    ) throws -> [String] {
        try model.freeze()
        let layerCount = model.configuration.layerCount
        let first = config.numLayers < 0 ? 0 : max(0, layerCount - config.numLayers)
        if config.fineTuneType == .full {
            for (path, block) in model.namedModules() {
                if let layer = blockIndex(path), layer >= first { try block.unfreeze() }
            }
            return []
        }
        var replacements: [String: Module] = [:]
        var counter: UInt64 = 0
        let modules = model.namedModules()
        let adapted = Set(modules.filter { $0.module is LoRALinear || $0.module is LoRAEmbedding }.map(\.key))
        for (path, module) in modules {
            guard let linear = module as? Linear, !(linear is LoRALinear),
                let (layer, local) = blockPath(path), layer >= first
            else { continue }
            if let keys = config.keys, !keys.contains(local) { continue }
            // The base inside an adapter applied before is not adapted again.
            if path.hasSuffix(".linear"), adapted.contains(String(path.dropLast(7))) { continue }
            counter += 1
            let key = Random.key(seed &* 7_919 &+ counter)
            replacements[path] =
                config.fineTuneType == .dora
                ? try DoRALinear(linear, config.parameters, key: key)
                : try LoRALinear(linear, config.parameters, key: key)
        }
        // The embedding table when the keys name it (`model.embed_tokens`; beyond
        // mlx-lm's block-local keys, which never match it there).
        if let keys = config.keys, keys.contains("model.embed_tokens"),
            let table = modules.first(where: { $0.key == "model.embed_tokens" })?.module as? Embedding,
            !(table is LoRAEmbedding)
        {
            guard config.fineTuneType == .lora else {
                throw AdapterError.invalidConfig(
                    "model.embed_tokens takes a LoRA adapter only, not \(config.fineTuneType.rawValue)")
            }
            counter += 1
            replacements["model.embed_tokens"] = try LoRAEmbedding(
                table, config.parameters, key: Random.key(seed &* 7_919 &+ counter))
        }
        guard !replacements.isEmpty else { throw AdapterError.noLayersMatched(keys: config.keys ?? ["(all)"]) }
        try model.update(modules: replacements)
        return replacements.keys.sorted()
    }

    /// `model.layers.3` -> 3 (a block itself, not a module inside one).
    static func blockIndex(_ path: String) -> Int? {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "model", parts[1] == "layers" else { return nil }
        return Int(parts[2])
    }

    /// `model.layers.3.self_attn.q_proj` -> (3, `self_attn.q_proj`).
    static func blockPath(_ path: String) -> (Int, String)? {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count > 3, parts[0] == "model", parts[1] == "layers", let i = Int(parts[2]) else { return nil }
        return (i, parts[3...].joined(separator: "."))
    }

    /// Writes the trainable parameters to `adapters.safetensors` (or `fileName`)
    /// and `adapter_config.json` in `folder`, each through a temporary name
    /// renamed into place, so a reader never sees half a file.
    public static func save(
        _ model: TransformerModel, _ config: AdapterConfig, to folder: String, fileName: String = weightsFile
    ) throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch { throw AdapterError.unreadable("cannot create \(folder): \(error)") }
        let tensors = model.trainableParameters().flatDictionary
        let path = folder + "/" + fileName
        try atomically(path) { try Safetensors.save(tensors, metadata: ["format": "mlx"], to: $0) }
        let json = Array(encode(config).utf8)
        try atomically(folder + "/" + configFile) { temporary in
            guard FileManager.default.createFile(atPath: temporary, contents: Data(json)) else {
                throw AdapterError.unreadable("cannot write \(temporary)")
            }
        }
    }

    /// Writes through `write` to a temporary name beside `path`, then renames it to `path`.
    static func atomically(_ path: String, _ write: (String) throws -> Void) throws {
        let temporary = path + ".tmp-\(getpid())"
        do {
            try write(temporary)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw AdapterError.unreadable("cannot rename \(temporary) to \(path)")
        }
    }

    /// Reads `adapter_config.json` from `folder`.
    public static func readConfig(_ folder: String) throws -> AdapterConfig {
        guard let data = FileManager.default.contents(atPath: folder + "/" + configFile) else {
            throw AdapterError.unreadable("\(folder) has no \(configFile)")
        }
        let json: JSONValue
        do { json = try JSONValue(parsing: Array(data)) } catch { throw AdapterError.invalidConfig("\(error)") }
        return try decode(json)
    }

    /// Applies the adapter in `folder` to `model` (mlx-lm's `load_adapters`):
    /// builds the layers its config names, then loads its tensors.
    @discardableResult
    public static func load(_ folder: String, into model: TransformerModel) throws -> AdapterConfig {
        let config = try readConfig(folder)
        try apply(to: model, config)
        let tensors: [String: Tensor]
        do { tensors = try Safetensors.load(folder + "/" + weightsFile).tensors } catch {
            throw AdapterError.unreadable("\(folder)/\(weightsFile): \(error)")
        }
        try model.update(parameters: tensors, strict: false)
        let known = Set(model.parameters().flatDictionary.keys)
        let unknown = tensors.keys.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw AdapterError.invalidConfig(
                "the adapter has tensors the model lacks: \(unknown.prefix(5).joined(separator: ", "))")
        }
        eval(model)
        // Loaded for use: dropout off (a trainer switches training mode back on).
        model.train(false)
        return config
    }

    static func encode(_ config: AdapterConfig) -> String {
        var lora = JSONObject([
            ("rank", .int(config.parameters.rank)), ("scale", .double(Double(config.parameters.scale))),
            ("dropout", .double(Double(config.parameters.dropout)))
        ])
        if let keys = config.keys { lora["keys"] = .array(keys.map { .string($0) }) }
        var object = JSONObject([
            ("fine_tune_type", .string(config.fineTuneType.rawValue)), ("num_layers", .int(config.numLayers)),
            ("lora_parameters", .object(lora))
        ])
        for (key, value) in config.extra where object[key] == nil { object[key] = value }
        return JSONValue.object(object).compactText
    }

    static func decode(_ json: JSONValue) throws -> AdapterConfig {
        guard case .object(let object) = json else { throw AdapterError.invalidConfig("not a JSON object") }
        let typeName = object["fine_tune_type"]?.string ?? "lora"
        guard let type = FineTuneType(rawValue: typeName) else {
            throw AdapterError.invalidConfig("unknown fine_tune_type \(typeName)")
        }
        var parameters = LoRAParameters()
        var keys: [String]? = nil
        if type != .full {
            guard object["num_layers"]?.int != nil else {
                throw AdapterError.invalidConfig("num_layers must be an integer")
            }
            guard case .object(let lora)? = object["lora_parameters"] else {
                throw AdapterError.invalidConfig("lora_parameters is missing")
            }
            if let rank = lora["rank"] {
                guard let r = rank.int, r >= 1, r < 1 << 20 else {
                    throw AdapterError.invalidConfig("rank \(rank.compactText)")
                }
                parameters.rank = r
            }
            if let scale = lora["scale"]?.double { parameters.scale = Float(scale) }
            if let dropout = lora["dropout"]?.double {
                guard dropout >= 0 && dropout < 1 else { throw AdapterError.invalidConfig("dropout \(dropout)") }
                parameters.dropout = Float(dropout)
            }
            if case .array(let list)? = lora["keys"] { keys = list.compactMap(\.string) }
        }
        let layers = object["num_layers"]?.int ?? 16
        var extra = object
        for known in ["fine_tune_type", "num_layers", "lora_parameters"] { extra[known] = nil }
        return AdapterConfig(fineTuneType: type, numLayers: layers, parameters: parameters, keys: keys, extra: extra)
    }
}
