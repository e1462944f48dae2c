// The contract every architecture implements, and the registry that picks
// one by `model_type` (as mlx-lm does).

import Tessera

/// Errors loading or running a language model.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unknownModelType(String)
    case missingTensor(String)
    case tensorShape(name: String, expected: [Int], got: [Int])
    case invalidConfiguration(String)
    /// A configuration field (a config.json key or a GGUF metadata key) of
    /// the wrong type or outside its allowed range.
    case configurationField(field: String, value: String, allowed: String)
    case promptTooLong(tokens: Int, context: Int)
    case modelNotFound(String)
    /// A writer's unfinished output (`NAME.partial-PID`), never loaded as a model.
    case unfinishedOutput(String)
    /// A quantized layer's weight/scales/biases that do not fit together.
    case quantizedTensor(name: String, reason: String)
    /// A prompt cache saved for another model (by content fingerprint, not name).
    case promptCacheForAnotherModel(path: String, saved: String, model: String)
    /// A prompt cache that is truncated, corrupt or does not fit the model; left as it is.
    case corruptPromptCache(path: String, reason: String)

    public var description: String {
        switch self {
        case .unknownModelType(let t):
            return "unknown model type \"\(t)\" (supported: \(ModelRegistry.supportedTypes.joined(separator: ", ")))"
        case .missingTensor(let name): return "the model file has no tensor \(name)"
        case let .tensorShape(name, expected, got): return "tensor \(name) has shape \(got), expected \(expected)"
        case .invalidConfiguration(let why): return "invalid model configuration: \(why)"
        case let .configurationField(field, value, allowed):
            return "invalid model configuration: \(field) is \(value), allowed: \(allowed)"
        case let .promptTooLong(tokens, context):
            return "the prompt has \(tokens) tokens but the model's context is \(context)"
        case .modelNotFound(let why): return why
        case let .quantizedTensor(name, reason): return "quantized tensor \(name): \(reason)"
        case .unfinishedOutput(let path):
            return "\(path) is an unfinished output of an interrupted write (a .partial-PID name); not loaded. "
                + "Remove it, or run the conversion again (which removes it)"
        case let .promptCacheForAnotherModel(path, saved, model):
            return
                "the prompt cache \(path) was saved for another model (\(saved)), not \(model); not used or overwritten"
        case let .corruptPromptCache(path, reason):
            return "the prompt cache \(path) is corrupt or does not fit the model (\(reason)); not used or overwritten"
        }
    }
}

/// A causal language model: token ids in, next-token logits out.
public protocol LanguageModel: Sendable {
    var vocabularySize: Int { get }
    var contextLength: Int { get }
    /// Fresh key/value caches, one per layer, keeping at most `maxSize`
    /// positions, stored quantized when `quantization` is given.
    func makeCache(maxSize: Int?, quantization: KVQuantization?) -> [KVCache]
    /// Logits `[B, L, vocab]` for `tokens` `[B, L]`, continuing from `cache`.
    func callAsFunction(_ tokens: Tensor, cache: [KVCache]) -> Tensor
    /// Logits `[B, 1, vocab]` of the last position of `tokens` `[B, L]` only,
    /// continuing from `cache` (filled as by `callAsFunction`): what a
    /// prefill needs. A model may skip the output head for the other positions.
    func lastLogits(_ tokens: Tensor, cache: [KVCache]) -> Tensor
}

extension LanguageModel {
    /// All positions' logits, then the last one's.
    public func lastLogits(_ tokens: Tensor, cache: [KVCache]) -> Tensor {
        self(tokens, cache: cache)[0..., (tokens.dim(1) - 1)...]
    }

    /// Fresh full-precision caches.
    public func makeCache(maxSize: Int? = nil) -> [KVCache] { makeCache(maxSize: maxSize, quantization: nil) }
}

/// One architecture: reads a config.json into the shared transformer's
/// configuration, and says how llama.cpp stores it in a GGUF file.
protocol Architecture {
    /// The `model_type` values it answers to (the first is a GGUF file's).
    static var modelTypes: [String] { get }
    static func configuration(_ config: ConfigReader) throws -> TransformerConfiguration
    static var gguf: GGUFConventions { get }
}

/// Architectures by `model_type` / GGUF `general.architecture`.
public enum ModelRegistry {
    static var architectures: [any Architecture.Type] {
        [
            Llama.self, Mistral.self, Qwen2.self, Qwen3.self, Phi3.self, Gemma2.self, Gemma3.self
        ]
    }

    public static var supportedTypes: [String] { architectures.flatMap { $0.modelTypes } }

    static func architecture(_ modelType: String) throws -> any Architecture.Type {
        guard let found = architectures.first(where: { $0.modelTypes.contains(modelType) }) else {
            throw ModelError.unknownModelType(modelType)
        }
        return found
    }

    /// The architecture of a GGUF file's `general.architecture`.
    static func architecture(gguf name: String) throws -> any Architecture.Type {
        guard let found = architectures.first(where: { $0.gguf.architecture == name }) else {
            throw ModelError.unknownModelType(name)
        }
        return found
    }
}
